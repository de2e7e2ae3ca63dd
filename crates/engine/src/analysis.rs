//! Static checks and compilation of parsed rules: name resolution (`policy:table`,
//! builtins, `true`/`false`), column references and padding against known schemas,
//! modal and head restrictions, arity consistency, and body/head safety with Congress's
//! reordering (a negation or builtin input may be bound by a positive literal anywhere
//! in the body). Stratification lives in [`crate::stratify`].
//!
//! The output, [`Compiled`], names tables by [`TableKey`] (strings), so this module knows
//! nothing of the engine's storage.

use crate::builtins::{self, Builtin};
use crate::syntax::diag::{MAX_RULE_TEXT, clip};
use crate::syntax::{Arg, Atom, Diagnostic, Literal, Modal, Rule, Sign, Span, Term};
use crate::types::PolicyKind;
use crate::value::Value;
use hashbrown::HashMap;
use std::collections::BTreeSet;
use std::fmt;

/// Rules longer than this are refused (evaluation recurses once per body literal).
pub const MAX_BODY_LITERALS: usize = 512;
/// Atoms wider than this are refused.
pub const MAX_ARITY: usize = 1024;
/// Names (tables, columns, variables) quoted in a message are cut to this many characters.
const QUOTED: usize = 80;
/// A message lists at most this many unbound variables.
const MAX_VARS: usize = 10;

/// A table: its policy, its name inside that policy, and whether it is an
/// `execute[...]` table.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableKey {
    pub policy: String,
    pub name: String,
    pub execute: bool,
}

impl TableKey {
    pub fn new(policy: &str, name: &str) -> Self {
        TableKey { policy: policy.to_string(), name: name.to_string(), execute: false }
    }
}

impl fmt::Display for TableKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.execute {
            write!(f, "{}:execute[{}]", self.policy, self.name)
        } else {
            write!(f, "{}:{}", self.policy, self.name)
        }
    }
}

/// What analysis needs to know about the policies already loaded.
pub trait SchemaLookup {
    /// The kind of a policy, if it exists.
    fn kind(&self, policy: &str) -> Option<PolicyKind>;
    /// The columns of a datasource table (only datasource policies have them).
    fn columns(&self, policy: &str, table: &str) -> Option<Vec<String>>;
    /// The arity this table is known to have, if any.
    fn known_arity(&self, key: &TableKey) -> Option<usize>;
}

/// A compiled term: a rule variable (numbered) or a constant.
#[derive(Clone, Debug, PartialEq)]
pub enum CTerm {
    Var(usize),
    Const(Value),
}

/// A compiled body literal.
#[derive(Clone, Debug)]
pub enum CLit {
    Pos {
        key: TableKey,
        terms: Vec<CTerm>,
    },
    Neg {
        key: TableKey,
        terms: Vec<CTerm>,
    },
    Builtin {
        builtin: &'static Builtin,
        terms: Vec<CTerm>,
        negated: bool,
    },
    /// `true` (holds) or `false` (never holds), possibly negated already folded in.
    Const(bool),
}

impl CLit {
    fn vars(&self) -> Vec<usize> {
        let terms = match self {
            CLit::Pos { terms, .. } | CLit::Neg { terms, .. } | CLit::Builtin { terms, .. } => terms,
            CLit::Const(_) => return Vec::new(),
        };
        terms.iter().filter_map(|t| if let CTerm::Var(v) = t { Some(*v) } else { None }).collect()
    }
}

/// A compiled rule.
#[derive(Clone, Debug)]
pub struct CRule {
    pub head: TableKey,
    pub head_terms: Vec<CTerm>,
    pub body: Vec<CLit>,
    pub var_names: Vec<String>,
}

/// A compiled statement.
#[derive(Clone, Debug)]
pub enum Compiled {
    Fact { key: TableKey, row: Vec<Value> },
    Rule(CRule),
}

