//! `congress bench`: time the engine on the shared bench workloads.
//!
//! Prints one line per phase on stdout, in the format every peer of the shared bench
//! prints (`RESULT engine=congress workload=.. n=.. phase=.. secs=.. rows=..`), and a
//! human summary on stderr. Phases, in the order they run:
//!
//! - `load`: every datasource row pushed, in pages of 4096 rows (`--page-rows`), each page
//!   one transaction with rows not reported (a driver's paged poll), into datasource
//!   policies created beforehand, with no rules installed yet (rows = facts loaded). Only
//!   the commits are timed: generating (C) or parsing (a, b, d) a page is not. With
//!   `--runs-load K` the whole load is repeated K - 1 more times at the end, each into a
//!   fresh engine, and the median is reported;
//! - `eval`: the policy's rules inserted in one transaction, which evaluates everything
//!   (rows = `error` rows, or `path` rows for workload b). With `--runs K` (default 5),
//!   after `rss` every rule is deleted in one untimed transaction and the rules are
//!   inserted again, timed, K - 1 more times; the median is reported;
//! - `incr`: the median time of one delta brought up to date, the commit's actions
//!   included (rows = `error` rows after the delta). C: inserting an ACTIVE server with
//!   no port (each insert is followed by an untimed-in-the-line delete, reported on
//!   stderr). d: printed as workloads `d1` (every 1-row insert and delete of
//!   `ports_ins_1` / `ports_del_1`) and `d1000` (`ports_ins_1000` + `ports_del_1000` in
//!   one update, and its reverse), the names the shared peers use;
//! - `rss`: the peak resident set (VmHWM) of the process after one load, one eval and the
//!   incr steps (`bytes=`, and `bytes_per_fact=` over the facts loaded). It is read before
//!   any query materialises answers, before the repeated evals and loads, and before the
//!   bench counts rows or computes its reference answers, so that the bench's own buffers
//!   (one page of input at most) stay out of it. The summary also gives it per row the
//!   engine stores (derived rows included), and the RSS after load and after eval;
//! - `query`: one `error(x)` query (rows = answers);
//! - `peak`: the peak resident set of the whole process (VmHWM at the end: every phase,
//!   the repeated evaluations and the reference checks included), per fact loaded.
//!
//! Every row count is checked against a plain-Rust reference answer (workload C also
//! against the counts documented in the bench README), computed after `rss` (before it,
//! only `Engine::fact_count` and point queries are compared); a mismatch fails the bench.
//! RESULT lines are printed at the end, in phase order, only when every check passed.

pub mod responsiveness;
pub mod rules;
pub mod workloads;

use congress_engine::{Commit, Engine, PolicyKind};
use congress_engine::{EngineError, Value};
use std::path::{Path, PathBuf};
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
    /// Same generation (non-linear recursion) over `gen_sg.py` data.
    #[value(name = "c")]
    Sg,
    /// Workload a, then 1-row and 1000-row `ports` deltas.
    #[value(name = "d")]
    D,
    /// A program of `--rules` rules: `gen_rules.py`'s (`--data`) or a generated `--shape`;
    /// load time, memory per rule, one rule added and deleted.
    #[value(name = "e")]
    E,
    /// The operator's runtime while the engine loads `--n` pods (default 100,000) in one
    /// batch and reloads a `--rules`-rule policy: `/healthz` and timer latency.
    #[value(name = "responsiveness")]
    Responsiveness,
}

/// Rows per load transaction by default.
pub const PAGE_ROWS: usize = 4096;

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
    /// Timed evaluations: rules deleted and re-inserted between them; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Timed loads, each but the first into a fresh engine dropped after; the median is reported.
    #[arg(long, default_value_t = 1)]
    pub runs_load: usize,
    /// Rows per load transaction (one page of a driver's poll).
    #[arg(long, default_value_t = PAGE_ROWS)]
    pub page_rows: usize,
    /// Workload e: the number of rules; responsiveness: the rules of the policy reloaded.
    #[arg(long, default_value_t = 10_000)]
    pub rules: usize,
    /// Workload e: the program's shape.
    #[arg(long, value_enum, default_value_t = rules::Shape::Gen)]
    pub shape: rules::Shape,
    /// Workload responsiveness: run engine work on an async worker under a mutex (the
    /// operator's old way), for comparison.
    #[arg(long)]
    pub inline: bool,
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
    if args.repeat == 0 || args.repeat_big == 0 || args.runs == 0 || args.runs_load == 0 || args.page_rows == 0 {
        return Err("--repeat, --repeat-big, --runs, --runs-load and --page-rows must be at least 1".into());
    }
    match args.workload {
        Workload::C => bench_c(args),
        Workload::A => bench_a(args, false),
        Workload::D => bench_a(args, true),
        Workload::B => bench_b(args, &GRAPH_B),
        Workload::Sg => bench_b(args, &GRAPH_C),
        Workload::E => rules::bench(args),
        Workload::Responsiveness => responsiveness::bench(args.n.unwrap_or(100_000), args.rules, args.inline),
    }
}

