//! Diagnostics: an error or warning with a source span, rendered as `file:line:col`
//! plus a snippet with a caret (codespan-reporting does the drawing).

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::{self, Files, SimpleFile};
use codespan_reporting::term::{self, termcolor::NoColor};
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// A source line longer than this many characters is quoted only in part: a window of
/// this many characters around the caret, with `…` where it was cut.
pub const WINDOW: usize = 100;
/// Rule text quoted in a diagnostic (`in rule: ...`) is cut to this many characters.
pub const MAX_RULE_TEXT: usize = 200;
/// A diagnostic's message is cut to this many characters (messages quote bounded pieces of
/// the source already; this is the last line of defence).
pub const MAX_MESSAGE: usize = 1000;
/// Text that lists diagnostics in one line (an engine error's message) lists this many and
/// says how many more there are.
pub const MAX_LISTED: usize = 20;

/// `text` cut to at most `max` characters, with `…` at the cut; unchanged when it fits.
pub fn clip(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((cut, _)) => Cow::Owned(format!("{}…", &text[..cut])),
        None => Cow::Borrowed(text),
    }
}

/// A half-open byte range `[start, end)` in one source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start: start as u32, end: end.max(start) as u32 }
    }

    /// The smallest span covering both.
    pub fn join(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }

    /// The same span moved `by` bytes to the right (for text embedded in a bigger file).
    pub fn shifted(self, by: usize) -> Span {
        Span { start: self.start + by as u32, end: self.end + by as u32 }
    }

    /// 1-based line and column (in characters) of the span's start within `src`.
    pub fn line_col(self, src: &str) -> (usize, usize) {
        let start = (self.start as usize).min(src.len());
        let start = (0..=start).rev().find(|i| src.is_char_boundary(*i)).unwrap_or(0);
        let before = &src[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let col = src[line_start..start].chars().count() + 1;
        (line, col)
    }
}

/// Where the lines of a text start, to turn many byte offsets into `line:col` in
/// logarithmic time each ([`Span::line_col`] scans from the start of the text, which made
/// placing every statement of a long block quadratic).
#[derive(Clone, Debug)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(src: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// 1-based line and column (in characters) of byte `offset` of `src` (the text this
    /// index was made from); the same answer as [`Span::line_col`].
    pub fn line_col(&self, src: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(src.len());
        let offset = (0..=offset).rev().find(|i| src.is_char_boundary(*i)).unwrap_or(0);
        let line = self.starts.partition_point(|&s| s <= offset);
        let line_start = self.starts[line - 1];
        (line, src[line_start..offset].chars().count() + 1)
    }
}

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in policy text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable machine-readable code, e.g. `parse`, `lex`, `unsafe-head`, `arity`.
    pub code: &'static str,
    pub message: String,
    pub span: Span,
    /// The rule the problem is in, as written (or its name when it has one).
    pub rule: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>, span: Span) -> Self {
        Diagnostic { severity: Severity::Error, code, message: bounded(message.into()), span, rule: None }
    }

    pub fn warning(code: &'static str, message: impl Into<String>, span: Span) -> Self {
        Diagnostic { severity: Severity::Warning, code, message: bounded(message.into()), span, rule: None }
    }

    pub fn with_rule(mut self, rule: impl Into<String>) -> Self {
        self.rule = Some(rule.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `line:col: message` against the source the span points into.
    pub fn short(&self, src: &str) -> String {
        let (l, c) = self.span.line_col(src);
        format!("{l}:{c}: {}", self.message)
    }

    /// The full report: `file:line:col`, the message, the rule, a snippet with a caret.
    pub fn render(&self, file_name: &str, src: &str) -> String {
        let file = SimpleFile::new(file_name, src);
        let start = (self.span.start as usize).min(src.len());
        let end = (self.span.end as usize).clamp(start, src.len());
        let mut d = match self.severity {
            Severity::Error => CsDiagnostic::error(),
            Severity::Warning => CsDiagnostic::warning(),
        }
        .with_code(self.code)
        .with_message(clip(&self.message, MAX_MESSAGE));
        if let Some(r) = &self.rule {
            d = d.with_notes(vec![format!("in rule: {}", clip(r, MAX_RULE_TEXT))]);
        }
        let mut out = NoColor::new(Vec::new());
        let config = term::Config::default();
        let emitted = match Window::of(file_name, src, start..end) {
            None => term::emit(&mut out, &config, &file, &d.with_labels(vec![Label::primary((), start..end)])),
            Some(w) => {
                let label = Label::primary((), w.span.clone());
                term::emit(&mut out, &config, &w, &d.with_labels(vec![label]))
            }
        };
        if emitted.is_err() {
            let (l, c) = self.span.line_col(src);
            return format!("{file_name}:{l}:{c}: {}\n", clip(&self.message, MAX_MESSAGE));
        }
        String::from_utf8_lossy(&out.into_inner()).into_owned()
    }
}

fn bounded(message: String) -> String {
    match clip(&message, MAX_MESSAGE) {
        Cow::Borrowed(_) => message,
        Cow::Owned(cut) => cut,
    }
}

/// The part of a long source line a diagnostic quotes: at most [`WINDOW`] characters around
/// the start of the span, `…` where the line was cut, numbered as in the whole source.
struct Window<'a> {
    name: &'a str,
    /// The quoted part of the line, with its `…` marks.
    text: String,
    /// The span within `text`.
    span: Range<usize>,
    /// The line's 1-based number in the whole source.
    line: usize,
    /// Characters of the real line left out before `text`, less the leading `…`.
    shift: isize,
}

