//! The lexer for Congress's policy language: source text to a flat token list.
//!
//! It follows the token rules of Congress's ANTLR grammar (`Congress.g`): identifiers may
//! contain dots, strings are Python-style (prefixes, triple quotes, adjacent pieces glued
//! into one token), integers forbid leading zeros, floats take the Python forms. Tokens
//! carry only a kind and a span; the parser reads their text from the source.
//!
//! Lexing never stops: a bad stretch of input becomes one [`TokenKind::Error`] token plus
//! one diagnostic, and lexing resumes right after it. Every span starts and ends on a
//! char boundary. The one deliberate leniency: a `//` or `#` comment may end at the end of
//! input (Congress insists on the newline).

use super::diag::{Diagnostic, Span};

/// Diagnostic code for lexical errors.
pub(super) const LEX: &str = "lex";

/// What a token is. Keywords (`not`, `execute`, ...) are [`TokenKind::Ident`]s; the
/// parser decides from context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TokenKind {
    /// `[A-Za-z_.][A-Za-z0-9_.]*`
    Ident,
    /// A whole string token, prefix and quotes included.
    Str,
    /// `[1-9][0-9]*` or `0+`
    Int,
    /// `1.5`, `.5`, `2.`, `1e3`, `1.5E-2`
    Float,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// `:-`
    ColonMinus,
    /// `:` (policy separator)
    Colon,
    Equal,
    Plus,
    Minus,
    /// `!` (negation)
    Bang,
    /// `;` (statement terminator)
    Semi,
    /// `.` standing alone (statement terminator)
    Dot,
    /// Input that could not be lexed; a diagnostic has already been reported for it.
    Error,
    /// End of input (always the last token).
    Eof,
}

/// One token: its kind, where it is, and whether a line break separates it from the
/// previous token (the parser's error recovery uses that).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Token {
    pub kind: TokenKind,
    pub span: Span,
    pub newline_before: bool,
}

impl Token {
    /// The byte range of the token, for slicing the source.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.span.start as usize..self.span.end as usize
    }
}

/// The lexer's output: tokens ending in [`TokenKind::Eof`], and the lexical errors.
#[derive(Debug, Default)]
pub(super) struct Lexed {
    pub tokens: Vec<Token>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Split `src` into tokens. Never fails; problems are reported as diagnostics.
pub(super) fn lex(src: &str) -> Lexed {
    let mut lexer = Lexer { src, bytes: src.as_bytes(), pos: 0, newline: false, out: Lexed::default() };
    lexer.run();
    lexer.out
}

struct Lexer<'s> {
    src: &'s str,
    bytes: &'s [u8],
    pos: usize,
    /// A line break was seen since the last token.
    newline: bool,
    out: Lexed,
}

/// String prefixes Congress accepts before a quote; the `b` forms make byte strings.
const STRING_PREFIXES: [&str; 14] = ["r", "R", "u", "U", "b", "B", "br", "Br", "bR", "BR", "rb", "rB", "Rb", "RB"];

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'.'
}

fn is_ident_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_quote(b: u8) -> bool {
    b == b'"' || b == b'\''
}

