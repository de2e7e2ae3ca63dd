//! Property tests for parsing and analysis together: loading any text into an engine
//! returns (never panics); a rejected load leaves the engine exactly as it was; an
//! accepted one can be queried and deleted again.

use congress_engine::{Engine, PolicyKind, Value};
use proptest::prelude::*;

/// Rule-shaped pieces: names of tables that exist (with the right and wrong arities),
/// builtins, modals, column references, negation, constants.
const TOKENS: &[&str] = &[
    "p(x)",
    "p(x, y)",
    "q(x)",
    "q(1)",
    "r(\"a\")",
    "nova:servers(x, y)",
    "nova:servers(id=x)",
    "nova:servers(id=x, status=\"ACTIVE\")",
    "nova:servers(9=x)",
    "nova:servers(colour=x)",
    "other:q(x)",
    "nosuch:t(x)",
    "builtin:lt(x, 3)",
    "builtin:plus(x, 1, y)",
    "lt(x, y)",
    "execute[nova:pause(x)]",
    "insert[p(x)]",
    "error(x)",
    "p+(x)",
    "true",
    "false",
    "not ",
    "NOT ",
    "!",
    " :- ",
    ", ",
    "\n",
    ";",
    "x",
    "_",
    "(",
    ")",
    "1.5",
    "\"s\"",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..24).prop_map(|t| t.concat())
}

fn engine() -> Engine {
    let mut e = Engine::with_default_policies();
    let schema = [("servers".to_string(), vec!["id".to_string(), "status".to_string()])].into();
    e.create_datasource("nova", schema).expect("datasource");
    e.create_policy("other", PolicyKind::Nonrecursive).expect("policy");
    e.insert_rules("other", "q(1)\nq(x) :- nova:servers(x, y)").expect("rules");
    e.replace_table("nova", "servers", vec![vec![Value::str("a"), Value::str("ACTIVE")]]).expect("data");
    e
}

fn state(e: &Engine) -> (Vec<String>, Vec<String>, Vec<Vec<Value>>) {
    (e.rules("classification").unwrap(), e.tables("classification").unwrap(), e.rows("other", "q").unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn loading_any_text_is_all_or_nothing(src in soup()) {
        let mut e = engine();
        let before = state(&e);
        match e.insert_rules("classification", &src) {
            Ok(_) => {
                for rule in e.rules("classification").unwrap() {
                    e.delete_rule("classification", &rule).expect("a loaded rule can be deleted");
                }
                prop_assert_eq!(e.rules("classification").unwrap(), before.0);
            }
            Err(err) => {
                if let Some((text, diags)) = err.diagnostics() {
                    for d in diags {
                        prop_assert!(d.span.start <= d.span.end && d.span.end as usize <= text.len());
                    }
                }
                prop_assert_eq!(state(&e), before);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_engine(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut e = engine();
        let src = String::from_utf8_lossy(&bytes);
        let _ = e.insert_rules("classification", &src);
        let _ = e.insert_rule("classification", &src);
        let _ = e.query_values("classification", &src);
        let _ = e.explain("classification", &src);
    }
}
