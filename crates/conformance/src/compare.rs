//! Comparing our results with recorded ones, and showing differences concisely.

use super::cases::ActionRecord;
use congress_engine::Answer;
use congress_engine::syntax::Term;
use congress_engine::{ActionEvent, Value};
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// How many rows a mismatch message shows before eliding the rest.
const SHOW_ROWS: usize = 6;

/// An answer cell: a value, or an unbound variable (action policies only).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Cell {
    Val(Value),
    Var(String),
}

impl Cell {
    /// A recorded answer cell: `{"var": name}` or a JSON scalar (int and float kept
    /// apart; other JSON through Congress's conversion).
    pub(super) fn expected(j: &Json) -> Cell {
        match j {
            Json::Object(o) if o.len() == 1 => match o.get("var").and_then(Json::as_str) {
                Some(name) => Cell::Var(name.to_string()),
                None => Cell::Val(Value::from_json_congress(j)),
            },
            Json::String(s) => Cell::Val(Value::str(s)),
            _ => Cell::Val(Value::from_json_congress(j)),
        }
    }

    pub(super) fn from_term(t: &Term) -> Cell {
        match t {
            Term::Var(v) => Cell::Var(v.clone()),
            Term::Const(c) => Cell::Val(c.clone()),
        }
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Val(v) => write!(f, "{v}"),
            Cell::Var(v) => f.write_str(v),
        }
    }
}

pub(super) fn show_row(row: &[Cell]) -> String {
    let cells: Vec<String> = row.iter().map(Cell::to_string).collect();
    format!("({})", cells.join(", "))
}

pub(super) fn show_answers(answers: &[Answer]) -> String {
    let rows: Vec<Vec<Cell>> = answers.iter().map(|a| a.iter().map(Cell::from_term).collect()).collect();
    show_list(rows.iter().map(|r| show_row(r)))
}

/// `[a, b, c, ... (n more)]`.
fn show_list(items: impl ExactSizeIterator<Item = String>) -> String {
    let n = items.len();
    let mut shown: Vec<String> = items.take(SHOW_ROWS).collect();
    if n > SHOW_ROWS {
        shown.push(format!("... ({} more)", n - SHOW_ROWS));
    }
    format!("[{}]", shown.join(", "))
}

/// `None` when equal, else which items are missing and which are extra.
pub(super) fn diff_sets<T: Ord>(
    expected: &BTreeSet<T>,
    ours: &BTreeSet<T>,
    show: impl Fn(&T) -> String,
) -> Option<String> {
    let missing: Vec<String> = expected.difference(ours).map(&show).collect();
    let extra: Vec<String> = ours.difference(expected).map(&show).collect();
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing {}", show_list(missing.into_iter())));
    }
    if !extra.is_empty() {
        parts.push(format!("extra {}", show_list(extra.into_iter())));
    }
    if parts.is_empty() { None } else { Some(parts.join("; ")) }
}

/// An action as compared: `(service, action, positional)`, plus recorded named
/// arguments (which this engine never produces).
type ActionKey = (String, String, Vec<Value>, Vec<(String, String)>);

fn show_action(a: &ActionKey) -> String {
    let args: Vec<String> = a.2.iter().map(Value::to_string).collect();
    let named: Vec<String> = a.3.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let all: Vec<String> = args.into_iter().chain(named).collect();
    format!("{}:{}({})", a.0, a.1, all.join(", "))
}

