//! `congress bench`: time the engine on the shared bench workloads.
//!
//! Prints one line per phase on stdout, in the format every peer of the shared bench
//! prints (`RESULT engine=congress workload=.. n=.. phase=.. secs=.. rows=..`), and a
//! human summary on stderr. Phases:
//!
//! - `load`: every datasource row pushed as full tables, into datasource policies created
//!   beforehand, with no rules installed yet (rows = facts loaded);
//! - `eval`: the policy's rules inserted in one transaction, which evaluates everything
//!   (rows = `error` rows, or `path` rows for workload b);
//! - `incr`: the median time of one delta brought up to date, the commit's actions
//!   included (rows = `error` rows after the delta). C: inserting an ACTIVE server with
//!   no port (each insert is followed by an untimed-in-the-line delete, reported on
//!   stderr). d: printed as workloads `d1` (every 1-row insert and delete of
//!   `ports_ins_1` / `ports_del_1`) and `d1000` (`ports_ins_1000` + `ports_del_1000` in
//!   one update, and its reverse), the names the shared peers use;
//! - `query`: one `error(x)` query (rows = answers);
//! - `rss`: the peak resident set (`bytes=`, and `bytes_per_fact=` over the facts loaded).
//!
//! Every row count is checked against a plain-Rust reference answer (workload C also
//! against the counts documented in the bench README); a mismatch fails the bench.

pub mod workloads;

use crate::datalog::engine::{Commit, Engine, PolicyKind};
use crate::datalog::{EngineError, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use workloads::Rows;

/// The workloads `congress bench` runs (names as in the shared bench README).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// The original Congress's own workload: servers, ports, networks, `error` (+ `--exec`).
    #[value(name = "C")]
    C,
    /// The classification policy over `gen_policy.py` data.
    #[value(name = "a")]
    A,
    /// Transitive closure over `gen_graph.py` data.
    #[value(name = "b")]
    B,
    /// Workload a, then 1-row and 1000-row `ports` deltas.
    #[value(name = "d")]
    D,
}

/// Arguments of `congress bench`.
#[derive(Clone, Debug, clap::Args)]
pub struct BenchArgs {
    /// Workload: C (generated in-process), a, b or d (read from --data).
    #[arg(long, value_enum)]
    pub workload: Workload,
    /// Size: servers for C (required); for a/b/d only the label printed (default: row count).
    #[arg(long)]
    pub n: Option<usize>,
    /// Directory of `.facts` files written by the shared generators (workloads a, b, d).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Workload C only: add policy `reactive` with `execute[nova:servers.pause(vm)]`.
    #[arg(long)]
    pub exec: bool,
    /// How many times each 1-row delta is applied (the median is reported).
    #[arg(long, default_value_t = 201)]
    pub repeat: usize,
    /// How many times each 1000-row delta of workload d is applied.
    #[arg(long, default_value_t = 11)]
    pub repeat_big: usize,
    /// Workload b: the policy kind for the recursive rules (default: the first of
    /// nonrecursive, materialized, z3 that accepts them).
    #[arg(long)]
    pub kind: Option<PolicyKind>,
}

