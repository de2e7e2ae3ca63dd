//! The parser for Congress's policy language: tokens to [`Rule`]s, with every syntax
//! error reported and recovered from.
//!
//! The grammar (Congress.g, simplified) is flat, so the parser is a plain loop over
//! statements with no recursion:
//!
//! ```text
//! statement ::= formula [';' | '.']
//! rule      ::= literal (',' literal)* ':-' literal (',' literal)*
//! literal   ::= ['not' | 'NOT' | '!'] fact
//! fact      ::= atom | ('execute' | 'insert' | 'delete') '[' atom ']'
//! atom      ::= NAME ['(' [param (',' param)*] ')']
//! NAME      ::= ID (':' ID)* ['+' | '-']
//! param     ::= term | ID '=' term | INT '=' term
//! term      ::= INT | FLOAT | STRING | ID
//! ```
//!
//! As in Congress, a statement needs no terminator: `p(x) :- q(x) r(x)` is the rule
//! `p(x) :- q(x)` followed by the fact `r(x)`. After an error the parser skips to the
//! next statement boundary (a terminator, or a line that starts a new statement) and
//! carries on, so one pass reports every bad statement and keeps every good one.
//!
//! `not`/`NOT` are negation only before an identifier, and `execute`/`insert`/`delete`
//! are modals only before `[`; elsewhere they are ordinary names (Congress reserves
//! them everywhere, so it rejects a few texts this parser accepts).

use super::Parsed;
use super::ast::{Arg, Atom, Literal, Modal, Rule, Sign, Term};
use super::diag::{Diagnostic, Span};
use super::lexer::{self, Token, TokenKind, clip};
use crate::value::Value;

/// Diagnostic code for syntax errors.
const PARSE: &str = "parse";

/// Parse a whole text: every statement that parsed, and every diagnostic, in source order.
pub(super) fn parse(src: &str) -> Parsed {
    if u32::try_from(src.len()).is_err() {
        let message = "policy text is too large (the limit is 4 GiB)";
        return Parsed { rules: Vec::new(), diagnostics: vec![Diagnostic::error(PARSE, message, Span::new(0, 0))] };
    }
    let lexed = lexer::lex(src);
    let mut parser = Parser { src, tokens: lexed.tokens, pos: 0, diagnostics: lexed.diagnostics };
    let rules = parser.statements();
    let mut diagnostics = parser.diagnostics;
    diagnostics.sort_by_key(|d| d.span.start);
    Parsed { rules, diagnostics }
}

/// A syntax error that has been reported (or was already reported by the lexer); the
/// current statement is abandoned.
struct Failed;

type PResult<T> = Result<T, Failed>;

struct Parser<'s> {
    src: &'s str,
    /// Never empty: the lexer always ends the list with [`TokenKind::Eof`].
    tokens: Vec<Token>,
    pos: usize,
    diagnostics: Vec<Diagnostic>,
}

/// Whether a token of this kind can begin a statement.
fn starts_statement(kind: TokenKind) -> bool {
    matches!(kind, TokenKind::Ident | TokenKind::Bang)
}

/// Whether a statement cannot end right after a token of this kind, so a line break after
/// it does not mark a statement boundary during recovery.
fn expects_more(kind: TokenKind) -> bool {
    use TokenKind::*;
    matches!(kind, Comma | ColonMinus | LParen | LBracket | Colon | Equal | Bang)
}