impl Compiled {
    /// Every table this statement mentions with the arity it uses.
    pub fn table_arities(&self) -> Vec<(&TableKey, usize)> {
        match self {
            Compiled::Fact { key, row } => vec![(key, row.len())],
            Compiled::Rule(r) => {
                let mut v = vec![(&r.head, r.head_terms.len())];
                for l in &r.body {
                    if let CLit::Pos { key, terms, .. } | CLit::Neg { key, terms, .. } = l {
                        v.push((key, terms.len()));
                    }
                }
                v
            }
        }
    }
}

struct Ctx<'a> {
    policy: &'a str,
    kind: PolicyKind,
    schema: &'a dyn SchemaLookup,
    vars: HashMap<String, usize>,
    var_names: Vec<String>,
    diags: Vec<Diagnostic>,
    rule_text: String,
}

impl Ctx<'_> {
    fn var(&mut self, name: &str) -> usize {
        if let Some(&v) = self.vars.get(name) {
            return v;
        }
        let v = self.var_names.len();
        self.vars.insert(name.to_string(), v);
        self.var_names.push(name.to_string());
        v
    }

    fn err(&mut self, code: &'static str, msg: impl Into<String>, span: Span) {
        self.diags.push(Diagnostic::error(code, msg, span).with_rule(self.rule_text.clone()));
    }

    fn term(&mut self, t: &Term) -> CTerm {
        match t {
            Term::Var(v) => CTerm::Var(self.var(v)),
            Term::Const(c) => CTerm::Const(c.clone()),
        }
    }
}

fn qualified(atom: &Atom) -> String {
    match &atom.policy {
        Some(p) => format!("{p}:{}", atom.table),
        None => atom.table.clone(),
    }
}

/// Compile one parsed statement for `policy` (of `kind`).
pub fn compile(
    policy: &str,
    kind: PolicyKind,
    rule: &Rule,
    schema: &dyn SchemaLookup,
) -> Result<Compiled, Vec<Diagnostic>> {
    let mut cx = Ctx {
        policy,
        kind,
        schema,
        vars: HashMap::new(),
        var_names: Vec::new(),
        diags: Vec::new(),
        rule_text: clip(&rule.to_string(), MAX_RULE_TEXT).into_owned(),
    };
    let out = compile_inner(&mut cx, rule);
    if cx.diags.is_empty() { out.ok_or_else(Vec::new) } else { Err(cx.diags) }
}

fn compile_inner(cx: &mut Ctx<'_>, rule: &Rule) -> Option<Compiled> {
    if cx.kind == PolicyKind::Datasource {
        cx.err("not-permitted", format!("rules cannot be inserted into datasource policy {}", cx.policy), rule.span);
        return None;
    }
    if rule.heads.len() != 1 {
        let span = rule.heads.get(1).map(|h| h.span).unwrap_or(rule.span);
        cx.err("multiple-heads", "a rule must have exactly one head", span);
        return None;
    }
    if rule.body.len() > MAX_BODY_LITERALS {
        cx.err(
            "too-long",
            format!("rule has {} body literals; the limit is {MAX_BODY_LITERALS}", rule.body.len()),
            rule.span,
        );
        return None;
    }
    let head = &rule.heads[0];
    check_head_shape(cx, head, rule.is_fact());
    if !rule.is_fact() && cx.kind == PolicyKind::Database {
        cx.err(
            "not-permitted",
            "database policies hold ground facts only (non-atomic formula is not permitted)",
            rule.span,
        );
    }
    for lit in &rule.body {
        if let Some(m) = lit.modal {
            cx.err("modal-in-body", format!("modal `{}[...]` is only allowed in a rule head", m.keyword()), lit.span);
        }
        if lit.atom.sign.is_some() {
            cx.err("sign-in-body", "`+`/`-` update tables may not appear in a rule body", lit.atom.name_span);
        }
    }
    if !cx.diags.is_empty() {
        return None;
    }

    // Body first, so head padding variables are numbered after body variables.
    let mut body = Vec::with_capacity(rule.body.len());
    for (i, lit) in rule.body.iter().enumerate() {
        if let Some(l) = compile_body_literal(cx, lit, i) {
            body.push(l);
        }
    }
    let head_key = head_key(cx, head);
    let head_terms = resolve_args(cx, &head.atom, &head_key, usize::MAX);

    if !cx.diags.is_empty() {
        return None;
    }
    let head_terms = head_terms?;
    if rule.is_fact() {
        let mut row = Vec::with_capacity(head_terms.len());
        for t in &head_terms {
            match t {
                CTerm::Const(c) => row.push(c.clone()),
                CTerm::Var(v) => {
                    let name = cx.var_names[*v].clone();
                    cx.err(
                        "non-ground-fact",
                        format!("facts must be ground, but `{}` is a variable", display_var(&name)),
                        head.span,
                    );
                    return None;
                }
            }
        }
        return Some(Compiled::Fact { key: head_key, row });
    }
    check_safety(cx, head, &head_terms, &body, rule);
    if !cx.diags.is_empty() {
        return None;
    }
    Some(Compiled::Rule(CRule { head: head_key, head_terms, body, var_names: cx.var_names.clone() }))
}

