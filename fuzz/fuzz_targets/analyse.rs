//! Fuzz parsing and analysis together: any input, read as lossy UTF-8, is loaded into an
//! engine that has a datasource, a second policy and a few rules already; it must be
//! accepted or rejected with diagnostics whose spans lie inside the input, never panic,
//! and a rejected load must leave the engine as it was.
#![no_main]

use congress_engine::{Engine, PolicyKind, Value};
use libfuzzer_sys::fuzz_target;

fn engine() -> Engine {
    let mut e = Engine::with_default_policies();
    let schema = [("servers".to_string(), vec!["id".to_string(), "status".to_string()])].into();
    e.create_datasource("nova", schema).expect("datasource");
    e.create_policy("other", PolicyKind::Nonrecursive).expect("policy");
    e.insert_rules("other", "q(1)\nq(x) :- nova:servers(x, y)").expect("rules");
    e.replace_table("nova", "servers", vec![vec![Value::str("a"), Value::str("ACTIVE")]]).expect("data");
    e
}

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let mut e = engine();
    let before = e.rules("classification").expect("policy");
    match e.insert_rules("classification", &src) {
        Ok(_) => {
            let _ = e.query_values("classification", "error(x)");
        }
        Err(err) => {
            if let Some((text, diags)) = err.diagnostics() {
                for d in diags {
                    assert!(d.span.end as usize <= text.len() && d.span.start <= d.span.end, "{d:?}");
                }
            }
            assert_eq!(e.rules("classification").expect("policy"), before, "a failed load changed the policy");
        }
    }
});