/// Compare actions as multisets; `None` when equal.
pub(super) fn diff_actions(expected: &[ActionRecord], ours: &[ActionEvent]) -> Option<String> {
    let mut exp: BTreeMap<ActionKey, i64> = BTreeMap::new();
    for a in expected {
        let named = a.named.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
        let key =
            (a.service.clone(), a.action.clone(), a.positional.iter().map(Value::from_json_congress).collect(), named);
        *exp.entry(key).or_default() += 1;
    }
    let mut got: BTreeMap<ActionKey, i64> = BTreeMap::new();
    for a in ours {
        *got.entry((a.service.to_string(), a.action.to_string(), a.args.clone(), Vec::new())).or_default() += 1;
    }
    if exp == got {
        return None;
    }
    let mut missing = Vec::new();
    let mut extra = Vec::new();
    let keys: BTreeSet<&ActionKey> = exp.keys().chain(got.keys()).collect();
    for k in keys {
        let (e, g) = (exp.get(k).copied().unwrap_or(0), got.get(k).copied().unwrap_or(0));
        let times = |n: i64| {
            if n == 1 { String::new() } else { format!(" x{n}") }
        };
        if e > g {
            missing.push(format!("{}{}", show_action(k), times(e - g)));
        } else if g > e {
            extra.push(format!("{}{}", show_action(k), times(g - e)));
        }
    }
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("not fired {}", show_list(missing.into_iter())));
    }
    if !extra.is_empty() {
        parts.push(format!("fired but not recorded {}", show_list(extra.into_iter())));
    }
    Some(parts.join("; "))
}

/// An answer in Congress's printing, written over the query's own text: the name (and
/// any modal) before the first `(`, the answer's values, and what follows the last `)`
/// (`execute[p(x)]` -> `execute[p("a")]`).
pub(super) fn render_answer(query: &str, answer: &Answer) -> String {
    let query = query.trim();
    let (prefix, suffix) = match (query.find('('), query.rfind(')')) {
        (Some(open), Some(close)) if open < close => (&query[..open], &query[close + 1..]),
        _ => (query, ""),
    };
    let cells: Vec<String> = answer.iter().map(|t| Cell::from_term(t).to_string()).collect();
    format!("{}({}){}", prefix.trim_end(), cells.join(", "), suffix)
}

/// The first line of a Congress message, shortened.
pub(super) fn short(msg: &str) -> String {
    let line = msg.lines().next().unwrap_or("");
    if line.chars().count() > 160 {
        let cut: String = line.chars().take(160).collect();
        format!("{cut}...")
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_cells_keep_int_and_float_apart() {
        let j: Json = serde_json::from_str(r#"[1, 1.0, "1", {"var": "y"}, true]"#).expect("json");
        let cells: Vec<Cell> = j.as_array().expect("list").iter().map(Cell::expected).collect();
        assert_eq!(
            cells,
            vec![
                Cell::Val(Value::Int(1)),
                Cell::Val(Value::Float(1.0)),
                Cell::Val(Value::str("1")),
                Cell::Var("y".into()),
                Cell::Val(Value::str("True")),
            ]
        );
    }

    #[test]
    fn renders_answers_over_the_query_text() {
        let a: Answer = vec![Term::Const(Value::str("v5"))];
        assert_eq!(render_answer("execute[inv:alpha(v)]", &a), "execute[inv:alpha(\"v5\")]");
        assert_eq!(render_answer("p", &Vec::new()), "p()");
        let b: Answer = vec![Term::Const(Value::str("d1")), Term::Var("y".into())];
        assert_eq!(render_answer("free(x, y)", &b), "free(\"d1\", y)");
    }

    #[test]
    fn actions_compare_as_multisets() {
        let rec = |a: &str, v: &str| ActionRecord {
            service: "inv".into(),
            action: a.into(),
            positional: vec![Json::String(v.into())],
            named: BTreeMap::new(),
        };
        let ev = |a: &str, v: &str| ActionEvent {
            service: "inv".into(),
            action: a.into(),
            args: vec![Value::str(v)],
            policy: "classification".into(),
        };
        assert_eq!(diff_actions(&[rec("a", "1"), rec("b", "2")], &[ev("b", "2"), ev("a", "1")]), None);
        let diff = diff_actions(&[rec("a", "1")], &[ev("a", "1"), ev("a", "1")]).expect("differs");
        assert_eq!(diff, "fired but not recorded [inv:a(\"1\")]");
    }
}