fn display_var(name: &str) -> String {
    if let Some(rest) = name.strip_prefix('?') {
        format!("{rest} (a column added to pad the literal to the table's known width)")
    } else {
        name.to_string()
    }
}

fn check_head_shape(cx: &mut Ctx<'_>, head: &Literal, is_fact: bool) {
    if head.negated {
        cx.err("negated-head", "a rule head cannot be negated", head.span);
    }
    match head.modal {
        Some(Modal::Insert) | Some(Modal::Delete) => {
            let m = head.modal.map(Modal::keyword).unwrap_or_default();
            cx.err(
                "modal-head",
                format!("`{m}[...]` heads are not supported; use execute[...] or an action policy"),
                head.span,
            );
        }
        Some(Modal::Execute) => {
            if is_fact {
                cx.err("execute-fact", "an execute[...] statement needs a body", head.span);
            }
            if head.atom.sign.is_some() {
                cx.err("sign-in-execute", "an execute[...] head cannot carry a +/- sign", head.atom.name_span);
            }
        }
        None => {
            let signed = head.atom.sign.is_some();
            if signed && cx.kind != PolicyKind::Action {
                cx.err("sign-head", "`+`/`-` update heads are only allowed in action policies", head.atom.name_span);
            }
            if head.atom.policy.is_some() && !(signed && cx.kind == PolicyKind::Action) {
                let what = if is_fact { "a fact" } else { "a non-modal rule head" };
                cx.err(
                    "qualified-head",
                    format!(
                        "{what} may not name a policy (`{}`): rules write only their own policy's tables",
                        qualified(&head.atom)
                    ),
                    head.atom.name_span,
                );
            }
            if builtins::is_reserved(&head.atom.table) && !signed {
                cx.err(
                    "builtin-name",
                    format!("`{}` conflicts with the builtin of that name", head.atom.table),
                    head.atom.name_span,
                );
            }
            if matches!(head.atom.table.as_str(), "true" | "false") && head.atom.policy.is_none() {
                cx.err("builtin-name", format!("`{}` is a reserved table", head.atom.table), head.atom.name_span);
            }
        }
    }
}

fn head_key(cx: &Ctx<'_>, head: &Literal) -> TableKey {
    let atom = &head.atom;
    let sign = match atom.sign {
        Some(Sign::Plus) => "+",
        Some(Sign::Minus) => "-",
        None => "",
    };
    if head.modal == Some(Modal::Execute) {
        return TableKey { policy: cx.policy.to_string(), name: qualified(atom), execute: true };
    }
    TableKey { policy: cx.policy.to_string(), name: format!("{}{sign}", qualified(atom)), execute: false }
}