/// Run `congress bench`: RESULT lines on stdout, the summary (or the error) on stderr.
pub fn run(args: BenchArgs) -> ExitCode {
    match bench(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("congress bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Run one workload; an engine error or a wrong row count is an error.
pub fn bench(args: &BenchArgs) -> Result<(), String> {
    if args.exec && args.workload != Workload::C {
        return Err("--exec applies to workload C only".into());
    }
    if args.repeat == 0 || args.repeat_big == 0 {
        return Err("--repeat and --repeat-big must be at least 1".into());
    }
    match args.workload {
        Workload::C => bench_c(args),
        Workload::A => bench_a(args, false),
        Workload::D => bench_a(args, true),
        Workload::B => bench_b(args),
    }
}

// ------------------------------------------------------------------------- reporting

/// Prints RESULT lines and collects the human summary.
struct Reporter {
    workload: String,
    n: usize,
    summary: Vec<String>,
}

impl Reporter {
    fn new(workload: &str, n: usize) -> Reporter {
        Reporter { workload: workload.to_string(), n, summary: Vec::new() }
    }

    fn result(&mut self, phase: &str, secs: f64, rows: usize) {
        self.result_as(&self.workload.clone(), phase, secs, rows);
    }

    fn result_as(&mut self, workload: &str, phase: &str, secs: f64, rows: usize) {
        println!("RESULT engine=congress workload={workload} n={} phase={phase} secs={secs:.6} rows={rows}", self.n);
        self.note(format!("{workload:>5} {phase:<6} {:>12} rows={rows}", human_secs(secs)));
    }

    fn rss(&mut self, facts: usize) {
        match peak_rss_bytes() {
            Some(bytes) => {
                let per_fact = bytes as f64 / facts.max(1) as f64;
                println!(
                    "RESULT engine=congress workload={} n={} phase=rss bytes={bytes} rows={facts} bytes_per_fact={per_fact:.1}",
                    self.workload, self.n
                );
                self.note(format!(
                    "{:>5} rss    {:>9.1} MiB ({per_fact:.0} bytes per fact, {facts} facts)",
                    self.workload,
                    bytes as f64 / (1024.0 * 1024.0)
                ));
            }
            None => self.note("peak RSS unavailable (no VmHWM in /proc/self/status)".into()),
        }
    }

    fn note(&mut self, line: String) {
        self.summary.push(line);
    }

    fn finish(&self) {
        eprintln!("congress bench: workload {} n={}", self.workload, self.n);
        for line in &self.summary {
            eprintln!("  {line}");
        }
    }
}

fn human_secs(secs: f64) -> String {
    if secs >= 1.0 {
        format!("{secs:.3} s")
    } else if secs >= 1e-3 {
        format!("{:.3} ms", secs * 1e3)
    } else {
        format!("{:.1} us", secs * 1e6)
    }
}

/// Peak resident set size of this process (VmHWM), in bytes.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

/// The median of some timings (the upper one of the two middle values).
fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed().as_secs_f64())
}

fn engine_err(what: &str) -> impl Fn(EngineError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn count_rows(engine: &Engine, policy: &str, table: &str) -> Result<usize, String> {
    engine.rows(policy, table).map(|r| r.len()).map_err(engine_err(&format!("rows of {policy}:{table}")))
}

fn check_count(what: &str, got: usize, expected: usize) -> Result<(), String> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("MISMATCH: {what}: the engine gives {got} rows, expected {expected}"))
    }
}

/// Push one full table into a datasource, as one transaction with rows not reported
/// (as Congress's `receive_data_full`); returns the seconds taken.
fn load_table(engine: &mut Engine, ds: &str, table: &str, rows: Rows) -> Result<f64, String> {
    let (commit, secs) = timed(|| {
        let mut tx = engine.transaction();
        tx.report_rows(false);
        tx.replace_table(ds, table, rows);
        tx.commit()
    });
    commit.map_err(engine_err(&format!("load {ds}:{table}")))?;
    Ok(secs)
}

/// Insert rules into policies in one transaction (rows not reported; actions are).
fn insert_rules(engine: &mut Engine, rules: &[(&str, &str)]) -> Result<Commit, String> {
    let mut tx = engine.transaction();
    tx.report_rows(false);
    for (policy, text) in rules {
        tx.insert_rules(policy, text);
    }
    tx.commit().map_err(engine_err("insert rules"))
}

fn data_dir(args: &BenchArgs) -> Result<&PathBuf, String> {
    args.data.as_ref().ok_or_else(|| "--data DIR is required for workloads a, b and d".to_string())
}

// ------------------------------------------------------------------------- workload C

/// Generates one table of workload C for N servers.
type Generator = fn(usize) -> Rows;

