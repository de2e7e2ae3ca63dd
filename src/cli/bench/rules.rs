//! `congress bench --workload e`: programs of many rules, the dimension that grows with
//! policy libraries and generated policies (one rule per tenant, image or CIDR).
//!
//! The program is either `rules_K.congress` written by the shared `gen_rules.py K DIR`
//! (`--shape gen`, K = `--rules`, read from `--data DIR`) or one of the shapes generated
//! in-process (`--shape flat|head|chain|chain-neg`, see [`Shape`]). Phases:
//! - `load`: the K rules parsed, analysed, stratified and loaded in one transaction into
//!   an engine whose tables are empty (median of `--runs-load` fresh engines);
//! - `rss`: what the loaded engine holds, as the growth of the resident set over the load
//!   (`bytes=`, `bytes_per_rule=`); the peak during the load is in the summary;
//! - `incr`: in the loaded program, as workloads `e-add` (a rule that is not there yet
//!   inserted, then deleted again: the time of the insert) and `e-del` (a rule from the
//!   middle of the program deleted, then inserted again: the time of the delete), medians
//!   of `--repeat` round trips; the other half of each round trip is in the summary;
//! - `eval` (only `--shape gen` when `--data` also holds workload a's `.facts`, N=1000 in the
//!   shared README): the rules inserted over the loaded data (rows = `error` rows). Its row
//!   count is checked against the same rules evaluated the other way round (rules first,
//!   then every row inserted), which takes another code path of the engine.

use super::{BenchArgs, Reporter, engine_err, median, proc_status_bytes, spread, timed};
use congress_engine::Engine;
use std::path::Path;

/// A generated program's shape (`rules` = K).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// `rules_K.congress` of the shared `gen_rules.py` (joins, negation, arithmetic).
    Gen,
    /// `p{i}(x) :- q{i}(x), not s{i}(x)`: K independent rules, 3K tables.
    Flat,
    /// `p(x) :- q{i}(x)`: K rules with one head.
    Head,
    /// `r{i}(x) :- r{i+1}(x)`: a chain K levels deep.
    Chain,
    /// `r{i}(x) :- q(x), not r{i+1}(x)`: a chain with negation between every two levels.
    ChainNeg,
}

impl Shape {
    fn label(self) -> &'static str {
        match self {
            Shape::Gen => "e",
            Shape::Flat => "e-flat",
            Shape::Head => "e-head",
            Shape::Chain => "e-chain",
            Shape::ChainNeg => "e-chain-neg",
        }
    }
}

/// Rule `i` of a generated shape (`None` for `gen`, which is read from a file).
pub fn rule(shape: Shape, i: usize) -> Option<String> {
    Some(match shape {
        Shape::Gen => return None,
        Shape::Flat => format!("p{i}(x) :- q{i}(x), not s{i}(x)"),
        Shape::Head => format!("p(x) :- q{i}(x)"),
        Shape::Chain => format!("r{i}(x) :- r{}(x)", i + 1),
        Shape::ChainNeg => format!("r{i}(x) :- q(x), not r{}(x)", i + 1),
    })
}

/// The policy the program goes into.
const POLICY: &str = "classification";

/// An engine ready for the program: Congress's policies and workload a's datasources.
fn fresh_engine() -> Result<Engine, String> {
    use super::workloads::{A_TABLES, schema};
    let mut engine = Engine::with_default_policies();
    for ds in ["nova", "neutron", "keystone", "glance"] {
        let tables: Vec<(&str, &[&str])> = A_TABLES.iter().filter(|t| t.0 == ds).map(|t| (t.1, t.2)).collect();
        engine.create_datasource(ds, schema(&tables)).map_err(engine_err(&format!("create datasource {ds}")))?;
    }
    Ok(engine)
}

/// Insert a whole program in one transaction (rows not reported).
fn load(engine: &mut Engine, text: &str) -> Result<(), String> {
    let mut tx = engine.transaction();
    tx.report_rows(false).insert_rules(POLICY, text);
    tx.commit().map(|_| ()).map_err(engine_err("insert the program"))
}

/// Run workload e.
pub fn bench(args: &BenchArgs) -> Result<(), String> {
    let k = args.rules;
    let shape = args.shape;
    let text = match shape {
        Shape::Gen => {
            let dir = args.data.as_ref().ok_or("--data DIR (with gen_rules.py's rules_K.congress) is required")?;
            let path = dir.join(format!("rules_{k}.congress"));
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e} (run gen_rules.py {k} DIR)", path.display()))?
        }
        _ => (0..k).filter_map(|i| rule(shape, i)).collect::<Vec<_>>().join("\n"),
    };
    let mut rep = Reporter::new(shape.label(), k);

    // load + rss: the first load is measured for memory too.
    let mut engine = fresh_engine()?;
    let rss_before = proc_status_bytes("VmRSS:").unwrap_or(0);
    let (loaded, first) = timed(|| load(&mut engine, &text));
    loaded?;
    let rss_after = proc_status_bytes("VmRSS:").unwrap_or(0);
    let peak = proc_status_bytes("VmHWM:").unwrap_or(0);
    let statements = engine.rules(POLICY).map_err(engine_err("list rules"))?.len();
    super::check_count("rules loaded", statements, text.lines().filter(|l| !l.trim().is_empty()).count())?;
    let mut loads = vec![first];
    for _ in 1..args.runs_load {
        let mut again = fresh_engine()?;
        let (r, secs) = timed(|| load(&mut again, &text));
        r?;
        loads.push(secs);
    }
    rep.result("load", median(loads.clone()), k);
    if loads.len() > 1 {
        rep.note(format!("load, fresh engines: {}", spread(&loads)));
    }
    let held = rss_after.saturating_sub(rss_before);
    let per_rule = held as f64 / k.max(1) as f64;
    rep.push_result(
        "rss",
        format!("workload={} n={k} phase=rss bytes={held} rows={k} bytes_per_rule={per_rule:.1}", shape.label()),
    );
    rep.note(format!(
        "{:>5} rss    {:>9.1} MiB held by the loaded program ({per_rule:.0} bytes per rule); peak RSS {:.1} MiB",
        shape.label(),
        held as f64 / (1024.0 * 1024.0),
        peak as f64 / (1024.0 * 1024.0)
    ));

    incremental(args, &mut engine, &text, &mut rep)?;
    if shape == Shape::Gen
        && let Some(dir) = args.data.as_deref()
        && dir.join("servers.facts").exists()
    {
        eval_over_data(args, dir, &text, &mut rep)?;
    }
    rep.finish();
    Ok(())
}