fn compile_body_literal(cx: &mut Ctx<'_>, lit: &Literal, index: usize) -> Option<CLit> {
    let atom = &lit.atom;
    let positional = atom.args.iter().all(|a| matches!(a, Arg::Positional { .. }));
    if atom.policy.is_none() && atom.args.is_empty() && matches!(atom.table.as_str(), "true" | "false") {
        return Some(CLit::Const((atom.table == "true") != lit.negated));
    }
    if positional && let Some(b) = builtins::lookup(&atom.table, atom.args.len()) {
        for (i, arg) in atom.args.iter().enumerate() {
            if let Arg::Positional { term: Term::Const(c), span } = arg
                && let Err(why) = b.check_constant(i, c)
            {
                cx.err("builtin-argument", format!("{}: {why}", b.name), *span);
            }
        }
        let terms = atom.args.iter().map(|a| cx.term(a.term())).collect();
        return Some(CLit::Builtin { builtin: b, terms, negated: lit.negated });
    }
    let key = TableKey {
        policy: atom.policy.clone().unwrap_or_else(|| cx.policy.to_string()),
        name: atom.table.clone(),
        execute: false,
    };
    let terms = resolve_args(cx, atom, &key, index)?;
    Some(if lit.negated { CLit::Neg { key, terms } } else { CLit::Pos { key, terms } })
}

/// Positional, named and numbered arguments to a positional term list, padded to the
/// table's known arity.
fn resolve_args(cx: &mut Ctx<'_>, atom: &Atom, key: &TableKey, lit_index: usize) -> Option<Vec<CTerm>> {
    if atom.args.len() > MAX_ARITY {
        cx.err("too-wide", format!("literal has {} arguments; the limit is {MAX_ARITY}", atom.args.len()), atom.span);
        return None;
    }
    let name = clip(&qualified(atom), QUOTED).into_owned();
    let has_refs = atom.args.iter().any(|a| !matches!(a, Arg::Positional { .. }));
    let columns = if key.execute { None } else { cx.schema.columns(&key.policy, &key.name) };
    let known = match &columns {
        Some(c) => Some(c.len()),
        None => cx.schema.known_arity(key),
    };
    let mut slots: Vec<Option<CTerm>> = Vec::new();
    let mut seen_ref = false;
    for arg in &atom.args {
        match arg {
            Arg::Positional { term, span } => {
                if seen_ref {
                    cx.err(
                        "positional-after-reference",
                        format!("in {name}: a positional argument follows a column reference"),
                        *span,
                    );
                    return None;
                }
                let t = cx.term(term);
                slots.push(Some(t));
            }
            Arg::Named { .. } | Arg::Numbered { .. } => seen_ref = true,
        }
    }
    if has_refs {
        let Some(cols) = &columns else {
            let why = match cx.schema.kind(&key.policy) {
                Some(PolicyKind::Datasource) => {
                    format!("datasource {} has no table {}", key.policy, key.name)
                }
                _ => format!("{name} does not reference a datasource table with a known schema"),
            };
            cx.err("column-reference", format!("column references need a known schema: {why}"), atom.span);
            return None;
        };
        slots.resize(cols.len().max(slots.len()), None);
        let positional = atom.args.iter().filter(|a| matches!(a, Arg::Positional { .. })).count();
        for arg in &atom.args {
            let (idx, term, span) = match arg {
                Arg::Positional { .. } => continue,
                Arg::Named { column, term, span } => match cols.iter().position(|c| c == column) {
                    Some(i) => (i, term, *span),
                    None => {
                        cx.err(
                            "column-reference",
                            format!(
                                "in {name}: column `{}` does not exist (columns: {})",
                                clip(column, QUOTED),
                                clip(&cols.join(", "), MAX_RULE_TEXT)
                            ),
                            *span,
                        );
                        return None;
                    }
                },
                Arg::Numbered { index, term, span } => {
                    if *index as usize >= cols.len() {
                        cx.err(
                            "column-reference",
                            format!("in {name}: column index {index} is too large ({} columns)", cols.len()),
                            *span,
                        );
                        return None;
                    }
                    (*index as usize, term, *span)
                }
            };
            if idx < positional {
                cx.err("column-reference", format!("in {name}: column {idx} is already given positionally"), span);
                return None;
            }
            if slots[idx].is_some() {
                cx.err("column-reference", format!("in {name}: column {idx} is given more than once"), span);
                return None;
            }
            let t = cx.term(term);
            slots[idx] = Some(t);
        }
    }
    if let Some(k) = known {
        if slots.len() > k {
            cx.err("arity", format!("{name} has {} arguments but exactly {k} are permitted", slots.len()), atom.span);
            return None;
        }
        slots.resize(k, None);
    }
    let mut out = Vec::with_capacity(slots.len());
    for (col, s) in slots.into_iter().enumerate() {
        match s {
            Some(t) => out.push(t),
            None => {
                let v = cx.var(&format!("?x_{}{}", if lit_index == usize::MAX { 0 } else { lit_index + 1 }, col));
                out.push(CTerm::Var(v));
            }
        }
    }
    Some(out)
}