// ------------------------------------------------------------------------- reporting

/// The order RESULT lines are printed in (the order the phases run).
const PHASES: [&str; 6] = ["load", "eval", "incr", "rss", "query", "peak"];

/// Collects the RESULT lines (printed by [`Reporter::finish`], once every check passed,
/// in phase order) and the human summary.
struct Reporter {
    workload: String,
    /// The size in RESULT lines (for a, b and d known only once the data is loaded).
    n: usize,
    results: Vec<(usize, String)>,
    summary: Vec<String>,
    /// Facts loaded, once the `rss` phase has run (for the `peak` line).
    facts: Option<usize>,
}

impl Reporter {
    fn new(workload: &str, n: usize) -> Reporter {
        Reporter { workload: workload.to_string(), n, results: Vec::new(), summary: Vec::new(), facts: None }
    }

    fn result(&mut self, phase: &str, secs: f64, rows: usize) {
        self.result_as(&self.workload.clone(), phase, secs, rows);
    }

    fn result_as(&mut self, workload: &str, phase: &str, secs: f64, rows: usize) {
        let line = format!("workload={workload} n={} phase={phase} secs={secs:.6} rows={rows}", self.n);
        self.push_result(phase, line);
        self.note(format!("{workload:>5} {phase:<6} {:>12} rows={rows}", human_secs(secs)));
    }

    fn push_result(&mut self, phase: &str, line: String) {
        let rank = PHASES.iter().position(|p| *p == phase).unwrap_or(PHASES.len());
        self.results.push((rank, format!("RESULT engine=congress {line}")));
    }

    /// The `rss` phase: the peak resident set so far, per fact loaded; the summary also
    /// gives it per row the engine stores (`Engine::fact_count`, derived rows included).
    fn rss(&mut self, facts: usize, engine: &Engine) {
        let Some(bytes) = peak_rss_bytes() else {
            self.note("peak RSS unavailable (no VmHWM in /proc/self/status)".into());
            return;
        };
        self.facts = Some(facts);
        let stored = engine.fact_count();
        let per_fact = bytes as f64 / facts.max(1) as f64;
        let line = format!(
            "workload={} n={} phase=rss bytes={bytes} rows={facts} bytes_per_fact={per_fact:.1}",
            self.workload, self.n
        );
        self.push_result("rss", line);
        self.note(format!(
            "{:>5} rss    {:>9.1} MiB ({per_fact:.0} bytes per fact, {facts} facts)",
            self.workload,
            mib(bytes)
        ));
        self.note(format!(
            "      the engine stores {stored} rows (derived included): {:.0} bytes per stored row",
            bytes as f64 / stored.max(1) as f64
        ));
        self.note(format!("      {}", memory_note()));
        let m = engine.memory();
        self.note(format!(
            "      engine heap {:.1} MiB: rows {:.1}, sets {:.1}, indexes {:.1}, symbols {:.1} (marks {:.1}, text {:.1}, table {:.1})",
            mib(m.total() as u64),
            mib(m.rows as u64),
            mib(m.sets as u64),
            mib(m.indexes as u64),
            mib(m.symbols() as u64),
            mib(m.symbol_entries as u64),
            mib(m.symbol_text as u64),
            mib(m.symbol_table as u64),
        ));
    }

    fn note(&mut self, line: String) {
        self.summary.push(line);
    }