fn bench_c(args: &BenchArgs) -> Result<(), String> {
    use workloads::*;
    let n = args.n.ok_or("--n N is required for workload C")?;
    let expected = c_reference_errors(n);
    if let Some(documented) = c_expected_errors(n) {
        check_count("workload C reference", expected, documented)?;
    }
    let mut rep = Reporter::new("C", n);
    rep.note(format!("variant: {}", if args.exec { "+exec" } else { "plain" }));

    let mut engine = Engine::with_default_policies();
    engine
        .create_datasource("nova", schema(&[("servers", &NOVA_SERVERS)]))
        .map_err(engine_err("create datasource nova"))?;
    engine
        .create_datasource("neutronv2", schema(&[("ports", &NEUTRON_PORTS), ("networks", &NEUTRON_NETWORKS)]))
        .map_err(engine_err("create datasource neutronv2"))?;
    if args.exec {
        engine.create_policy("reactive", PolicyKind::Nonrecursive).map_err(engine_err("create policy reactive"))?;
    }

    // Three full-table pushes, in Congress's order; each table is generated (untimed)
    // just before its push, so only one table's input is alive at a time.
    let generators: [(&str, &str, Generator); 3] =
        [("nova", "servers", c_servers), ("neutronv2", "ports", c_ports), ("neutronv2", "networks", c_networks)];
    let (mut facts, mut load_secs, mut parts) = (0, 0.0, Vec::new());
    for (ds, table, generate) in generators {
        let rows = generate(n);
        facts += rows.len();
        let secs = load_table(&mut engine, ds, table, rows)?;
        parts.push(format!("{table} {}", human_secs(secs)));
        load_secs += secs;
    }
    rep.result("load", load_secs, facts);
    rep.note(format!("load per table: {}", parts.join(", ")));

    let mut rules = vec![("classification", C_CLASSIFICATION)];
    if args.exec {
        rules.push(("reactive", C_REACTIVE));
    }
    let (commit, secs) = timed(|| insert_rules(&mut engine, &rules));
    let commit = commit?;
    let errors = count_rows(&engine, "classification", "error")?;
    check_count("workload C error after eval", errors, expected)?;
    rep.result("eval", secs, errors);
    if args.exec {
        let pauses = commit.actions.iter().filter(|a| is_pause(a)).count();
        rep.note(format!("eval commit fired {} actions ({pauses} pause)", commit.actions.len()));
        if pauses != errors {
            rep.note(format!("WARNING: {pauses} pause actions on rule insert, but {errors} error rows"));
        }
    }

    let (answers, secs) = timed(|| engine.query_values("classification", "error(x)"));
    let answers = answers.map_err(engine_err("query error(x)"))?;
    check_count("workload C query error(x)", answers.len(), expected)?;
    rep.result("query", secs, answers.len());
    let (warm, warm_secs) = timed(|| engine.query_values("classification", "error(x)"));
    let warm = warm.map_err(engine_err("query error(x)"))?;
    rep.note(format!("query error(x) again (warm): {} ({} rows)", human_secs(warm_secs), warm.len()));
    let point = format!("error(\"vm-{}\")", n / 2 + 1);
    let (hit, point_secs) = timed(|| engine.query_values("classification", &point));
    let hit = hit.map_err(engine_err("point query"))?;
    rep.note(format!("point query {point}: {} ({} rows)", human_secs(point_secs), hit.len()));

    // One new ACTIVE server with no port, inserted then deleted, many times.
    let row = c_active_server_without_port(n);
    let vm = row[0].clone();
    let (mut ins, mut del) = (Vec::new(), Vec::new());
    for k in 0..args.repeat {
        let (commit, secs) = timed(|| engine.update_table("nova", "servers", vec![row.clone()], vec![]));
        let commit = commit.map_err(engine_err("incremental insert"))?;
        ins.push(secs);
        if args.exec && !commit.actions.iter().any(|a| is_pause(a) && a.args == [vm.clone()]) {
            return Err(format!(
                "inserting an ACTIVE server with no port did not fire pause({vm}): actions {:?}",
                commit.actions
            ));
        }
        if k == 0 {
            let after = count_rows(&engine, "classification", "error")?;
            check_count("workload C error after inserting a server", after, expected + 1)?;
        }
        let (commit, secs) = timed(|| engine.update_table("nova", "servers", vec![], vec![row.clone()]));
        commit.map_err(engine_err("incremental delete"))?;
        del.push(secs);
        if k == 0 {
            let after = count_rows(&engine, "classification", "error")?;
            check_count("workload C error after deleting the server", after, expected)?;
        }
    }
    rep.note(format!(
        "incr: insert server median {}, delete median {} ({} each)",
        human_secs(median(ins.clone())),
        human_secs(median(del)),
        args.repeat
    ));
    // The README's measured step: the insert (one more error row, one pause action).
    // Deletes are in the summary only: mixing both would make a bimodal median.
    rep.result("incr", median(ins), expected + 1);
    rep.rss(facts);
    rep.finish();
    Ok(())
}

fn is_pause(a: &crate::datalog::ActionEvent) -> bool {
    a.service == "nova" && a.action.ends_with("pause")
}

// ------------------------------------------------------------------------- workloads a, d