impl Parser<'_> {
    // ----- token access -------------------------------------------------------------

    fn token(&self, index: usize) -> Token {
        let last = self.tokens.len().saturating_sub(1);
        self.tokens.get(index.min(last)).copied().unwrap_or(Token {
            kind: TokenKind::Eof,
            span: Span::new(self.src.len(), self.src.len()),
            newline_before: false,
        })
    }

    fn peek(&self) -> Token {
        self.token(self.pos)
    }

    fn peek_kind(&self, ahead: usize) -> TokenKind {
        self.token(self.pos + ahead).kind
    }

    fn bump(&mut self) -> Token {
        let tok = self.peek();
        if tok.kind != TokenKind::Eof {
            self.pos += 1;
        }
        tok
    }

    fn text(&self, tok: Token) -> &str {
        self.src.get(tok.range()).unwrap_or("")
    }

    /// How a token is named in "found …" messages.
    fn describe(&self, tok: Token) -> String {
        match tok.kind {
            TokenKind::Eof => "end of input".to_owned(),
            TokenKind::Str => format!("the string {}", clip(self.text(tok))),
            _ => format!("'{}'", clip(self.text(tok))),
        }
    }

    /// Consume a token of `kind`, or report `expected …, found …` at the next token.
    fn expect(&mut self, kind: TokenKind, expected: &str) -> PResult<Token> {
        if self.peek_kind(0) == kind { Ok(self.bump()) } else { Err(self.expected(expected)) }
    }

    /// Report `expected {what}, found {next token}` at the next token.
    fn expected(&mut self, what: &str) -> Failed {
        let tok = self.peek();
        let message = format!("expected {what}, found {}", self.describe(tok));
        self.error(tok, message)
    }

    /// Report an error at `tok`, unless the lexer already reported that token.
    fn error(&mut self, tok: Token, message: String) -> Failed {
        if tok.kind != TokenKind::Error {
            self.error_span(tok.span, message);
        }
        Failed
    }

    fn error_span(&mut self, span: Span, message: String) -> Failed {
        self.diagnostics.push(Diagnostic::error(PARSE, message, span));
        Failed
    }

    // ----- statements ---------------------------------------------------------------

    fn statements(&mut self) -> Vec<Rule> {
        let mut rules = Vec::new();
        while self.peek_kind(0) != TokenKind::Eof {
            let start = self.pos;
            match self.statement() {
                Ok(Some(rule)) => rules.push(rule),
                Ok(None) => {}
                Err(Failed) => self.recover(start),
            }
        }
        rules
    }

    /// One statement and its optional terminator. `Ok(None)` is a statement that was
    /// complete but invalid (already reported), so there is nothing to skip.
    fn statement(&mut self) -> PResult<Option<Rule>> {
        let heads = self.literal_list("at the start of a statement")?;
        if self.peek_kind(0) == TokenKind::ColonMinus {
            self.bump();
            let body = self.literal_list("after ':-'")?;
            self.end_of_statement("',' or the end of the statement")?;
            return Ok(Some(rule(heads, body)));
        }
        if heads.len() > 1 {
            return Err(self.expected("':-' after the head literals of a rule"));
        }
        self.end_of_statement("',', ':-' or the end of the statement")?;
        let fact = rule(heads, Vec::new());
        if fact.heads.iter().any(|h| h.negated) {
            let message =
                format!("a fact cannot be negated: '{}' (only body literals may use 'not')", clip(&fact.to_string()));
            self.error_span(fact.span, message);
            return Ok(None);
        }
        Ok(Some(fact))
    }

    /// Check that a statement may end here and consume its terminator if any. It may end
    /// before a terminator, the end of input, a new statement, or a line break.
    fn end_of_statement(&mut self, expected: &str) -> PResult<()> {
        let next = self.peek();
        match next.kind {
            TokenKind::Semi | TokenKind::Dot => {
                self.bump();
                Ok(())
            }
            TokenKind::Eof => Ok(()),
            kind if starts_statement(kind) || next.newline_before => Ok(()),
            _ => Err(self.expected(expected)),
        }
    }

    /// Skip what is left of a bad statement that began at token `start`: through the
    /// next terminator, or up to a line that starts a new statement, or to the end.
    /// Always moves past `start`, so the statement loop makes progress.
    fn recover(&mut self, start: usize) {
        loop {
            let tok = self.peek();
            match tok.kind {
                TokenKind::Eof => return,
                TokenKind::Semi | TokenKind::Dot => {
                    self.bump();
                    return;
                }
                _ if self.pos > start && self.is_restart_point(tok) => return,
                _ => {
                    self.bump();
                }
            }
        }
    }

    /// A token that starts a statement on a new line, after a token that could end one.
    fn is_restart_point(&self, tok: Token) -> bool {
        let prev = self.token(self.pos.saturating_sub(1)).kind;
        starts_statement(tok.kind) && tok.newline_before && !expects_more(prev)
    }

    // ----- literals -----------------------------------------------------------------

    /// `literal (',' literal)*`; `context` says where the list is, for messages.
    fn literal_list(&mut self, context: &str) -> PResult<Vec<Literal>> {
        let mut literals = vec![self.literal(context)?];
        while self.peek_kind(0) == TokenKind::Comma {
            self.bump();
            literals.push(self.literal("after ','")?);
        }
        Ok(literals)
    }

    /// `['not' | 'NOT' | '!'] fact`
    fn literal(&mut self, context: &str) -> PResult<Literal> {
        let first = self.peek();
        let negated = self.negation();
        if self.peek_kind(0) != TokenKind::Ident {
            let what = if negated { "an atom after the negation".to_owned() } else { format!("a literal {context}") };
            return Err(self.expected(&what));
        }
        let (modal, atom, end) = self.fact()?;
        Ok(Literal { negated, modal, atom, span: first.span.join(end) })
    }

    /// Consume a negation if one is here.
    fn negation(&mut self) -> bool {
        let tok = self.peek();
        let is_negation = match tok.kind {
            TokenKind::Bang => true,
            TokenKind::Ident => matches!(self.text(tok), "not" | "NOT") && self.peek_kind(1) == TokenKind::Ident,
            _ => false,
        };
        if is_negation {
            self.bump();
        }
        is_negation
    }

    /// `atom | modal '[' atom ']'`, at an identifier: the modal, the atom, and the span
    /// of the last token.
    fn fact(&mut self) -> PResult<(Option<Modal>, Atom, Span)> {
        if self.peek_kind(1) == TokenKind::LBracket {
            return self.modal_fact();
        }
        let atom = self.atom()?;
        let end = atom.span;
        Ok((None, atom, end))
    }

    /// `modal '[' atom ']'`
    fn modal_fact(&mut self) -> PResult<(Option<Modal>, Atom, Span)> {
        let keyword = self.bump();
        let modal = match self.text(keyword) {
            "execute" => Modal::Execute,
            "insert" => Modal::Insert,
            "delete" => Modal::Delete,
            other => {
                let message =
                    format!("unknown modal '{}': only execute[...], insert[...] and delete[...] exist", clip(other));
                return Err(self.error(keyword, message));
            }
        };
        self.bump();
        if self.peek_kind(0) != TokenKind::Ident {
            return Err(self.expected(&format!("an atom after '{}['", modal.keyword())));
        }
        let atom = self.atom()?;
        let close = self.expect(TokenKind::RBracket, &format!("']' to close '{}['", modal.keyword()))?;
        Ok((Some(modal), atom, close.span))
    }

    // ----- atoms --------------------------------------------------------------------

    /// `NAME ['(' params ')']`; the current token is an identifier.
    fn atom(&mut self) -> PResult<Atom> {
        let (policy, table, name_span) = self.name()?;
        let sign = match self.peek_kind(0) {
            TokenKind::Plus => Some(Sign::Plus),
            TokenKind::Minus => Some(Sign::Minus),
            _ => None,
        };
        let mut span = name_span;
        if sign.is_some() {
            span = span.join(self.bump().span);
        }
        let mut args = Vec::new();
        if self.peek_kind(0) == TokenKind::LParen {
            let (parsed, close) = self.arguments()?;
            args = parsed;
            span = span.join(close);
        }
        Ok(Atom { policy, table, sign, args, span, name_span })
    }

    /// `ID (':' ID)*`: the first `:` splits policy from table (`a:b:c` is policy `a`,
    /// table `b:c`).
    fn name(&mut self) -> PResult<(Option<String>, String, Span)> {
        let first = self.expect(TokenKind::Ident, "a table name")?;
        let mut span = first.span;
        let src = self.src;
        let mut rest: Vec<&str> = Vec::new();
        while self.peek_kind(0) == TokenKind::Colon {
            self.bump();
            let part = self.expect(TokenKind::Ident, "a name after ':' in a table name")?;
            span = span.join(part.span);
            rest.push(src.get(part.range()).unwrap_or(""));
        }
        let first = self.text(first).to_owned();
        if rest.is_empty() { Ok((None, first, span)) } else { Ok((Some(first), rest.join(":"), span)) }
    }

    /// `'(' [param (',' param)*] ')'`: the arguments and the span of `)`.
    fn arguments(&mut self) -> PResult<(Vec<Arg>, Span)> {
        self.bump();
        let mut args = Vec::new();
        if self.peek_kind(0) == TokenKind::RParen {
            return Ok((args, self.bump().span));
        }
        loop {
            args.push(self.param()?);
            match self.peek_kind(0) {
                TokenKind::Comma => {
                    self.bump();
                }
                TokenKind::RParen => return Ok((args, self.bump().span)),
                _ => return Err(self.expected("')' or ',' after argument")),
            }
        }
    }

    /// `term | ID '=' term | INT '=' term`
    fn param(&mut self) -> PResult<Arg> {
        let first = self.peek();
        let is_column = matches!(first.kind, TokenKind::Ident | TokenKind::Int);
        if !is_column || self.peek_kind(1) != TokenKind::Equal {
            let term = self.term()?;
            return Ok(Arg::Positional { term, span: first.span });
        }
        let column = match first.kind {
            TokenKind::Int => Column::Number(self.column_number(first)?),
            _ => Column::Name(self.text(first).to_owned()),
        };
        self.bump();
        self.bump();
        let last = self.peek();
        let term = self.term()?;
        let span = first.span.join(last.span);
        Ok(match column {
            Column::Name(column) => Arg::Named { column, term, span },
            Column::Number(index) => Arg::Numbered { index, term, span },
        })
    }

    fn column_number(&mut self, tok: Token) -> PResult<u64> {
        match self.text(tok).parse::<u64>() {
            Ok(index) => Ok(index),
            Err(_) => {
                let message = format!("column number {} is too large", clip(self.text(tok)));
                Err(self.error(tok, message))
            }
        }
    }

    /// `INT | FLOAT | STRING | ID`
    fn term(&mut self) -> PResult<Term> {
        let tok = self.peek();
        let term = match tok.kind {
            TokenKind::Ident => Term::Var(self.text(tok).to_owned()),
            TokenKind::Str => Term::Const(Value::str(string_value(self.text(tok)))),
            TokenKind::Int => Term::Const(Value::Int(self.integer(tok)?)),
            TokenKind::Float => Term::Const(Value::Float(self.float(tok)?)),
            TokenKind::Minus | TokenKind::Plus if matches!(self.peek_kind(1), TokenKind::Int | TokenKind::Float) => {
                let found = self.describe(tok);
                let message = format!(
                    "expected an argument (a variable, number or string), found {found}: \
                     signed number literals are not supported"
                );
                return Err(self.error(tok, message));
            }
            _ => return Err(self.expected("an argument (a variable, number or string)")),
        };
        self.bump();
        Ok(term)
    }

    fn integer(&mut self, tok: Token) -> PResult<i64> {
        match self.text(tok).parse::<i64>() {
            Ok(value) => Ok(value),
            Err(_) => {
                let message = format!(
                    "integer literal {} does not fit in 64 bits (the range is {} to {})",
                    clip(self.text(tok)),
                    i64::MIN,
                    i64::MAX
                );
                Err(self.error(tok, message))
            }
        }
    }

    fn float(&mut self, tok: Token) -> PResult<f64> {
        match self.text(tok).parse::<f64>() {
            Ok(value) => Ok(value),
            Err(_) => {
                let message = format!("invalid float literal {}", clip(self.text(tok)));
                Err(self.error(tok, message))
            }
        }
    }
}