/// `e-add` and `e-del`: one rule in and out of the loaded program.
fn incremental(args: &BenchArgs, engine: &mut Engine, text: &str, rep: &mut Reporter) -> Result<(), String> {
    let k = args.rules;
    // A rule not in the program, of its shape (gen: a copy of a rule under a new head).
    let new_rule = match rule(args.shape, k) {
        Some(r) => r,
        None => {
            let first = text.lines().find(|l| l.starts_with("error(")).ok_or("no error rule in the program")?;
            first.replacen("error(", "error_extra(", 1)
        }
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let existing = lines.get(lines.len() / 2).ok_or("the program has no rules")?.to_string();
    let before = engine.fact_count();
    let (mut add, mut undo_add, mut del, mut undo_del) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.repeat {
        let step = |engine: &mut Engine, insert: bool, rule: &str| {
            let (r, secs) =
                timed(|| if insert { engine.insert_rule(POLICY, rule) } else { engine.delete_rule(POLICY, rule) });
            r.map(|_| secs).map_err(engine_err(if insert { "insert a rule" } else { "delete a rule" }))
        };
        add.push(step(engine, true, &new_rule)?);
        undo_add.push(step(engine, false, &new_rule)?);
        del.push(step(engine, false, &existing)?);
        undo_del.push(step(engine, true, &existing)?);
    }
    super::check_count("stored rows after the round trips", engine.fact_count(), before)?;
    let label = args.shape.label();
    rep.result_as(&format!("{label}-add"), "incr", median(add.clone()), 1);
    rep.result_as(&format!("{label}-del"), "incr", median(del.clone()), 1);
    rep.note(format!("insert `{new_rule}`: {}", spread(&add)));
    rep.note(format!("  and delete it again: {}", spread(&undo_add)));
    rep.note(format!("delete `{existing}`: {}", spread(&del)));
    rep.note(format!("  and insert it again: {}", spread(&undo_del)));
    Ok(())
}

/// `eval`: the program over workload a's data, checked against rules-then-data.
fn eval_over_data(args: &BenchArgs, dir: &Path, text: &str, rep: &mut Reporter) -> Result<(), String> {
    use super::workloads::{A_TABLES, FactsReader};
    let read = |engine: &mut Engine| -> Result<(), String> {
        for (ds, table, cols, stem) in A_TABLES {
            let rows: Vec<_> = FactsReader::open(dir, stem, cols.len())?.collect::<Result<_, _>>()?;
            engine.replace_table(ds, table, rows).map_err(engine_err(&format!("load {ds}:{table}")))?;
        }
        Ok(())
    };
    let errors = |engine: &Engine| engine.rows(POLICY, "error").map(|r| r.len()).map_err(engine_err("rows of error"));
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..args.runs {
        let mut engine = fresh_engine()?;
        read(&mut engine)?;
        let (r, secs) = timed(|| load(&mut engine, text));
        r?;
        times.push(secs);
        rows = errors(&engine)?;
    }
    // The same answer, rules first and data after.
    let mut other = fresh_engine()?;
    load(&mut other, text)?;
    read(&mut other)?;
    super::check_count("error rows, rules loaded before the data", errors(&other)?, rows)?;
    rep.result("eval", median(times.clone()), rows);
    rep.note(format!("eval over workload a's data: {} ({} error rows)", spread(&times), rows));
    rep.note("the same rules loaded before the data: the same error rows".to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_loads_and_round_trips_a_rule() {
        for shape in [Shape::Flat, Shape::Head, Shape::Chain, Shape::ChainNeg] {
            let text = (0..50).filter_map(|i| rule(shape, i)).collect::<Vec<_>>().join("\n");
            let mut engine = fresh_engine().unwrap();
            load(&mut engine, &text).unwrap();
            assert_eq!(engine.rules(POLICY).unwrap().len(), 50, "{shape:?}");
            let extra = rule(shape, 50).unwrap();
            engine.insert_rule(POLICY, &extra).unwrap();
            engine.delete_rule(POLICY, &extra).unwrap();
            engine.delete_rule(POLICY, &rule(shape, 25).unwrap()).unwrap();
            assert_eq!(engine.rules(POLICY).unwrap().len(), 49, "{shape:?}");
        }
    }
}
