//! Diagnostics: an error or warning with a source span, rendered as `file:line:col`
//! plus a snippet with a caret (codespan-reporting does the drawing).

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor::NoColor};
use std::fmt;

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
        Diagnostic { severity: Severity::Error, code, message: message.into(), span, rule: None }
    }

    pub fn warning(code: &'static str, message: impl Into<String>, span: Span) -> Self {
        Diagnostic { severity: Severity::Warning, code, message: message.into(), span, rule: None }
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
        .with_message(&self.message)
        .with_labels(vec![Label::primary((), start..end)]);
        if let Some(r) = &self.rule {
            d = d.with_notes(vec![format!("in rule: {r}")]);
        }
        let mut out = NoColor::new(Vec::new());
        let config = term::Config::default();
        if term::emit(&mut out, &config, &file, &d).is_err() {
            let (l, c) = self.span.line_col(src);
            return format!("{file_name}:{l}:{c}: {}\n", self.message);
        }
        String::from_utf8_lossy(&out.into_inner()).into_owned()
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(r) = &self.rule {
            write!(f, " (in rule `{r}`)")?;
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
}