/// A named or numbered column reference, before its term is parsed.
enum Column {
    Name(String),
    Number(u64),
}

/// A rule from its parts; its span covers the first head to the last literal.
fn rule(heads: Vec<Literal>, body: Vec<Literal>) -> Rule {
    let first = heads.first().map(|l| l.span).unwrap_or_default();
    let last = body.last().or(heads.last()).map_or(first, |l| l.span);
    Rule { heads, body, span: first.join(last) }
}

/// The value of a string token, converted as Congress does: drop one character from each
/// end of the whole token and process no escapes. So `"a\"b"` is `a\"b`, `u"x"` is `"x`,
/// `'it''s'` is `it''s` and `"""ab"""` is `""ab""`.
fn string_value(token: &str) -> &str {
    // A string token starts with a prefix letter or a quote and ends with a quote, all
    // ASCII, so these cuts are on char boundaries; `get` keeps it panic-free regardless.
    token.get(1..token.len().saturating_sub(1)).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(src: &str) -> Vec<Rule> {
        let parsed = parse(src);
        assert!(parsed.diagnostics.is_empty(), "{src:?}: {:?}", parsed.diagnostics);
        parsed.rules
    }

    fn one(src: &str) -> Rule {
        let mut rules = ok(src);
        assert_eq!(rules.len(), 1, "{src:?}: {rules:?}");
        rules.remove(0)
    }

    fn errors(src: &str) -> Vec<Diagnostic> {
        let parsed = parse(src);
        assert!(!parsed.diagnostics.is_empty(), "{src:?} parsed: {:?}", parsed.rules);
        parsed.diagnostics
    }

    /// The single diagnostic for `src`, as `line:col: message`.
    fn error(src: &str) -> String {
        let diags = errors(src);
        assert_eq!(diags.len(), 1, "{src:?}: {diags:?}");
        diags[0].short(src)
    }

    fn printed(src: &str) -> Vec<String> {
        ok(src).iter().map(Rule::to_string).collect()
    }

    fn args(src: &str) -> Vec<Term> {
        one(src).heads[0].atom.args.iter().map(|a| a.term().clone()).collect()
    }

    fn str_const(s: &str) -> Term {
        Term::Const(Value::str(s))
    }

    // ----- well-formed input --------------------------------------------------------

    #[test]
    fn fact_and_rule() {
        let fact = one("p(1, \"a\", 2.5, x)");
        assert!(fact.is_fact());
        assert_eq!(fact.span, Span::new(0, 17));
        let rule = one("p(x) :- q(x), not r(x)");
        assert_eq!(rule.heads.len(), 1);
        assert_eq!(rule.body.len(), 2);
        assert!(rule.body[1].negated);
        assert_eq!(rule.span, Span::new(0, 22));
        assert_eq!(rule.to_string(), "p(x) :- q(x), not r(x)");
    }

    #[test]
    fn every_term_form() {
        assert_eq!(
            args("p(x, _, True, False, 1, 0, 000, 1.5, .5, 2., 1e3, 1.5E-2, 'a')"),
            vec![
                Term::Var("x".into()),
                Term::Var("_".into()),
                Term::Var("True".into()),
                Term::Var("False".into()),
                Term::Const(Value::Int(1)),
                Term::Const(Value::Int(0)),
                Term::Const(Value::Int(0)),
                Term::Const(Value::Float(1.5)),
                Term::Const(Value::Float(0.5)),
                Term::Const(Value::Float(2.0)),
                Term::Const(Value::Float(1000.0)),
                Term::Const(Value::Float(0.015)),
                str_const("a"),
            ]
        );
        assert_eq!(args("p(.x, servers.pause)"), vec![Term::Var(".x".into()), Term::Var("servers.pause".into())]);
    }

    #[test]
    fn string_literal_quirks() {
        // The conformance case `string_literal_quirks`: one char off each end, no escapes.
        let src = r#"s(u"pre", "a\"b", 'it''s', "tab\there", """ab""", '', r'x\'y', b"z")"#;
        assert_eq!(
            args(src),
            ["\"pre", "a\\\"b", "it''s", "tab\\there", "\"\"ab\"\"", "", "'x\\'y", "\"z"]
                .into_iter()
                .map(str_const)
                .collect::<Vec<_>>()
        );
        assert_eq!(args("s('''multi\nline''')"), vec![str_const("''multi\nline''")]);
    }

    #[test]
    fn named_and_numbered_arguments() {
        let rule = one("p(x) :- nova:servers(x, id=y, 3=\"z\", 0=1)");
        let args = &rule.body[0].atom.args;
        assert!(matches!(&args[0], Arg::Positional { term: Term::Var(v), .. } if v == "x"));
        match &args[1] {
            Arg::Named { column, term, span } => {
                assert_eq!(column, "id");
                assert_eq!(term, &Term::Var("y".into()));
                assert_eq!(*span, Span::new(24, 28));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&args[2], Arg::Numbered { index: 3, term, .. } if *term == str_const("z")));
        assert!(matches!(&args[3], Arg::Numbered { index: 0, term: Term::Const(Value::Int(1)), .. }));
    }

    #[test]
    fn qualified_names_split_at_the_first_colon() {
        let atom = one("a:b:c(1)").heads[0].atom.clone();
        assert_eq!(atom.policy.as_deref(), Some("a"));
        assert_eq!(atom.table, "b:c");
        assert_eq!(atom.name_span, Span::new(0, 5));
        let atom = one("nova:servers(x)").heads[0].atom.clone();
        assert_eq!((atom.policy.as_deref(), atom.table.as_str()), (Some("nova"), "servers"));
        let atom = one("servers.pause(x)").heads[0].atom.clone();
        assert_eq!((atom.policy, atom.table.as_str()), (None, "servers.pause"));
    }

    #[test]
    fn sign_suffixes() {
        let rules = ok("p+(x) :- q(x)\nnova:r-(1)\ns+");
        assert_eq!(rules[0].heads[0].atom.sign, Some(Sign::Plus));
        assert_eq!(rules[1].heads[0].atom.sign, Some(Sign::Minus));
        assert_eq!(rules[1].heads[0].atom.policy.as_deref(), Some("nova"));
        assert_eq!(rules[2].heads[0].atom.sign, Some(Sign::Plus));
        assert_eq!(rules[2].heads[0].atom.span, Span::new(25, 27));
        assert_eq!(ok("p(x)")[0].heads[0].atom.sign, None);
    }

    #[test]
    fn modals() {
        let rule = one("execute[nova:servers.pause(x)] :- q(x), not insert[r(x)]");
        assert_eq!(rule.heads[0].modal, Some(Modal::Execute));
        assert_eq!(rule.heads[0].atom.table, "servers.pause");
        assert_eq!(rule.heads[0].span, Span::new(0, 30));
        assert_eq!(rule.body[1].modal, Some(Modal::Insert));
        assert!(rule.body[1].negated);
        assert_eq!(one("delete[p(1)]").heads[0].modal, Some(Modal::Delete));
        // Without a bracket the keywords are ordinary names.
        assert_eq!(one("execute(1)").heads[0].atom.table, "execute");
    }

    #[test]
    fn negation_forms() {
        for src in ["p(x) :- q(x), not r(x)", "p(x) :- q(x), NOT r(x)", "p(x) :- q(x), !r(x)", "p(x) :- q(x), ! r(x)"] {
            let rule = one(src);
            assert!(rule.body[1].negated, "{src}");
            assert_eq!(rule.body[1].atom.table, "r", "{src}");
        }
        // `not` not followed by a name is a name.
        let rule = one("p(not) :- not(1)");
        assert_eq!(rule.heads[0].atom.args[0].term(), &Term::Var("not".into()));
        assert_eq!(rule.body[0].atom.table, "not");
        assert!(!rule.body[0].negated);
    }

    #[test]
    fn zero_arity_and_missing_parentheses() {
        let rule = one("p :- q, r()");
        assert!(rule.heads[0].atom.args.is_empty());
        assert!(rule.body.iter().all(|l| l.atom.args.is_empty()));
        assert_eq!(rule.to_string(), "p() :- q(), r()");
        assert_eq!(one("p()").span, Span::new(0, 3));
    }

    #[test]
    fn multiple_heads_parse() {
        let rule = one("p(x), q(x) :- r(x)");
        assert_eq!(rule.heads.len(), 2);
    }

    #[test]
    fn terminators_are_optional() {
        assert_eq!(printed("p(1); q(2). r(3)\ns(4);"), ["p(1)", "q(2)", "r(3)", "s(4)"]);
        assert_eq!(printed("p(x) :- q(x);"), ["p(x) :- q(x)"]);
    }

    #[test]
    fn statements_need_no_separator() {
        // Congress reads these as several statements; the API then says `multiple_rules`.
        assert_eq!(printed("p(1) p(2)"), ["p(1)", "p(2)"]);
        assert_eq!(printed("p(x) :- q(x) r(x)"), ["p(x) :- q(x)", "r(x)"]);
        assert_eq!(printed("p(x) :- q(x) and r(x)"), ["p(x) :- q(x)", "and()", "r(x)"]);
    }

    #[test]
    fn a_trailing_dot_after_a_bare_name_is_part_of_it() {
        // Congress's identifiers may contain dots, so `q.` is the table `q.`.
        assert_eq!(one("p :- q.").body[0].atom.table, "q.");
    }

    #[test]
    fn whitespace_and_comments_between_tokens() {
        let rules = ok("// header\np ( x ) /* c */ :-\n  # note\n  nova : servers ( x ) , q - ( x )\n");
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].to_string(), "p(x) :- nova:servers(x), q-(x)");
    }

    #[test]
    fn empty_input_and_comments_only() {
        for src in ["", "   \n\t", "/* only a comment */", "// c", "# c\n# d\n"] {
            let parsed = parse(src);
            assert!(parsed.rules.is_empty() && parsed.diagnostics.is_empty(), "{src:?}");
        }
    }

    #[test]
    fn line_comments_may_end_at_end_of_input() {
        // Deviation: Congress demands the newline.
        assert_eq!(printed("c(9) // line comment without trailing newline"), ["c(9)"]);
        assert_eq!(printed("c(9) # hash comment without trailing newline"), ["c(9)"]);
    }

    #[test]
    fn spans_point_into_the_source() {
        let src = "head(x) :- nova:servers(x, name=\"n\")";
        let rule = one(src);
        let atom = &rule.body[0].atom;
        assert_eq!(&src[atom.name_span.start as usize..atom.name_span.end as usize], "nova:servers");
        assert_eq!(&src[atom.span.start as usize..atom.span.end as usize], "nova:servers(x, name=\"n\")");
        let arg = atom.args[1].span();
        assert_eq!(&src[arg.start as usize..arg.end as usize], "name=\"n\"");
    }

    // ----- errors (the conformance case `parse_errors` and friends) -----------------

    #[test]
    fn unclosed_argument_list() {
        assert_eq!(error("p(x :- q(x)"), "1:5: expected ')' or ',' after argument, found ':-'");
    }

    #[test]
    fn trailing_comma_is_an_error_at_end_of_input() {
        assert_eq!(error("p(x) :- q(x),"), "1:14: expected a literal after ',', found end of input");
        assert_eq!(errors("p(x) :- q(x),")[0].span, Span::new(13, 13));
        assert_eq!(error("p(x) :-"), "1:8: expected a literal after ':-', found end of input");
    }

    #[test]
    fn negative_literals_are_an_error() {
        let msg = error("p(-1)");
        assert!(msg.starts_with("1:3: expected an argument"), "{msg}");
        assert!(msg.contains("signed number literals are not supported"), "{msg}");
        assert_eq!(error("p(-x)"), "1:3: expected an argument (a variable, number or string), found '-'");
    }

    #[test]
    fn unterminated_string() {
        let d = &errors("p(\"unterminated)")[0];
        assert_eq!(d.code, "lex");
        assert_eq!(error("p(\"unterminated)"), "1:3: unterminated string literal");
    }

    #[test]
    fn colon_equals_is_an_error() {
        assert_eq!(error("p(x) := q(x)"), "1:6: expected ',', ':-' or the end of the statement, found ':'");
        assert!(parse("p(x) := q(x)").rules.is_empty());
    }

    #[test]
    fn leading_zeros_are_an_error() {
        let diags = errors("p(007)");
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].code, "lex");
        assert!(parse("p(007)").rules.is_empty());
    }

    #[test]
    fn hex_binary_octal_are_an_error() {
        for src in ["h(0x1F)", "h(0b101)", "h(0o17)"] {
            let msg = error(src);
            assert!(msg.starts_with("1:3: hexadecimal/binary/octal literals are not supported"), "{msg}");
        }
    }

    #[test]
    fn integer_overflow_is_an_error() {
        assert_eq!(args("p(9223372036854775807)"), vec![Term::Const(Value::Int(i64::MAX))]);
        let msg = error("p(9223372036854775808)");
        assert!(msg.starts_with("1:3: integer literal 9223372036854775808 does not fit in 64 bits"), "{msg}");
        let msg = error("p(99999999999999999999999=x)");
        assert!(msg.contains("column number"), "{msg}");
    }

    #[test]
    fn other_syntax_errors() {
        assert_eq!(error("p(1), q(2)"), "1:11: expected ':-' after the head literals of a rule, found end of input");
        assert!(error("not p(1)").starts_with("1:1: a fact cannot be negated"));
        assert_eq!(
            error("p(x) :- foo[q(x)]"),
            "1:9: unknown modal 'foo': only execute[...], insert[...] and delete[...] exist"
        );
        assert_eq!(error("execute[p(x)"), "1:13: expected ']' to close 'execute[', found end of input");
        assert_eq!(error("execute[]"), "1:9: expected an atom after 'execute[', found ']'");
        assert_eq!(error("nova:(x)"), "1:6: expected a name after ':' in a table name, found '('");
        assert_eq!(error(":- q(x)"), "1:1: expected a literal at the start of a statement, found ':-'");
        assert_eq!(error("p(x) :- !"), "1:10: expected an atom after the negation, found end of input");
        assert_eq!(error("p(x=)"), "1:5: expected an argument (a variable, number or string), found ')'");
        assert_eq!(error("p(\"a\" = 1)"), "1:7: expected ')' or ',' after argument, found '='");
        assert_eq!(error("p(\"a\" \"b\")"), "1:7: expected ')' or ',' after argument, found the string \"b\"");
        assert_eq!(error("p(1) ;;"), "1:7: expected a literal at the start of a statement, found ';'");
        assert_eq!(error("p(1) 2"), "1:6: expected ',', ':-' or the end of the statement, found '2'");
        assert_eq!(error("insert[p(1) :- true]"), "1:13: expected ']' to close 'insert[', found ':-'");
    }

    // ----- recovery -----------------------------------------------------------------

    #[test]
    fn recovers_and_reports_every_bad_statement() {
        let src = "\
p(x) :- q(x)
bad1(x :- q(x)
good1(1)
bad2(-1)
good2(x) :-
    q(x),
    r(x)
bad3(x) := q(x)
good3(2).
";
        let parsed = parse(src);
        let at: Vec<String> = parsed.diagnostics.iter().map(|d| d.short(src)).collect();
        assert_eq!(at.len(), 3, "{at:?}");
        assert!(at[0].starts_with("2:8: expected ')' or ','"), "{at:?}");
        assert!(at[1].starts_with("4:6: expected an argument"), "{at:?}");
        assert!(at[2].starts_with("8:9: expected ','"), "{at:?}");
        let printed: Vec<String> = parsed.rules.iter().map(Rule::to_string).collect();
        assert_eq!(printed, ["p(x) :- q(x)", "good1(1)", "good2(x) :- q(x), r(x)", "good3(2)"]);
    }

    #[test]
    fn recovery_stops_at_terminators() {
        let parsed = parse("p(x :- q(x); good(1); p(-1). good(2)");
        assert_eq!(parsed.diagnostics.len(), 2, "{:?}", parsed.diagnostics);
        let printed: Vec<String> = parsed.rules.iter().map(Rule::to_string).collect();
        assert_eq!(printed, ["good(1)", "good(2)"]);
    }

    #[test]
    fn recovery_skips_continuation_lines() {
        // The line after a trailing ',' continues the bad rule; it is not a new statement.
        let src = "p(x) :- q(x), 1bad,\n  r(x)\ngood(1)";
        let parsed = parse(src);
        assert_eq!(parsed.diagnostics.len(), 1, "{:?}", parsed.diagnostics);
        assert_eq!(parsed.diagnostics[0].short(src), "1:15: expected a literal after ',', found '1'");
        assert_eq!(parsed.rules.iter().map(Rule::to_string).collect::<Vec<_>>(), ["good(1)"]);
    }

    #[test]
    fn lex_errors_are_reported_once_and_recovered_from() {
        let src = "p(007)\nq(\"open\nr(1)\ns(@) t(1)\nu(2) /* open";
        let parsed = parse(src);
        let at: Vec<String> = parsed.diagnostics.iter().map(|d| d.short(src)).collect();
        assert_eq!(at.len(), 4, "{at:?}");
        assert!(at[0].starts_with("1:3: integer literals cannot have leading zeros"), "{at:?}");
        assert!(at[1].starts_with("2:3: unterminated string literal"), "{at:?}");
        assert!(at[2].starts_with("4:3: unexpected character '@'"), "{at:?}");
        assert!(at[3].starts_with("5:6: unterminated block comment"), "{at:?}");
        let printed: Vec<String> = parsed.rules.iter().map(Rule::to_string).collect();
        assert_eq!(printed, ["r(1)", "u(2)"]);
    }

    #[test]
    fn a_stray_line_is_its_own_error() {
        let parsed = parse("p(1)\n]\nq(2)");
        assert_eq!(parsed.diagnostics.len(), 1);
        assert_eq!(parsed.rules.len(), 2);
    }

    #[test]
    fn diagnostics_are_in_source_order() {
        let parsed = parse("p(-1)\nq(@)\nr(,)");
        let starts: Vec<u32> = parsed.diagnostics.iter().map(|d| d.span.start).collect();
        assert_eq!(starts.len(), 3);
        assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{starts:?}");
    }

    // ----- pathological input -------------------------------------------------------

    #[test]
    fn huge_string_literal() {
        let big = "x".repeat(5 * 1024 * 1024);
        let src = format!("p(\"{big}\")");
        let rule = one(&src);
        assert_eq!(rule.heads[0].atom.args[0].term(), &str_const(&big));
        let unterminated = format!("p(\"{big}");
        assert_eq!(errors(&unterminated).len(), 1);
    }

    #[test]
    fn many_rules() {
        let src: String = (0..50_000).map(|i| format!("p{i}(x, {i}) :- q(x, \"s\"), not r(x)\n")).collect();
        assert_eq!(ok(&src).len(), 50_000);
        let bad: String = (0..50_000).map(|i| format!("p{i}(x :- q(x)\n")).collect();
        let parsed = parse(&bad);
        assert_eq!(parsed.diagnostics.len(), 50_000);
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        for open in ["(", "[", "p(", "execute["] {
            let src = open.repeat(100_000);
            let parsed = parse(&src);
            assert!(!parsed.diagnostics.is_empty(), "{open}");
            assert!(parsed.diagnostics.len() <= 2, "{open}: {}", parsed.diagnostics.len());
        }
        let src = format!("p{})", "(".repeat(100_000));
        assert_eq!(errors(&src).len(), 1);
    }

    #[test]
    fn long_junk_and_long_comments() {
        assert_eq!(errors(&"@".repeat(1_000_000)).len(), 1);
        assert_eq!(errors(&"\u{1F600}".repeat(100_000)).len(), 1);
        assert!(ok(&format!("/*{}*/ p", "*".repeat(1_000_000))).len() == 1);
        assert!(ok(&format!("#{}", "#".repeat(1_000_000))).is_empty());
    }
}