    fn finish(mut self) {
        // The whole process's peak, every phase and check included.
        if let (Some(facts), Some(bytes)) = (self.facts, peak_rss_bytes()) {
            let per_fact = bytes as f64 / facts.max(1) as f64;
            let line = format!(
                "workload={} n={} phase=peak bytes={bytes} rows={facts} bytes_per_fact={per_fact:.1}",
                self.workload, self.n
            );
            self.push_result("peak", line);
        }
        self.results.sort_by_key(|r| r.0);
        for (_, line) in &self.results {
            println!("{line}");
        }
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

/// `min .. / median .. / max .. (K runs)` of some timings.
fn spread(xs: &[f64]) -> String {
    let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = xs.iter().copied().fold(0.0, f64::max);
    format!(
        "min {} / median {} / max {} ({} runs)",
        human_secs(min),
        human_secs(median(xs.to_vec())),
        human_secs(max),
        xs.len()
    )
}

/// Peak resident set size of this process (VmHWM), in bytes.
fn peak_rss_bytes() -> Option<u64> {
    proc_status_bytes("VmHWM:")
}

/// A `kB` field of /proc/self/status (`VmHWM:`, `VmRSS:`), in bytes.
fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.trim_start_matches(field).trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `peak RSS X MiB, RSS now Y MiB, engine heap Z MiB` (for the summary: where the peak
/// was reached, and how much of it the engine's tables hold).
fn memory_line(engine: &Engine) -> String {
    format!("{}, engine heap {:.1} MiB", memory_note(), mib(engine.memory().total() as u64))
}

/// `peak RSS X MiB, RSS now Y MiB`.
fn memory_note() -> String {
    let show = |b: Option<u64>| b.map_or("?".to_string(), |b| format!("{:.1} MiB", mib(b)));
    format!("peak RSS {}, RSS now {}", show(peak_rss_bytes()), show(proc_status_bytes("VmRSS:")))
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

/// A table's row count. This materialises the rows, so the bench calls it only after
/// reading the peak RSS (before, it compares `Engine::fact_count` instead).
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

/// Push rows into a datasource table in pages of `page` rows, each page one transaction
/// with rows not reported (a driver's paged poll), so that only one page of input is
/// alive at a time. Only the commits are timed: making a page (generating or parsing its
/// rows) is not. Returns the rows pushed and the seconds taken.
fn load_paged(
    engine: &mut Engine,
    ds: &str,
    table: &str,
    page: usize,
    rows: impl Iterator<Item = Result<Vec<Value>, String>>,
) -> Result<(usize, f64), String> {
    let (mut count, mut secs) = (0, 0.0);
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        let chunk = rows.by_ref().take(page).collect::<Result<Rows, String>>()?;
        count += chunk.len();
        let (commit, s) = timed(|| {
            let mut tx = engine.transaction();
            tx.report_rows(false);
            tx.insert_rows(ds, table, chunk);
            tx.commit()
        });
        commit.map_err(engine_err(&format!("load {ds}:{table}")))?;
        secs += s;
    }
    Ok((count, secs))
}

/// What loading one engine gave: the engine, and per table (in load order) the rows
/// pushed and the seconds taken.
type Loaded = (Engine, Vec<(usize, f64)>);

/// The rows one load pushed (every table).
fn loaded_rows(tables: &[(usize, f64)]) -> usize {
    tables.iter().map(|t| t.0).sum()
}

/// Load `runs - 1` more times, each into a fresh engine dropped right after (done once
/// the peak RSS is read, so the dropped engines do not count in it). Returns every run's
/// per-table rows and seconds, `first` (the engine the bench uses) first.
fn load_again(
    runs: usize,
    first: Vec<(usize, f64)>,
    mut load: impl FnMut() -> Result<Loaded, String>,
) -> Result<Vec<Vec<(usize, f64)>>, String> {
    let mut all = vec![first];
    for _ in 1..runs {
        let (engine, tables) = load()?;
        drop(engine);
        check_count("rows loaded again", loaded_rows(&tables), loaded_rows(&all[0]))?;
        all.push(tables);
    }
    Ok(all)
}

/// Report the `load` phase: the median over the runs of the total seconds.
fn report_load(rep: &mut Reporter, names: &[&str], runs: &[Vec<(usize, f64)>]) {
    let totals: Vec<f64> = runs.iter().map(|r| r.iter().map(|t| t.1).sum()).collect();
    rep.result("load", median(totals.clone()), runs.first().map_or(0, |r| loaded_rows(r)));
    if let Some(first) = runs.first() {
        let parts: Vec<String> = names
            .iter()
            .zip(first)
            .map(|(name, (rows, secs))| format!("{name} {} ({rows})", human_secs(*secs)))
            .collect();
        rep.note(format!("load per table (first run): {}", parts.join(", ")));
    }
    if runs.len() > 1 {
        rep.note(format!("load, fresh engines: {}", spread(&totals)));
    }
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

/// Evaluate `rules` `runs - 1` more times (the first, timed insert is the caller's): each
/// time delete every rule of their policies in one untimed transaction, which must leave
/// only the `loaded` facts stored, then insert the rules again, timed. Each insert must
/// leave as many rows stored as the first (`evaluated`); `check` also sees its commit.
/// Returns the inserts' seconds.
fn eval_again(
    engine: &mut Engine,
    rules: &[(&str, &str)],
    runs: usize,
    (loaded, evaluated): (usize, usize),
    mut check: impl FnMut(&Commit) -> Result<(), String>,
) -> Result<Vec<f64>, String> {
    let mut policies: Vec<&str> = rules.iter().map(|r| r.0).collect();
    policies.dedup();
    let mut times = Vec::new();
    for _ in 1..runs {
        let mut texts = Vec::new();
        for policy in &policies {
            let rules = engine.rules(policy).map_err(engine_err(&format!("rules of {policy}")))?;
            texts.extend(rules.into_iter().map(|text| (*policy, text)));
        }
        let mut tx = engine.transaction();
        tx.report_rows(false);
        for (policy, text) in &texts {
            tx.delete_rule(policy, text);
        }
        tx.commit().map_err(engine_err("delete rules"))?;
        check_count("stored rows after deleting the rules", engine.fact_count(), loaded)?;

        let (commit, secs) = timed(|| insert_rules(engine, rules));
        let commit = commit?;
        check_count("stored rows after re-inserting the rules", engine.fact_count(), evaluated)?;
        check(&commit)?;
        times.push(secs);
    }
    Ok(times)
}

fn data_dir(args: &BenchArgs) -> Result<&PathBuf, String> {
    args.data.as_ref().ok_or_else(|| "--data DIR is required for workloads a, b and d".to_string())
}

// ------------------------------------------------------------------------- workload C

/// A fresh engine with workload C's datasources (and policy `reactive` with --exec), its
/// three tables pushed in Congress's order, each generated page by page.
fn load_c(args: &BenchArgs, n: usize) -> Result<Loaded, String> {
    use workloads::*;
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
    let mut tables = Vec::new();
    for (ds, table, row) in C_TABLES {
        tables.push(load_paged(&mut engine, ds, table, args.page_rows, c_rows(row, n).map(Ok))?);
    }
    Ok((engine, tables))
}

fn bench_c(args: &BenchArgs) -> Result<(), String> {
    use workloads::*;
    let n = args.n.ok_or("--n N is required for workload C")?;
    // Arithmetic over 0..n: no rows kept, so it may run before the peak RSS is read.
    let expected = c_reference_errors(n);
    if let Some(documented) = c_expected_errors(n) {
        check_count("workload C reference", expected, documented)?;
    }
    let mut rep = Reporter::new("C", n);
    rep.note(format!("variant: {}", if args.exec { "+exec" } else { "plain" }));

    let (mut engine, first_load) = load_c(args, n)?;
    let facts = loaded_rows(&first_load);
    rep.note(format!("after load: {}", memory_line(&engine)));
    let loaded = engine.fact_count();

    let mut rules = vec![("classification", C_CLASSIFICATION)];
    if args.exec {
        rules.push(("reactive", C_REACTIVE));
    }
    let (commit, secs) = timed(|| insert_rules(&mut engine, &rules));
    let commit = commit?;
    let evaluated = engine.fact_count();
    let first_pauses = commit.actions.iter().filter(|a| is_pause(a)).count();
    if args.exec {
        rep.note(format!("eval commit fired {} actions ({first_pauses} pause)", commit.actions.len()));
    }
    // Its 20,000 actions are counted: not held through the evaluations repeated below.
    drop(commit);
    rep.note(format!("after eval: {}", memory_line(&engine)));

    // One new ACTIVE server with no port, inserted then deleted, many times. Each insert
    // must add error(vm) and each delete bring the stored rows back to what they were.
    let row = c_active_server_without_port(n);
    let vm = row[0].clone();
    let point_new = format!("error(\"vm-{n}\")");
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
            let hit = engine.query_values("classification", &point_new).map_err(engine_err("point query"))?;
            check_count(&format!("workload C {point_new} after inserting the server"), hit.len(), 1)?;
        }
        let (commit, secs) = timed(|| engine.update_table("nova", "servers", vec![], vec![row.clone()]));
        commit.map_err(engine_err("incremental delete"))?;
        del.push(secs);
        if k == 0 {
            check_count("workload C stored rows after deleting the server", engine.fact_count(), evaluated)?;
        }
    }
    rep.note(format!(
        "incr: insert server median {}, delete median {} ({} each)",
        human_secs(median(ins.clone())),
        human_secs(median(del)),
        args.repeat
    ));
    rep.rss(facts, &engine);

    // From here on the bench may hold rows and repeat steps: the peak RSS is read.
    let mut pauses = vec![first_pauses];
    let mut times = vec![secs];
    times.extend(eval_again(&mut engine, &rules, args.runs, (loaded, evaluated), |commit| {
        pauses.push(commit.actions.iter().filter(|a| is_pause(a)).count());
        Ok(())
    })?);
    rep.note(format!("eval: {}", spread(&times)));
    let errors = count_rows(&engine, "classification", "error")?;
    check_count("workload C error after eval", errors, expected)?;
    rep.result("eval", median(times), errors);
    if args.exec
        && let Some(bad) = pauses.iter().find(|p| **p != errors)
    {
        rep.note(format!("WARNING: {bad} pause actions on a rule insert, but {errors} error rows"));
    }
    // The README's measured step: the insert (one more error row, one pause action).
    // Deletes are in the summary only: mixing both would make a bimodal median.
    rep.result("incr", median(ins), expected + 1);

    let (answers, secs) = timed(|| engine.query_values("classification", "error(x)"));
    let answers = answers.map_err(engine_err("query error(x)"))?;
    check_count("workload C query error(x)", answers.len(), expected)?;
    rep.result("query", secs, answers.len());
    drop(answers);
    let (warm, warm_secs) = timed(|| engine.query_values("classification", "error(x)"));
    let warm = warm.map_err(engine_err("query error(x)"))?;
    rep.note(format!("query error(x) again (warm): {} ({} rows)", human_secs(warm_secs), warm.len()));
    let point = format!("error(\"vm-{}\")", n / 2 + 1);
    let (hit, point_secs) = timed(|| engine.query_values("classification", &point));
    let hit = hit.map_err(engine_err("point query"))?;
    rep.note(format!("point query {point}: {} ({} rows)", human_secs(point_secs), hit.len()));
    let loads = load_again(args.runs_load, first_load, || load_c(args, n))?;
    report_load(&mut rep, &C_TABLES.map(|t| t.1), &loads);
    rep.finish();
    Ok(())
}

fn is_pause(a: &congress_engine::ActionEvent) -> bool {
    &*a.service == "nova" && a.action.ends_with("pause")
}

// ------------------------------------------------------------------------- workloads a, d

/// A fresh engine with workload a's datasources, its five tables read page by page.
fn load_a(args: &BenchArgs, dir: &Path) -> Result<Loaded, String> {
    use workloads::*;
    let mut engine = Engine::with_default_policies();
    for ds in ["nova", "neutron", "keystone", "glance"] {
        let tables: Vec<(&str, &[&str])> = A_TABLES.iter().filter(|t| t.0 == ds).map(|t| (t.1, t.2)).collect();
        engine.create_datasource(ds, schema(&tables)).map_err(engine_err(&format!("create datasource {ds}")))?;
    }
    let mut tables = Vec::new();
    for (ds, table, cols, stem) in A_TABLES {
        let rows = FactsReader::open(dir, stem, cols.len())?;
        tables.push(load_paged(&mut engine, ds, table, args.page_rows, rows)?);
    }
    Ok((engine, tables))
}

fn bench_a(args: &BenchArgs, deltas: bool) -> Result<(), String> {
    use workloads::*;
    let dir = data_dir(args)?;
    let label = if deltas { "d" } else { "a" };
    let mut rep = Reporter::new(label, 0);

    let (mut engine, first_load) = load_a(args, dir)?;
    // n defaults to the servers loaded (the first table).
    rep.n = args.n.unwrap_or(first_load.first().map_or(0, |t| t.0));
    let facts = loaded_rows(&first_load);
    rep.note(format!("after load: {}", memory_line(&engine)));
    let loaded = engine.fact_count();

    let rules = [("classification", A_POLICY)];
    let (commit, secs) = timed(|| insert_rules(&mut engine, &rules));
    commit?;
    let evaluated = engine.fact_count();
    rep.note(format!("after eval: {}", memory_line(&engine)));

    // Workload d's deltas (at most 2000 rows: read now, they are the deltas' input).
    let mut delta_files = Vec::new();
    if deltas {
        for name in ["ports_ins_1", "ports_del_1", "ports_ins_1000", "ports_del_1000"] {
            delta_files.push(read_facts(dir, name, 4)?);
        }
    }
    let update = |engine: &mut Engine, add: &Rows, delete: &Rows| {
        let (commit, secs) = timed(|| engine.update_table("neutron", "ports", add.clone(), delete.clone()));
        commit.map(|_| secs).map_err(engine_err("update neutron:ports"))
    };
    let none = Rows::new();
    let mut incr = None;
    if let [ins1, del1, ins1000, del1000] = delta_files.as_slice() {
        // 1-row deltas: insert a fresh port and delete it again; delete an existing
        // port and put it back.
        let mut times: [Vec<f64>; 4] = Default::default();
        for _ in 0..args.repeat {
            times[0].push(update(&mut engine, ins1, &none)?);
            times[1].push(update(&mut engine, &none, ins1)?);
            times[2].push(update(&mut engine, &none, del1)?);
            times[3].push(update(&mut engine, del1, &none)?);
        }
        check_count("workload d stored rows after the 1-row round trips", engine.fact_count(), evaluated)?;
        let labels = ["insert new port", "delete it", "delete existing port", "re-insert it"];
        for (label, t) in labels.iter().zip(&times) {
            rep.note(format!("d1 {label}: median {} ({} times)", human_secs(median(t.clone())), t.len()));
        }
        // The peers' d1: delete one port and insert one, then bring `error` up to date.
        let both = update(&mut engine, ins1, del1)?;
        rep.note(format!("d1 ports_ins_1 + ports_del_1 in one update: {}", human_secs(both)));
        update(&mut engine, del1, ins1)?;

        // 1000-row deltas: ports_ins_1000 + ports_del_1000 in one update, then reverted.
        let (mut apply, mut revert) = (Vec::new(), Vec::new());
        for _ in 0..args.repeat_big {
            apply.push(update(&mut engine, ins1000, del1000)?);
            revert.push(update(&mut engine, del1000, ins1000)?);
        }
        check_count("workload d stored rows after the 1000-row round trips", engine.fact_count(), evaluated)?;
        rep.note(format!(
            "d1000 apply (+{} -{} ports) median {}, revert median {} ({} times)",
            ins1000.len(),
            del1000.len(),
            human_secs(median(apply.clone())),
            human_secs(median(revert.clone())),
            apply.len()
        ));
        apply.extend(revert);
        incr = Some((median(times.concat()), median(apply)));
    }
    rep.rss(facts, &engine);

    // From here on the bench may hold rows and repeat steps: the peak RSS is read.
    let mut times = vec![secs];
    times.extend(eval_again(&mut engine, &rules, args.runs, (loaded, evaluated), |_| Ok(()))?);
    rep.note(format!("eval: {}", spread(&times)));
    // The reference answers, after the load and after each delta of workload d, need
    // every table in memory.
    let data = AData::read(dir)?;
    let reference = |ports: &[Vec<Value>]| {
        a_reference_errors(
            data.table("servers"),
            ports,
            data.table("networks"),
            data.table("tenants"),
            data.table("images"),
        )
    };
    let expected = reference(data.table("ports"))?;
    let errors = count_rows(&engine, "classification", "error")?;
    check_count(&format!("workload {label} error after eval"), errors, expected)?;
    rep.result("eval", median(times), errors);

    if let ([ins1, del1, ins1000, del1000], Some((d1_secs, d1000_secs))) = (delta_files.as_slice(), incr) {
        // Each delta applied once more (untimed), its `error` rows counted, then reverted.
        let mut after = Vec::new();
        for (ins, del) in [(ins1, del1), (ins1000, del1000)] {
            let expected = reference(&apply_delta(data.table("ports"), ins, del))?;
            update(&mut engine, ins, del)?;
            let rows = count_rows(&engine, "classification", "error")?;
            update(&mut engine, del, ins)?;
            check_count(&format!("workload d{} error", ins.len()), rows, expected)?;
            after.push(rows);
        }
        rep.result_as("d1", "incr", d1_secs, after[0]);
        rep.result_as("d1000", "incr", d1000_secs, after[1]);
    } else {
        drop(data);
        let (answers, secs) = timed(|| engine.query_values("classification", "error(x, y)"));
        let answers = answers.map_err(engine_err("query error(x, y)"))?;
        check_count("workload a query error(x, y)", answers.len(), expected)?;
        rep.result("query", secs, answers.len());
    }
    let loads = load_again(args.runs_load, first_load, || load_a(args, dir))?;
    report_load(&mut rep, &A_TABLES.map(|t| t.1), &loads);
    rep.finish();
    Ok(())
}

// ------------------------------------------------------------------------- workload b

/// A recursive workload over one two-column datasource table.
struct GraphWorkload {
    label: &'static str,
    /// Datasource, table, and the `.facts` file's stem.
    ds: &'static str,
    table: &'static str,
    stem: &'static str,
    /// The policy's rules and the table they derive.
    rules: &'static str,
    head: &'static str,
    reference: fn(&[Vec<Value>]) -> usize,
}

const GRAPH_B: GraphWorkload = GraphWorkload {
    label: "b",
    ds: "graph",
    table: "edge",
    stem: "edge",
    rules: workloads::B_POLICY,
    head: "path",
    reference: workloads::b_reference_paths,
};

const GRAPH_C: GraphWorkload = GraphWorkload {
    label: "c",
    ds: "tree",
    table: "parent",
    stem: "parent",
    rules: workloads::C_SG_POLICY,
    head: "sg",
    reference: workloads::c_reference_sg,
};

/// Workloads b (transitive closure) and c (same generation).
fn bench_b(args: &BenchArgs, w: &GraphWorkload) -> Result<(), String> {
    use workloads::*;
    let dir = data_dir(args)?;
    let mut rep = Reporter::new(w.label, 0);

    let load = || {
        let mut engine = Engine::with_default_policies();
        engine
            .create_datasource(w.ds, schema(&[(w.table, &["src", "dst"])]))
            .map_err(engine_err(&format!("create datasource {}", w.ds)))?;
        let edges = FactsReader::open(dir, w.stem, 2)?;
        let table = load_paged(&mut engine, w.ds, w.table, args.page_rows, edges)?;
        Ok((engine, vec![table]))
    };
    let (mut engine, first_load) = load()?;
    rep.n = args.n.unwrap_or(loaded_rows(&first_load));
    let facts = loaded_rows(&first_load);
    rep.note(format!("after load: {}", memory_line(&engine)));
    let loaded = engine.fact_count();

    let kinds = match args.kind {
        Some(k) => vec![k],
        None => vec![PolicyKind::Nonrecursive, PolicyKind::Materialized, PolicyKind::Z3],
    };
    let policy = "reach";
    let rules = [(policy, w.rules)];
    let mut refused = Vec::new();
    let mut eval_secs = None;
    for kind in kinds {
        engine.create_policy(policy, kind).map_err(engine_err(&format!("create {kind} policy {policy}")))?;
        let (commit, secs) = timed(|| insert_rules(&mut engine, &rules));
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
    let evaluated = engine.fact_count();
    rep.rss(facts, &engine);

    // From here on the bench may hold rows and repeat steps: the peak RSS is read.
    let mut times = vec![secs];
    times.extend(eval_again(&mut engine, &rules, args.runs, (loaded, evaluated), |_| Ok(()))?);
    rep.note(format!("eval: {}", spread(&times)));
    let expected = (w.reference)(&read_facts(dir, w.stem, 2)?);
    let paths = count_rows(&engine, policy, w.head)?;
    check_count(&format!("workload {} {} after eval", w.label, w.head), paths, expected)?;
    rep.result("eval", median(times), paths);

    let query = format!("{}(x, y)", w.head);
    let (answers, secs) = timed(|| engine.query_values(policy, &query));
    let answers = answers.map_err(engine_err(&format!("query {query}")))?;
    check_count(&format!("workload {} query {query}", w.label), answers.len(), expected)?;
    rep.result("query", secs, answers.len());
    drop(answers);
    let loads = load_again(args.runs_load, first_load, load)?;
    report_load(&mut rep, &[w.table], &loads);
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
        let w = Wrap::try_parse_from(["bench", "--workload", "c", "--data", "x"]);
        assert!(matches!(w.map(|w| w.args.workload), Ok(Workload::Sg)));
    }

    fn args(workload: Workload, n: usize, exec: bool) -> BenchArgs {
        BenchArgs {
            workload,
            n: Some(n),
            data: None,
            exec,
            repeat: 3,
            repeat_big: 1,
            runs: 2,
            runs_load: 1,
            page_rows: PAGE_ROWS,
            kind: None,
            rules: 10,
            shape: rules::Shape::Gen,
            inline: false,
        }
    }

    /// Workload e runs on every generated shape (its row checks are inside).
    #[test]
    fn workload_e_runs_on_every_shape() {
        for shape in [rules::Shape::Flat, rules::Shape::Head, rules::Shape::Chain, rules::Shape::ChainNeg] {
            let mut a = args(Workload::E, 0, false);
            a.shape = shape;
            a.rules = 200;
            bench(&a).expect("workload e");
        }
    }

    /// The responsiveness workload runs both ways and checks what the status writer saw.
    #[test]
    fn responsiveness_runs_with_the_actor_and_inline() {
        responsiveness::bench(2000, 50, false).expect("actor");
        responsiveness::bench(2000, 50, true).expect("inline");
    }

    /// A fresh directory under the system temp dir, for `.facts` files.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("congress-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn workload_c_loaded_in_pages_gives_the_same_counts() {
        // Pages of 100 rows (29 transactions) against each table pushed whole.
        let mut a = args(Workload::C, 1000, false);
        a.page_rows = 100;
        let (mut paged, tables) = load_c(&a, 1000).expect("loads");
        assert_eq!(tables.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1000, 857, 1000]);
        let mut whole = Engine::with_default_policies();
        for (ds, tables) in [
            ("nova", vec![("servers", &workloads::NOVA_SERVERS[..])]),
            (
                "neutronv2",
                vec![("ports", &workloads::NEUTRON_PORTS[..]), ("networks", &workloads::NEUTRON_NETWORKS[..])],
            ),
        ] {
            assert!(whole.create_datasource(ds, workloads::schema(&tables)).is_ok());
        }
        let data = workloads::gen_c(1000);
        for (table, rows) in [("servers", data.servers), ("ports", data.ports), ("networks", data.networks)] {
            let ds = if table == "servers" { "nova" } else { "neutronv2" };
            assert!(whole.replace_table(ds, table, rows).is_ok());
        }
        assert_eq!(paged.fact_count(), whole.fact_count());
        for engine in [&mut paged, &mut whole] {
            assert!(insert_rules(engine, &[("classification", workloads::C_CLASSIFICATION)]).is_ok());
        }
        for (policy, table) in [("nova", "servers"), ("neutronv2", "ports"), ("classification", "error")] {
            assert_eq!(paged.rows(policy, table).ok(), whole.rows(policy, table).ok(), "{policy}:{table}");
        }
        assert_eq!(count_rows(&paged, "classification", "error"), Ok(202));
        assert_eq!(paged.fact_count(), whole.fact_count());

        // The whole bench with small pages, repeated evals and loads still checks 202.
        a.runs = 3;
        a.runs_load = 2;
        assert_eq!(bench(&a), Ok(()));
        a.exec = true;
        assert_eq!(bench(&a), Ok(()));
    }