fn bench_a(args: &BenchArgs, deltas: bool) -> Result<(), String> {
    use workloads::*;
    let dir = data_dir(args)?;
    let mut data = AData::read(dir)?;
    let n = args.n.unwrap_or(data.table("servers").len());
    let label = if deltas { "d" } else { "a" };
    let mut rep = Reporter::new(label, n);
    let mut delta_files = Vec::new();
    if deltas {
        for name in ["ports_ins_1", "ports_del_1", "ports_ins_1000", "ports_del_1000"] {
            let rows = read_facts(dir, name)?;
            check_arity(name, &rows, 4)?;
            delta_files.push(rows);
        }
    }
    // Reference answers (untimed): after the load, then after each delta of workload d.
    let (expected, expected1, expected1000) = {
        let reference = |ports: &[Vec<Value>]| {
            a_reference_errors(
                data.table("servers"),
                ports,
                data.table("networks"),
                data.table("tenants"),
                data.table("images"),
            )
        };
        let ports = data.table("ports");
        let mut after = [0, 0];
        for (k, pair) in delta_files.chunks(2).enumerate() {
            if let [ins, del] = pair {
                after[k] = reference(&apply_delta(ports, ins, del))?;
            }
        }
        (reference(ports)?, after[0], after[1])
    };

    let mut engine = Engine::with_default_policies();
    let (mut facts, mut load_secs) = (0, 0.0);
    for ds in ["nova", "neutron", "keystone", "glance"] {
        let tables: Vec<(&str, &[&str])> = A_TABLES.iter().filter(|t| t.0 == ds).map(|t| (t.1, t.2)).collect();
        engine.create_datasource(ds, schema(&tables)).map_err(engine_err(&format!("create datasource {ds}")))?;
    }
    for (ds, table, _, stem) in A_TABLES {
        let rows = data.take(stem);
        facts += rows.len();
        load_secs += load_table(&mut engine, ds, table, rows)?;
    }
    drop(data);
    rep.result("load", load_secs, facts);

    let (commit, secs) = timed(|| insert_rules(&mut engine, &[("classification", A_POLICY)]));
    commit?;
    let errors = count_rows(&engine, "classification", "error")?;
    check_count("workload a error after eval", errors, expected)?;
    rep.result("eval", secs, errors);

    if !deltas {
        let (answers, secs) = timed(|| engine.query_values("classification", "error(x, y)"));
        let answers = answers.map_err(engine_err("query error(x, y)"))?;
        check_count("workload a query error(x, y)", answers.len(), expected)?;
        rep.result("query", secs, answers.len());
    } else {
        let [ins1, del1, ins1000, del1000] =
            <[Rows; 4]>::try_from(delta_files).map_err(|_| "internal error: delta files".to_string())?;
        let update = |engine: &mut Engine, add: &Rows, delete: &Rows| {
            let (commit, secs) = timed(|| engine.update_table("neutron", "ports", add.clone(), delete.clone()));
            commit.map(|_| secs).map_err(engine_err("update neutron:ports"))
        };
        let none = Rows::new();

        // 1-row deltas: insert a fresh port and delete it again; delete an existing
        // port and put it back.
        let mut times: [Vec<f64>; 4] = Default::default();
        for _ in 0..args.repeat {
            times[0].push(update(&mut engine, &ins1, &none)?);
            times[1].push(update(&mut engine, &none, &ins1)?);
            times[2].push(update(&mut engine, &none, &del1)?);
            times[3].push(update(&mut engine, &del1, &none)?);
        }
        check_count(
            "workload d error after the 1-row round trips",
            count_rows(&engine, "classification", "error")?,
            expected,
        )?;
        let labels = ["insert new port", "delete it", "delete existing port", "re-insert it"];
        for (label, t) in labels.iter().zip(&times) {
            rep.note(format!("d1 {label}: median {} ({} times)", human_secs(median(t.clone())), t.len()));
        }
        // The peers' d1: delete one port and insert one, then bring `error` up to date.
        let both = update(&mut engine, &ins1, &del1)?;
        let rows1 = count_rows(&engine, "classification", "error")?;
        check_count("workload d1 error", rows1, expected1)?;
        rep.note(format!("d1 ports_ins_1 + ports_del_1 in one update: {}", human_secs(both)));
        update(&mut engine, &del1, &ins1)?;
        rep.result_as("d1", "incr", median(times.concat()), rows1);

        // 1000-row deltas: ports_ins_1000 + ports_del_1000 in one update, then reverted.
        let (mut apply, mut revert) = (Vec::new(), Vec::new());
        for k in 0..args.repeat_big {
            apply.push(update(&mut engine, &ins1000, &del1000)?);
            if k == 0 {
                check_count("workload d1000 error", count_rows(&engine, "classification", "error")?, expected1000)?;
            }
            revert.push(update(&mut engine, &del1000, &ins1000)?);
        }
        rep.note(format!(
            "d1000 apply (+{} -{} ports) median {}, revert median {} ({} times)",
            ins1000.len(),
            del1000.len(),
            human_secs(median(apply.clone())),
            human_secs(median(revert.clone())),
            apply.len()
        ));
        apply.extend(revert);
        rep.result_as("d1000", "incr", median(apply), expected1000);
    }
    rep.rss(facts);
    rep.finish();
    Ok(())
}