impl Lexer<'_> {
    fn run(&mut self) {
        while let Some(b) = self.peek(0) {
            if is_whitespace(b) {
                self.newline |= b == b'\n' || b == b'\r';
                self.pos += 1;
            } else if !self.comment() {
                self.token();
            }
        }
        let end = self.src.len();
        self.push(TokenKind::Eof, end);
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    /// Length of the run of bytes from `from` that satisfy `pred`.
    fn run_len(&self, from: usize, pred: impl Fn(u8) -> bool) -> usize {
        self.bytes.get(from..).map_or(0, |rest| rest.iter().take_while(|b| pred(**b)).count())
    }

    /// Emit a token from the current position to `end` and move past it.
    fn push(&mut self, kind: TokenKind, end: usize) {
        let span = Span::new(self.pos, end);
        self.out.tokens.push(Token { kind, span, newline_before: self.newline });
        self.newline = false;
        self.pos = end;
    }

    /// Emit an error token from the current position to `end`, with a diagnostic.
    fn push_error(&mut self, end: usize, message: String) {
        self.out.diagnostics.push(Diagnostic::error(LEX, message, Span::new(self.pos, end)));
        self.push(TokenKind::Error, end);
    }

    /// Skip a comment if one starts here; true if it did.
    fn comment(&mut self) -> bool {
        match (self.peek(0), self.peek(1)) {
            (Some(b'#'), _) | (Some(b'/'), Some(b'/')) => {
                self.pos += self.run_len(self.pos, |b| b != b'\n' && b != b'\r');
                true
            }
            (Some(b'/'), Some(b'*')) => {
                self.block_comment();
                true
            }
            _ => false,
        }
    }

    fn block_comment(&mut self) {
        let start = self.pos;
        let body = &self.src[start + 2..];
        match body.find("*/") {
            Some(i) => {
                self.newline |= body[..i].contains(['\n', '\r']);
                self.pos = start + 2 + i + 2;
            }
            None => {
                let span = Span::new(start, start + 2);
                self.out.diagnostics.push(Diagnostic::error(
                    LEX,
                    "unterminated block comment: '/*' has no matching '*/'",
                    span,
                ));
                self.pos = self.src.len();
            }
        }
    }

    /// Lex one token starting at a non-blank, non-comment byte.
    fn token(&mut self) {
        let Some(b) = self.peek(0) else { return };
        let single = |kind| Some((kind, 1));
        let punct = match b {
            b'(' => single(TokenKind::LParen),
            b')' => single(TokenKind::RParen),
            b'[' => single(TokenKind::LBracket),
            b']' => single(TokenKind::RBracket),
            b',' => single(TokenKind::Comma),
            b'=' => single(TokenKind::Equal),
            b'+' => single(TokenKind::Plus),
            b'-' => single(TokenKind::Minus),
            b'!' => single(TokenKind::Bang),
            b';' => single(TokenKind::Semi),
            b':' if self.peek(1) == Some(b'-') => Some((TokenKind::ColonMinus, 2)),
            b':' => single(TokenKind::Colon),
            _ => None,
        };
        if let Some((kind, len)) = punct {
            self.push(kind, self.pos + len);
        } else if b.is_ascii_digit() {
            self.number();
        } else if b == b'.' {
            self.dot();
        } else if is_ident_start(b) {
            self.ident_or_prefixed_string();
        } else if is_quote(b) {
            self.string(self.pos, false);
        } else {
            self.junk();
        }
    }

    /// A `.`: a float (`.5`), an identifier (`.x`, `.5x`) or a terminator.
    fn dot(&mut self) {
        let ident_len = self.run_len(self.pos, is_ident_continue);
        if self.peek(1).is_some_and(|b| b.is_ascii_digit()) {
            let float_end = self.float_tail(self.pos);
            // Longest match wins; on a tie (`.5`) the float does, as in Congress.
            if self.pos + ident_len > float_end {
                self.push(TokenKind::Ident, self.pos + ident_len);
            } else {
                self.push(TokenKind::Float, float_end);
            }
        } else if ident_len > 1 {
            self.push(TokenKind::Ident, self.pos + ident_len);
        } else {
            self.push(TokenKind::Dot, self.pos + 1);
        }
    }

    /// From `from` (a `.` or the end of an integer part), the end of the fraction and
    /// exponent parts, Python style.
    fn float_tail(&self, from: usize) -> usize {
        let mut end = from;
        if self.bytes.get(end) == Some(&b'.') {
            end += 1 + self.run_len(end + 1, |b| b.is_ascii_digit());
        }
        self.exponent_end(end)
    }

    /// `end` moved past an exponent (`e`, optional sign, digits) if one starts there.
    fn exponent_end(&self, end: usize) -> usize {
        if !matches!(self.bytes.get(end), Some(b'e' | b'E')) {
            return end;
        }
        let mut at = end + 1;
        if matches!(self.bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        match self.run_len(at, |b| b.is_ascii_digit()) {
            0 => end,
            digits => at + digits,
        }
    }

    /// A token starting with a digit: an integer, a float, or an error.
    fn number(&mut self) {
        let start = self.pos;
        if self.peek(0) == Some(b'0') && matches!(self.peek(1), Some(b'x' | b'X' | b'b' | b'B' | b'o' | b'O')) {
            let end = start + 2 + self.run_len(start + 2, |b| b.is_ascii_alphanumeric() || b == b'_');
            let message = format!(
                "hexadecimal/binary/octal literals are not supported: '{}' (write it in decimal)",
                clip(&self.src[start..end])
            );
            return self.push_error(end, message);
        }
        let digits_end = start + self.run_len(start, |b| b.is_ascii_digit());
        let end = self.float_tail(digits_end);
        if end > digits_end {
            return self.push(TokenKind::Float, end);
        }
        let text = &self.src[start..digits_end];
        if text.len() > 1 && text.starts_with('0') && text.bytes().any(|b| b != b'0') {
            let message = format!(
                "integer literals cannot have leading zeros: '{}' (write {})",
                clip(text),
                clip(text.trim_start_matches('0'))
            );
            return self.push_error(digits_end, message);
        }
        self.push(TokenKind::Int, digits_end);
    }

    /// An identifier, or a string with a prefix such as `u"…"` or `rb'…'`.
    fn ident_or_prefixed_string(&mut self) {
        let end = self.pos + self.run_len(self.pos, is_ident_continue);
        let word = &self.src[self.pos..end];
        if self.bytes.get(end).copied().is_some_and(is_quote) && STRING_PREFIXES.contains(&word) {
            let bytes = word.contains(['b', 'B']);
            self.string(end, bytes);
        } else {
            self.push(TokenKind::Ident, end);
        }
    }

    /// A string token whose first quote is at `quote`: one or more adjacent pieces.
    fn string(&mut self, quote: usize, bytes: bool) {
        let mut at = quote;
        while self.bytes.get(at).copied().is_some_and(is_quote) {
            match self.string_piece(at) {
                Ok(end) => at = end,
                Err((end, message)) => return self.push_error(end, message.to_owned()),
            }
        }
        if bytes && !self.src[self.pos..at].is_ascii() {
            return self.push_error(at, "byte string literals may only contain ASCII characters".to_owned());
        }
        self.push(TokenKind::Str, at);
    }

    /// Scan one quoted piece whose opening quote is at `start`: its end offset, or where
    /// the error stops and a message. A backslash escapes the next character (for lexing
    /// only: the value keeps it).
    fn string_piece(&self, start: usize) -> Result<usize, (usize, &'static str)> {
        let q = self.bytes.get(start).copied().unwrap_or(b'"');
        let triple = self.bytes.get(start..start + 3) == Some(&[q, q, q][..]);
        let closer: &[u8] = if triple { &[q, q, q] } else { &[q] };
        let mut at = start + closer.len();
        loop {
            let rest = self.bytes.get(at..).unwrap_or_default();
            if rest.starts_with(closer) {
                return Ok(at + closer.len());
            }
            match rest.first() {
                None if triple => return Err((at, "unterminated triple-quoted string literal")),
                None => return Err((at, "unterminated string literal")),
                Some(b'\\') => at = self.after_escape(at),
                Some(b'\n' | b'\r') if !triple => {
                    let message = "unterminated string literal (only triple-quoted strings may span lines)";
                    return Err((at, message));
                }
                Some(_) => at += 1,
            }
        }
    }

    /// The offset after a backslash at `at` and the character it escapes.
    fn after_escape(&self, at: usize) -> usize {
        let next = at + 1;
        match self.src.get(next..).and_then(|rest| rest.chars().next()) {
            Some(c) => next + c.len_utf8(),
            None => next,
        }
    }

    /// A run of characters that start no token: one error for the whole run.
    fn junk(&mut self) {
        let start = self.pos;
        let mut end = start;
        let mut first = None;
        for c in self.src[start..].chars() {
            let at = end;
            if at > start && self.starts_token(at) {
                break;
            }
            first.get_or_insert(c);
            end += c.len_utf8();
        }
        let c = first.unwrap_or('?');
        let message = if end - start > c.len_utf8() {
            format!("unexpected characters starting with {c:?}")
        } else {
            format!("unexpected character {c:?}")
        };
        self.push_error(end, message);
    }

    /// Whether a token, a blank or a comment starts at byte `at`.
    fn starts_token(&self, at: usize) -> bool {
        let Some(&b) = self.bytes.get(at) else {
            return true;
        };
        let next = self.bytes.get(at + 1).copied();
        is_whitespace(b)
            || is_ident_continue(b)
            || is_quote(b)
            || b"()[],=+-!;:#".contains(&b)
            || (b == b'/' && matches!(next, Some(b'/' | b'*')))
    }
}

/// `text` cut to a length fit for an error message, on a char boundary.
pub(super) fn clip(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TokenKind::*;

    fn kinds(src: &str) -> Vec<TokenKind> {
        lex(src).tokens.iter().map(|t| t.kind).collect()
    }

    fn texts(src: &str) -> Vec<&str> {
        lex(src).tokens.iter().filter(|t| t.kind != Eof).map(|t| &src[t.range()]).collect()
    }

    fn only_diagnostic(src: &str) -> Diagnostic {
        let lexed = lex(src);
        assert_eq!(lexed.diagnostics.len(), 1, "{src:?}: {:?}", lexed.diagnostics);
        lexed.diagnostics[0].clone()
    }

    #[test]
    fn identifiers_may_contain_and_start_with_dots() {
        assert_eq!(texts("servers.pause .x _ True a1_b.c"), ["servers.pause", ".x", "_", "True", "a1_b.c"]);
        assert_eq!(kinds("servers.pause .x"), [Ident, Ident, Eof]);
    }

    #[test]
    fn a_trailing_dot_belongs_to_the_identifier() {
        // Congress's ID rule is greedy: `q.` is the identifier `q.`, not `q` + terminator.
        assert_eq!(texts("q."), ["q."]);
        assert_eq!(kinds("p(x)."), [Ident, LParen, Ident, RParen, Dot, Eof]);
    }

    #[test]
    fn punctuation() {
        assert_eq!(
            kinds("( ) [ ] , :- : = + - ! ; ."),
            [LParen, RParen, LBracket, RBracket, Comma, ColonMinus, Colon, Equal, Plus, Minus, Bang, Semi, Dot, Eof]
        );
        assert_eq!(kinds(":="), [Colon, Equal, Eof]);
        assert_eq!(kinds("p:-q"), [Ident, ColonMinus, Ident, Eof]);
    }

    #[test]
    fn integers() {
        assert_eq!(kinds("0 000 7 1234567890"), [Int, Int, Int, Int, Eof]);
        assert_eq!(texts("12abc"), ["12", "abc"]);
        assert_eq!(texts("1e"), ["1", "e"]);
    }

    #[test]
    fn leading_zeros_are_an_error() {
        let d = only_diagnostic("p(007)");
        assert_eq!(d.code, LEX);
        assert_eq!(d.span, Span::new(2, 5));
        assert!(d.message.contains("leading zeros"), "{}", d.message);
        assert_eq!(kinds("p(007)"), [Ident, LParen, Error, RParen, Eof]);
    }

    #[test]
    fn hex_binary_octal_are_an_error() {
        for lit in ["0x1F", "0b101", "0o17", "0X1f", "0B1", "0O7", "0x"] {
            let src = format!("h({lit})");
            let d = only_diagnostic(&src);
            assert!(d.message.starts_with("hexadecimal/binary/octal literals are not supported"), "{}", d.message);
            assert_eq!(d.span, Span::new(2, 2 + lit.len()), "{lit}");
        }
    }

    #[test]
    fn floats() {
        for lit in ["1.5", ".5", "2.", "1e3", "1.5E-2", "1E+3", "007.5", "0.0", "1.e5", ".5e3"] {
            assert_eq!(kinds(lit), [Float, Eof], "{lit}");
        }
        assert_eq!(texts("1.5.3"), ["1.5", ".3"]);
        assert_eq!(texts("2.x"), ["2.", "x"]);
    }

    #[test]
    fn dot_digit_prefers_the_longer_match() {
        assert_eq!(kinds(".5"), [Float, Eof]);
        assert_eq!(kinds(".5x"), [Ident, Eof]);
        assert_eq!(kinds(".x"), [Ident, Eof]);
        assert_eq!(kinds(".."), [Ident, Eof]);
        assert_eq!(kinds(". x"), [Dot, Ident, Eof]);
    }

    #[test]
    fn strings_in_every_form() {
        for s in [
            r#""a""#,
            "'a'",
            r#""""a"b""""#,
            r#""""multi
line""""#,
            "'''x'''",
            r#"u"x""#,
            r#"R'x'"#,
            r#"b"x""#,
            r#"rb"x""#,
            r#"BR"x""#,
            r#""a\"b""#,
            r#"'it''s'"#,
            r#""a"'b'"#,
            r#""""#,
        ] {
            assert_eq!(kinds(s), [Str, Eof], "{s}");
            assert_eq!(texts(s), [s], "{s}");
        }
    }

    #[test]
    fn strings_that_are_not_one_token() {
        // `ur` is not a prefix in Python 3 or Congress.
        assert_eq!(kinds(r#"ur"x""#), [Ident, Str, Eof]);
        // Whitespace separates pieces.
        assert_eq!(kinds("'a' 'b'"), [Str, Str, Eof]);
    }

    #[test]
    fn unterminated_strings() {
        let d = only_diagnostic(r#"p("unterminated)"#);
        assert_eq!(d.span, Span::new(2, 16));
        assert!(d.message.starts_with("unterminated string literal"));
        // A line break ends a single-quoted string; lexing resumes on the next line.
        let src = "p('abc\nq(1)";
        let lexed = lex(src);
        assert_eq!(lexed.diagnostics.len(), 1);
        assert_eq!(lexed.diagnostics[0].span, Span::new(2, 6));
        assert_eq!(kinds(src), [Ident, LParen, Error, Ident, LParen, Int, RParen, Eof]);
        let d = only_diagnostic(r#"p("""abc""#);
        assert!(d.message.starts_with("unterminated triple-quoted"));
        let d = only_diagnostic(r#"p("abc\"#);
        assert_eq!(d.span.end as usize, r#"p("abc\"#.len());
    }

    #[test]
    fn byte_strings_must_be_ascii() {
        let d = only_diagnostic("b'é'");
        assert!(d.message.contains("ASCII"));
        assert_eq!(kinds("'é'"), [Str, Eof]);
    }

    #[test]
    fn comments_are_skipped() {
        assert_eq!(kinds("// c\n# d\n/* e\n */ p"), [Ident, Eof]);
        assert_eq!(kinds("p // no newline"), [Ident, Eof]);
        assert_eq!(kinds("p # no newline"), [Ident, Eof]);
        assert_eq!(kinds("/**/p/* a */q"), [Ident, Ident, Eof]);
        assert!(lex("").tokens.iter().all(|t| t.kind == Eof));
    }

    #[test]
    fn unterminated_block_comment_is_an_error() {
        let d = only_diagnostic("p(1) /* never closed");
        assert_eq!(d.span, Span::new(5, 7));
        assert!(d.message.contains("unterminated block comment"));
    }

    #[test]
    fn newline_flags() {
        let lexed = lex("a b\nc /* x\n */ d // e\nf");
        let flags: Vec<bool> = lexed.tokens.iter().map(|t| t.newline_before).collect();
        assert_eq!(flags, [false, false, true, true, true, false]);
    }

    #[test]
    fn junk_is_one_error_per_run() {
        let lexed = lex("p(@@é$) % q");
        assert_eq!(lexed.diagnostics.len(), 2, "{:?}", lexed.diagnostics);
        assert_eq!(lexed.diagnostics[0].message, "unexpected characters starting with '@'");
        assert_eq!(lexed.diagnostics[1].message, "unexpected character '%'");
        assert_eq!(kinds("p(@@é$) % q"), [Ident, LParen, Error, RParen, Error, Ident, Eof]);
        assert_eq!(kinds("a/b"), [Ident, Error, Ident, Eof]);
        assert_eq!(only_diagnostic("\u{a0}").message, "unexpected character '\\u{a0}'");
    }

    #[test]
    fn spans_are_on_char_boundaries() {
        let src = "é'ü\n\"ß\\";
        let lexed = lex(src);
        for t in &lexed.tokens {
            assert!(src.is_char_boundary(t.span.start as usize) && src.is_char_boundary(t.span.end as usize));
        }
        for d in &lexed.diagnostics {
            assert!(src.is_char_boundary(d.span.start as usize) && src.is_char_boundary(d.span.end as usize));
        }
    }

    #[test]
    fn clip_cuts_long_text() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(100);
        assert_eq!(clip(&long).chars().count(), 41);
    }
}