    #[test]
    fn workload_b_reads_facts_in_pages() {
        let dir = temp_dir("b");
        // a 3-cycle (9 paths) and a chain 4 -> 5 -> 6 (3 paths); CRLF and empty lines too
        assert!(std::fs::write(dir.join("edge.facts"), "1\t2\n2\t3\r\n\n3\t1\n4\t5\n5\t6\n").is_ok());
        let mut a = args(Workload::B, 0, false);
        a.n = None;
        a.data = Some(dir.clone());
        a.page_rows = 2;
        a.runs = 3;
        a.runs_load = 2;
        assert_eq!(bench(&a), Ok(()));
        let rows: Result<Rows, String> = workloads::FactsReader::open(&dir, "edge", 2).and_then(|r| r.collect());
        assert_eq!(rows.map(|r| r.len()), Ok(5));

        assert!(std::fs::write(dir.join("edge.facts"), "1\t2\n2\t3\t4\n").is_ok());
        let err = bench(&a).err().unwrap_or_default();
        assert!(err.contains("edge.facts line 2: 3 fields, expected 2"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn workload_c_same_generation_checks_its_counts() {
        let dir = temp_dir("sg");
        // two trees: 0 -> {1, 2}, 1 -> {3}, 2 -> {4, 5}; 10 -> {11}
        assert!(std::fs::write(dir.join("parent.facts"), "1\t0\n2\t0\n3\t1\n4\t2\n5\t2\n11\t10\n").is_ok());
        let mut a = args(Workload::Sg, 0, false);
        a.n = None;
        a.data = Some(dir.clone());
        a.runs = 2;
        assert_eq!(bench(&a), Ok(()));
        let _ = std::fs::remove_dir_all(&dir);
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