impl<'a> Window<'a> {
    /// `None` when every line the span touches is short enough to quote whole.
    fn of(name: &'a str, src: &str, span: Range<usize>) -> Option<Window<'a>> {
        if !src.is_char_boundary(span.start) || !src.is_char_boundary(span.end) {
            return None;
        }
        let line_start = src[..span.start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = |at: usize| src[at..].find('\n').map_or(src.len(), |i| at + i);
        let last_end = line_end(span.end);
        if src[line_start..last_end].split('\n').all(|l| l.chars().nth(WINDOW).is_none()) {
            return None;
        }
        let end_of_line = line_end(span.start);
        let line = &src[line_start..end_of_line];
        let caret = src[line_start..span.start].chars().count();
        let total = line.chars().count();
        let first = caret.saturating_sub(WINDOW / 2);
        let last = (first + WINDOW).min(total);
        let first = last.saturating_sub(WINDOW).min(caret);
        let byte = |ch: usize| line.char_indices().nth(ch).map_or(line.len(), |(i, _)| i);
        let (from, to) = (byte(first), byte(last));
        let before = if first > 0 { "…" } else { "" };
        let after = if last < total { "…" } else { "" };
        let text = format!("{before}{}{after}", &line[from..to]);
        let s = before.len() + (span.start - line_start - from);
        let e = before.len() + (span.end.min(line_start + to).max(span.start) - line_start - from);
        Some(Window {
            name,
            text,
            span: s..e,
            line: src[..line_start].matches('\n').count() + 1,
            shift: first as isize - before.chars().count() as isize,
        })
    }
}

impl<'a> Files<'a> for Window<'a> {
    type FileId = ();
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, (): ()) -> Result<&'a str, files::Error> {
        Ok(self.name)
    }

    fn source(&'a self, (): ()) -> Result<&'a str, files::Error> {
        Ok(&self.text)
    }

    fn line_index(&'a self, (): (), _byte_index: usize) -> Result<usize, files::Error> {
        Ok(0)
    }

    fn line_number(&'a self, (): (), _line_index: usize) -> Result<usize, files::Error> {
        Ok(self.line)
    }

    fn column_number(&'a self, (): (), _line_index: usize, byte_index: usize) -> Result<usize, files::Error> {
        let index = files::column_index(&self.text, 0..self.text.len(), byte_index) as isize;
        Ok((index + self.shift).max(0) as usize + 1)
    }

    fn line_range(&'a self, (): (), line_index: usize) -> Result<Range<usize>, files::Error> {
        if line_index == 0 {
            Ok(0..self.text.len())
        } else {
            Err(files::Error::LineTooLarge { given: line_index, max: 0 })
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(r) = &self.rule {
            write!(f, " (in rule `{}`)", clip(r, MAX_RULE_TEXT))?;
        }
        Ok(())
    }
}

/// Render every diagnostic, in order, separated by blank lines.
pub fn render_all(diags: &[Diagnostic], file_name: &str, src: &str) -> String {
    diags.iter().map(|d| d.render(file_name, src)).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_index_places_offsets_as_span_does() {
        let src = "p(1)\n  q(x) :- p(x)\n\nr(\"é\") :-\n    q(\"a\")";
        let index = LineIndex::new(src);
        for offset in 0..=src.len() + 3 {
            assert_eq!(index.line_col(src, offset), Span::new(offset, offset).line_col(src), "offset {offset}");
        }
    }

    #[test]
    fn line_col_counts_lines_and_chars() {
        let src = "p(1)\n  q(é, x)";
        assert_eq!(Span::new(0, 1).line_col(src), (1, 1));
        assert_eq!(Span::new(7, 8).line_col(src), (2, 3));
        let x = src.find('x').unwrap();
        assert_eq!(Span::new(x, x + 1).line_col(src), (2, 8));
    }

    #[test]
    fn render_shows_location_and_caret() {
        let src = "p(x) :- q(y)";
        let d = Diagnostic::error("unsafe-head", "variable x is not bound", Span::new(2, 3)).with_rule(src);
        let out = d.render("a.congress", src);
        assert!(out.contains("a.congress:1:3"), "{out}");
        assert!(out.contains('^'), "{out}");
        assert!(out.contains("in rule: p(x) :- q(y)"), "{out}");
    }

    /// A rule of `n` body literals on one line.
    fn long_rule(n: usize) -> String {
        let body: Vec<String> = (0..n).map(|i| format!("q{i}(x{i})")).collect();
        format!("p(x) :- {}", body.join(", "))
    }

    #[test]
    fn long_lines_are_quoted_in_a_window_around_the_caret() {
        let src = long_rule(20_000);
        let at = src.find("q10000(").unwrap();
        let d = Diagnostic::error("unsafe-body", "something about q10000", Span::new(at, at + 6)).with_rule(&src);
        let out = d.render("big.congress", &src);
        assert!(out.len() < 4096, "{} bytes", out.len());
        let (l, c) = d.span.line_col(&src);
        assert!(out.contains(&format!("big.congress:{l}:{c}")), "{out}");
        assert!(out.contains("^^^^^^"), "{out}");
        assert!(out.contains("…q") || out.contains("…"), "{out}");
        // The caret is under the span's text.
        let lines: Vec<&str> = out.lines().collect();
        let caret_line = lines.iter().position(|l| l.contains('^')).unwrap();
        let quoted = lines[caret_line - 1];
        let col = lines[caret_line].chars().position(|c| c == '^').unwrap();
        assert!(quoted.chars().skip(col).collect::<String>().starts_with("q10000("), "{out}");
        // In-line forms are bounded too.
        assert!(d.to_string().len() < 4096);
    }

    #[test]
    fn a_caret_at_either_end_of_a_long_line() {
        let src = format!("p({}) :- q(x)", (0..5000).map(|i| format!("a{i}")).collect::<Vec<_>>().join(", "));
        for at in [0, src.len() - 4] {
            let d = Diagnostic::error("x", "m", Span::new(at, at + 1));
            let out = d.render("f", &src);
            assert!(out.len() < 1024, "{out}");
            let (l, c) = d.span.line_col(&src);
            assert!(out.contains(&format!("f:{l}:{c}")), "{out}");
            assert!(out.contains('^'), "{out}");
        }
    }

    #[test]
    fn short_lines_render_as_before() {
        let src = "p(x) :- q(y)\nr(1)";
        let d = Diagnostic::error("e", "m", Span::new(2, 3)).with_rule("p(x) :- q(y)");
        let file = SimpleFile::new("a", src);
        let cs = CsDiagnostic::error()
            .with_code("e")
            .with_message("m")
            .with_labels(vec![Label::primary((), 2..3)])
            .with_notes(vec!["in rule: p(x) :- q(y)".to_string()]);
        let mut out = NoColor::new(Vec::new());
        term::emit(&mut out, &term::Config::default(), &file, &cs).unwrap();
        assert_eq!(d.render("a", src), String::from_utf8(out.into_inner()).unwrap());
    }

    #[test]
    fn clip_cuts_at_characters() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "abc…");
        assert_eq!(clip("ééé", 2), "éé…");
    }
}