// ------------------------------------------------------------------------- workload b

fn bench_b(args: &BenchArgs) -> Result<(), String> {
    use workloads::*;
    let dir = data_dir(args)?;
    let edges = read_facts(dir, "edge")?;
    check_arity("edge", &edges, 2)?;
    let n = args.n.unwrap_or(edges.len());
    let expected = b_reference_paths(&edges);
    let facts = edges.len();
    let mut rep = Reporter::new("b", n);

    let mut engine = Engine::with_default_policies();
    engine
        .create_datasource("graph", schema(&[("edge", &["src", "dst"])]))
        .map_err(engine_err("create datasource graph"))?;
    let secs = load_table(&mut engine, "graph", "edge", edges)?;
    rep.result("load", secs, facts);

    let kinds = match args.kind {
        Some(k) => vec![k],
        None => vec![PolicyKind::Nonrecursive, PolicyKind::Materialized, PolicyKind::Z3],
    };
    let policy = "reach";
    let mut refused = Vec::new();
    let mut eval_secs = None;
    for kind in kinds {
        engine.create_policy(policy, kind).map_err(engine_err(&format!("create {kind} policy {policy}")))?;
        let (commit, secs) = timed(|| insert_rules(&mut engine, &[(policy, B_POLICY)]));
        match commit {
            Ok(_) => {
                rep.note(format!("recursive rules accepted by a {kind} policy"));
                eval_secs = Some(secs);
                break;
            }
            Err(e) => {
                refused.push(format!("{kind}: {e}"));
                engine.delete_policy(policy).map_err(engine_err("delete policy"))?;
            }
        }
    }
    let Some(secs) = eval_secs else {
        return Err(format!("no policy kind accepts the recursive rules: {}", refused.join("; ")));
    };
    let paths = count_rows(&engine, policy, "path")?;
    check_count("workload b path after eval", paths, expected)?;
    rep.result("eval", secs, paths);

    let (answers, secs) = timed(|| engine.query_values(policy, "path(x, y)"));
    let answers = answers.map_err(engine_err("query path(x, y)"))?;
    check_count("workload b query path(x, y)", answers.len(), expected)?;
    rep.result("query", secs, answers.len());
    rep.rss(facts);
    if let Some(bytes) = peak_rss_bytes() {
        let stored = facts + paths;
        rep.note(format!(
            "    counting derived rows too: {:.0} bytes per stored row ({stored} rows)",
            bytes as f64 / stored as f64
        ));
    }
    rep.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        args: BenchArgs,
    }

    #[test]
    fn arguments_parse() {
        use clap::Parser;
        let w = Wrap::try_parse_from(["bench", "--workload", "C", "--n", "1000", "--exec"]);
        let args = w.map(|w| w.args);
        assert!(matches!(&args, Ok(a) if a.workload == Workload::C && a.n == Some(1000) && a.exec));
        let w = Wrap::try_parse_from(["bench", "--workload", "b", "--data", "x", "--kind", "z3"]);
        assert!(matches!(w.map(|w| w.args.kind), Ok(Some(PolicyKind::Z3))));
        // lower-case `c` is the shared bench's same-generation workload, not C
        assert!(Wrap::try_parse_from(["bench", "--workload", "c", "--n", "10"]).is_err());
    }

    fn args(workload: Workload, n: usize, exec: bool) -> BenchArgs {
        BenchArgs { workload, n: Some(n), data: None, exec, repeat: 3, repeat_big: 1, kind: None }
    }

    #[test]
    fn workload_c_runs_and_checks_its_counts() {
        // Checks 202 errors, +1 after the incremental insert, and the pause action.
        assert_eq!(bench(&args(Workload::C, 1000, false)), Ok(()));
        assert_eq!(bench(&args(Workload::C, 1000, true)), Ok(()));
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(bench(&args(Workload::A, 10, true)).is_err());
        assert!(bench(&args(Workload::B, 10, false)).is_err(), "--data is required");
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 3.0);
        assert_eq!(median(Vec::new()), 0.0);
    }

    #[test]
    fn peak_rss_is_read() {
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(peak_rss_bytes().is_some_and(|b| b > 0));
        }
    }
}