/// Head and body safety. Congress reorders the body so that negations and builtins come
/// after the literals that bind their inputs; a rule is safe iff such an order exists.
fn check_safety(cx: &mut Ctx<'_>, head: &Literal, head_terms: &[CTerm], body: &[CLit], rule: &Rule) {
    let mut bound: BTreeSet<usize> = BTreeSet::new();
    for l in body {
        if let CLit::Pos { .. } = l {
            bound.extend(l.vars());
        }
    }
    // Builtins whose inputs are bound bind their outputs; repeat to a fixpoint.
    loop {
        let before = bound.len();
        for l in body {
            if let CLit::Builtin { builtin, terms, negated: false, .. } = l {
                let inputs_bound = terms[..builtin.inputs].iter().all(|t| match t {
                    CTerm::Var(v) => bound.contains(v),
                    CTerm::Const(_) => true,
                });
                if inputs_bound {
                    let outs: Vec<usize> = terms[builtin.inputs..]
                        .iter()
                        .filter_map(|t| match t {
                            CTerm::Var(v) => Some(*v),
                            CTerm::Const(_) => None,
                        })
                        .collect();
                    bound.extend(outs);
                }
            }
        }
        if bound.len() == before {
            break;
        }
    }
    for (l, src) in body.iter().zip(&rule.body) {
        let needed: Vec<usize> = match l {
            CLit::Neg { .. } => l.vars(),
            CLit::Builtin { builtin, terms, negated, .. } => {
                let upto = if *negated { terms.len() } else { builtin.inputs };
                terms[..upto]
                    .iter()
                    .filter_map(|t| match t {
                        CTerm::Var(v) => Some(*v),
                        CTerm::Const(_) => None,
                    })
                    .collect()
            }
            _ => continue,
        };
        let unbound: Vec<String> = needed
            .iter()
            .filter(|v| !bound.contains(v))
            .map(|v| display_var(&cx.var_names[*v]))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !unbound.is_empty() {
            let what = if matches!(l, CLit::Neg { .. }) { "negated literal" } else { "builtin" };
            let mut vars: Vec<String> = unbound.iter().take(MAX_VARS).map(|v| clip(v, QUOTED).into_owned()).collect();
            if unbound.len() > MAX_VARS {
                vars.push(format!("and {} more", unbound.len() - MAX_VARS));
            }
            cx.err(
                "unsafe-body",
                format!(
                    "unsafe {what} `{}`: variable(s) {} must be bound by a positive literal of the body",
                    clip(&src.to_string(), MAX_RULE_TEXT),
                    vars.join(", ")
                ),
                src.span,
            );
        }
    }
    if cx.kind == PolicyKind::Action {
        return;
    }
    for t in head_terms {
        if let CTerm::Var(v) = t
            && !bound.contains(v)
        {
            let name = cx.var_names[*v].clone();
            cx.err(
                "unsafe-head",
                format!("variable {} found in head but not bound in the body", clip(&display_var(&name), QUOTED)),
                head.span,
            );
        }
    }
}
