//! Replaying one case on a fresh engine and collecting its differences from the recording.

use super::cases::{Case, RuleResult, Step};
use super::compare::{Cell, diff_actions, diff_sets, render_answer, short, show_answers, show_row};
use congress_engine::{ActionEvent, Engine, EngineError, PolicyKind, Value};
use congress_engine::{Commit, SimulateRequest};
use serde_json::Value as Json;
use std::collections::BTreeSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Duration;

/// How long one case may run before it is reported as a failure.
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// One difference between our engine and the recording.
#[derive(Clone, Debug)]
pub(super) struct Mismatch {
    /// Not excusable by a deviation listing: a difference from an `intended_*` value,
    /// a malformed case, a panic or a timeout.
    pub(super) hard: bool,
    /// We match the case's `intended_*` value (what a correct engine does) and differ
    /// only from the recorded, buggy one: a documented deviation without a listing.
    pub(super) intended: bool,
    pub(super) text: String,
}

#[derive(Clone, Debug, Default)]
pub(super) struct CaseOutcome {
    pub(super) mismatches: Vec<Mismatch>,
}

impl CaseOutcome {
    pub(super) fn broken(text: String) -> CaseOutcome {
        CaseOutcome { mismatches: vec![Mismatch { hard: true, intended: false, text }] }
    }
}

/// Replay one case on its own thread, so that a panic or a runaway evaluation in the
/// engine fails that case instead of the whole run.
pub(super) fn run_isolated(case: Case) -> CaseOutcome {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new().name("conformance-case".into()).spawn(move || {
        let result = panic::catch_unwind(AssertUnwindSafe(|| Replay::new(&case).run()));
        // The receiver may have given up (timeout); nothing to do then.
        let _ = tx.send(result.map_err(panic_message));
    });
    if let Err(e) = spawned {
        return CaseOutcome::broken(format!("cannot start a thread for the case: {e}"));
    }
    match rx.recv_timeout(CASE_TIMEOUT) {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(msg)) => CaseOutcome::broken(format!("engine panicked: {msg}")),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            CaseOutcome::broken(format!("timed out after {} s", CASE_TIMEOUT.as_secs()))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => CaseOutcome::broken("engine panicked".to_string()),
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

struct Replay<'a> {
    case: &'a Case,
    engine: Engine,
    mismatches: Vec<Mismatch>,
}

impl<'a> Replay<'a> {
    fn new(case: &'a Case) -> Self {
        Replay { case, engine: Engine::with_default_policies(), mismatches: Vec::new() }
    }

    fn differ(&mut self, text: String) {
        self.mismatches.push(Mismatch { hard: false, intended: false, text });
    }

    fn hard(&mut self, text: String) {
        self.mismatches.push(Mismatch { hard: true, intended: false, text });
    }

    fn run(mut self) -> CaseOutcome {
        let mut fired = Vec::new();
        self.create_datasources(&mut fired);
        self.create_policies(&mut fired);
        self.insert_rules(&mut fired);
        self.push_data(&mut fired);
        self.check_setup_actions(&fired);
        let case = self.case;
        for (i, q) in case.queries.iter().enumerate() {
            let what = format!("query #{} {}: `{}`", i + 1, q.policy, q.query);
            self.check_query(&what, &q.policy, &q.query, &q.expected, &q.expected_rows, &q.expected_error);
        }
        for (i, step) in case.steps.iter().enumerate() {
            self.run_step(i + 1, step);
        }
        CaseOutcome { mismatches: self.mismatches }
    }

    /// README step 2.
    fn create_datasources(&mut self, fired: &mut Vec<ActionEvent>) {
        let case = self.case;
        for (name, schema) in &case.datasources {
            match self.engine.create_datasource(name, schema.clone()) {
                Ok(commit) => fired.extend(commit.actions),
                Err(e) => self.differ(format!("create datasource {name}: {}", short(&e.to_string()))),
            }
        }
    }

    /// Policies in `policy_order`, then any others by name.
    fn ordered_policies(&self) -> Vec<&'a str> {
        let case = self.case;
        let mut order: Vec<&str> = case.policy_order.iter().map(String::as_str).collect();
        for name in case.policies.keys() {
            if !order.contains(&name.as_str()) {
                order.push(name);
            }
        }
        order
    }

    /// README step 3.
    fn create_policies(&mut self, fired: &mut Vec<ActionEvent>) {
        for name in self.ordered_policies() {
            if self.engine.policy_kind(name).is_some() {
                continue;
            }
            let kind_text = self.case.policies.get(name).and_then(|p| p.kind.as_deref()).unwrap_or("nonrecursive");
            let kind = match kind_text.parse::<PolicyKind>() {
                Ok(k) => k,
                Err(e) => {
                    self.differ(format!("create policy {name}: {}", short(&e.to_string())));
                    continue;
                }
            };
            match self.engine.create_policy(name, kind) {
                Ok(commit) => fired.extend(commit.actions),
                Err(e) => self.differ(format!("create policy {name} ({kind}): {}", short(&e.to_string()))),
            }
        }
    }

    /// README step 4: rules one per insert (or one transaction for a batch policy),
    /// each outcome compared with the next `rule_results` entry.
    fn insert_rules(&mut self, fired: &mut Vec<ActionEvent>) {
        let case = self.case;
        let mut recorded = case.rule_results.iter();
        for name in self.ordered_policies() {
            let Some(spec) = case.policies.get(name) else {
                continue;
            };
            if spec.batch {
                let result = self.insert_batch(name, &spec.rules);
                let expected = recorded.next();
                if let Some(r) = expected
                    && (r.rules.as_ref() != Some(&spec.rules) || r.policy.as_deref().is_some_and(|p| p != name))
                {
                    self.hard(format!("rule_results out of step with the batch of policy {name}"));
                }
                self.compare_insert(&format!("batch insert into {name}"), result, expected, fired);
                continue;
            }
            for rule in &spec.rules {
                let result = self.engine.insert_rule(name, rule);
                let expected = recorded.next();
                if let Some(r) = expected
                    && (r.rule.as_deref() != Some(rule.as_str()) || r.policy.as_deref().is_some_and(|p| p != name))
                {
                    self.hard(format!("rule_results out of step with rule `{rule}` of policy {name}"));
                }
                self.compare_insert(&format!("insert into {name} `{rule}`"), result, expected, fired);
            }
        }
        if recorded.next().is_some() {
            self.hard("rule_results has more entries than the policies have inserts".to_string());
        }
    }

    /// One all-or-nothing update, one `insert_rule` per rule string (so each string must
    /// still be exactly one formula).
    fn insert_batch(&mut self, policy: &str, rules: &[String]) -> Result<Commit, EngineError> {
        let mut tx = self.engine.transaction();
        for rule in rules {
            tx.insert_rule(policy, rule);
        }
        tx.commit()
    }

    fn compare_insert(
        &mut self,
        what: &str,
        result: Result<Commit, EngineError>,
        expected: Option<&RuleResult>,
        fired: &mut Vec<ActionEvent>,
    ) {
        match (&result, expected) {
            (Ok(_), Some(r)) if !r.accepted => {
                self.differ(format!("{what}: accepted, but Congress rejected it ({})", short(&r.congress_message)))
            }
            (Err(e), Some(r)) if r.accepted => {
                self.differ(format!("{what}: rejected ({}), but Congress accepted it", short(&e.to_string())))
            }
            _ => {}
        }
        if let Ok(commit) = result {
            fired.extend(commit.actions);
        }
    }

    /// README step 5.
    fn push_data(&mut self, fired: &mut Vec<ActionEvent>) {
        let case = self.case;
        let mut order: Vec<&str> = case.data_order.iter().map(String::as_str).collect();
        for key in case.data.keys() {
            if !order.contains(&key.as_str()) {
                order.push(key);
            }
        }
        for key in order {
            let Some(rows) = case.data.get(key) else {
                self.hard(format!("data_order names `{key}`, which has no data"));
                continue;
            };
            let Some((ds, table)) = key.split_once(':') else {
                self.hard(format!("data key `{key}` is not `datasource:table`"));
                continue;
            };
            match self.engine.replace_table(ds, table, congress_rows(rows)) {
                Ok(commit) => fired.extend(commit.actions),
                Err(e) => self.differ(format!("push {key}: {}", short(&e.to_string()))),
            }
        }
    }

    /// README step 6, with `intended_executed_actions_after_setup` taking precedence: in
    /// any case that carries it (the batch-closure bug, e.g. when a library policy is
    /// activated), matching the intended actions is a documented deviation even when the
    /// case is not listed, and matching neither is a failure.
    fn check_setup_actions(&mut self, fired: &[ActionEvent]) {
        let case = self.case;
        let recorded = case.executed_actions_after_setup.as_deref();
        let recorded_diff = recorded.and_then(|r| diff_actions(r, fired));
        match &case.intended_executed_actions_after_setup {
            Some(intended) => {
                if let Some(diff) = diff_actions(intended, fired) {
                    self.hard(format!("actions after setup differ from the intended ones: {diff}"));
                } else if let Some(diff) = recorded_diff {
                    self.mismatches.push(Mismatch {
                        hard: false,
                        intended: true,
                        text: format!(
                            "actions after setup match intended_executed_actions_after_setup; the recorded ones differ: {diff}"
                        ),
                    });
                }
            }
            None => {
                if let Some(diff) = recorded_diff {
                    self.differ(format!("actions after setup: {diff}"));
                }
            }
        }
    }

    fn check_query(
        &mut self,
        what: &str,
        policy: &str,
        query: &str,
        expected: &Option<Vec<String>>,
        expected_rows: &Option<Vec<Vec<Json>>>,
        expected_error: &Option<String>,
    ) {
        let result = self.engine.query(policy, query);
        let answers = match (result, expected_error) {
            (Err(_), Some(_)) => return,
            (Ok(answers), Some(err)) => {
                self.differ(format!(
                    "{what}: answered {}, but Congress raised ({})",
                    show_answers(&answers),
                    short(err)
                ));
                return;
            }
            (Err(e), None) => {
                self.differ(format!("{what}: {}", short(&e.to_string())));
                return;
            }
            (Ok(answers), None) => answers,
        };
        if let Some(rows) = expected_rows {
            let expected: BTreeSet<Vec<Cell>> = rows.iter().map(|r| r.iter().map(Cell::expected).collect()).collect();
            let ours: BTreeSet<Vec<Cell>> = answers.iter().map(|a| a.iter().map(Cell::from_term).collect()).collect();
            if let Some(diff) = diff_sets(&expected, &ours, |r| show_row(r)) {
                self.differ(format!("{what}: {diff}"));
            }
        } else if let Some(strings) = expected {
            let expected: BTreeSet<String> = strings.iter().cloned().collect();
            let ours: BTreeSet<String> = answers.iter().map(|a| render_answer(query, a)).collect();
            if let Some(diff) = diff_sets(&expected, &ours, String::clone) {
                self.differ(format!("{what}: {diff}"));
            }
        }
    }

    fn run_step(&mut self, n: usize, step: &Step) {
        let what = format!("step #{n} {}", step.op);
        let mut fired: Vec<ActionEvent> = Vec::new();
        match self.step_action(&what, step, &mut fired) {
            Ok(()) => {}
            Err(missing) => {
                self.hard(format!("{what}: malformed step: {missing}"));
                return;
            }
        }
        if let Some(expected) = &step.executed_actions
            && let Some(diff) = diff_actions(expected, &fired)
        {
            self.differ(format!("{what}: actions {diff}"));
        }
    }

    /// Run one step; `Err` names a missing field.
    fn step_action(&mut self, what: &str, step: &Step, fired: &mut Vec<ActionEvent>) -> Result<(), String> {
        fn need<'s, T: ?Sized>(v: Option<&'s T>, field: &str) -> Result<&'s T, String> {
            v.ok_or_else(|| format!("no `{field}`"))
        }
        let policy = || need(step.policy.as_deref(), "policy");
        match step.op.as_str() {
            "push_full" | "push_delta" => {
                let table = need(step.table.as_deref(), "table")?;
                let (ds, name) =
                    table.split_once(':').ok_or_else(|| format!("table `{table}` is not `datasource:table`"))?;
                let result = if step.op == "push_full" {
                    let rows = need(step.rows.as_ref(), "rows")?;
                    self.engine.replace_table(ds, name, congress_rows(rows))
                } else {
                    self.engine.update_table(ds, name, congress_rows(&step.add), congress_rows(&step.delete))
                };
                self.mutation(&format!("{what} {table}"), step, result, fired);
            }
            "insert_rule" | "delete_rule" => {
                let (policy, rule) = (policy()?, need(step.rule.as_deref(), "rule")?);
                let result = if step.op == "insert_rule" {
                    self.engine.insert_rule(policy, rule)
                } else {
                    self.engine.delete_rule(policy, rule)
                };
                self.mutation(&format!("{what} {policy} `{rule}`"), step, result, fired);
            }
            "insert_rules_batch" => {
                let (policy, rules) = (policy()?, need(step.rules.as_ref(), "rules")?);
                let result = self.insert_batch(policy, rules);
                self.mutation(&format!("{what} {policy}"), step, result, fired);
            }
            "create_policy" => {
                let name = need(step.name.as_deref(), "name")?;
                let result = step
                    .kind
                    .as_deref()
                    .unwrap_or("nonrecursive")
                    .parse::<PolicyKind>()
                    .and_then(|kind| self.engine.create_policy(name, kind));
                self.mutation(&format!("{what} {name}"), step, result, fired);
            }
            "delete_policy" => {
                let name = need(step.name.as_deref(), "name")?;
                let result = self.engine.delete_policy(name);
                self.mutation(&format!("{what} {name}"), step, result, fired);
            }
            "query" => {
                let (policy, query) = (policy()?, need(step.query.as_deref(), "query")?);
                let what = format!("{what} {policy}: `{query}`");
                self.check_query(&what, policy, query, &step.expected, &step.expected_rows, &step.expected_error);
            }
            "query_trace" => {
                // The trace text is informational: it must be produced, and the answers
                // must match.
                let (policy, query) = (policy()?, need(step.query.as_deref(), "query")?);
                let what = format!("{what} {policy}: `{query}`");
                if step.expected_error.is_none()
                    && let Err(e) = self.engine.trace(policy, query)
                {
                    self.differ(format!("{what}: no trace: {}", short(&e.to_string())));
                }
                self.check_query(&what, policy, query, &step.expected, &step.expected_rows, &step.expected_error);
            }
            "simulate" => {
                let policy = policy()?;
                let query = need(step.query.as_deref(), "query")?;
                let sequence = need(step.sequence.as_deref(), "sequence")?;
                let action_policy = step.action_policy.as_deref().unwrap_or("action");
                let req = SimulateRequest { policy, query, sequence, action_policy, delta: step.delta };
                let what = format!("{what} {policy}: `{query}` after `{sequence}`");
                let result = self.engine.simulate(&req);
                match (result, &step.expected_error) {
                    (Err(_), Some(_)) => {}
                    (Ok(got), Some(err)) => {
                        self.differ(format!("{what}: returned {got:?}, but Congress raised ({})", short(err)))
                    }
                    (Err(e), None) => self.differ(format!("{what}: {}", short(&e.to_string()))),
                    (Ok(got), None) => {
                        let mut expected = need(step.expected.as_ref(), "expected")?.clone();
                        let mut got = got;
                        expected.sort();
                        got.sort();
                        if expected != got {
                            self.differ(format!("{what}: expected {expected:?}, got {got:?}"));
                        }
                    }
                }
            }
            "tables" => {
                let policy = policy()?;
                match (self.engine.tables(policy), &step.expected_error) {
                    (Err(_), Some(_)) => {}
                    (Ok(got), Some(err)) => {
                        self.differ(format!("{what} {policy}: returned {got:?}, but Congress raised ({})", short(err)))
                    }
                    (Err(e), None) => self.differ(format!("{what} {policy}: {}", short(&e.to_string()))),
                    (Ok(got), None) => {
                        let expected: BTreeSet<String> =
                            need(step.expected.as_ref(), "expected")?.iter().cloned().collect();
                        let got: BTreeSet<String> = got.into_iter().collect();
                        if let Some(diff) = diff_sets(&expected, &got, String::clone) {
                            self.differ(format!("{what} {policy}: {diff}"));
                        }
                    }
                }
            }
            "rows" => {
                let (policy, table) = (policy()?, need(step.table.as_deref(), "table")?);
                let what = format!("{what} {policy} {table}");
                match (self.engine.rows(policy, table), &step.expected_error) {
                    (Err(_), Some(_)) => {}
                    (Ok(got), Some(err)) => self.differ(format!(
                        "{what}: returned {} rows, but Congress raised ({})",
                        got.len(),
                        short(err)
                    )),
                    (Err(e), None) => self.differ(format!("{what}: {}", short(&e.to_string()))),
                    (Ok(got), None) => {
                        let expected: BTreeSet<Vec<Cell>> = need(step.expected_rows.as_ref(), "expected_rows")?
                            .iter()
                            .map(|r| r.iter().map(Cell::expected).collect())
                            .collect();
                        let got: BTreeSet<Vec<Cell>> =
                            got.into_iter().map(|r| r.into_iter().map(Cell::Val).collect()).collect();
                        if let Some(diff) = diff_sets(&expected, &got, |r| show_row(r)) {
                            self.differ(format!("{what}: {diff}"));
                        }
                    }
                }
            }
            other => return Err(format!("unknown op `{other}`")),
        }
        Ok(())
    }

    /// Compare a state-changing step's outcome: `accepted` when recorded, otherwise an
    /// error must match `expected_error`; a committed change's actions are collected.
    fn mutation(&mut self, what: &str, step: &Step, result: Result<Commit, EngineError>, fired: &mut Vec<ActionEvent>) {
        match (&result, step.accepted, &step.expected_error) {
            (Ok(_), Some(false), _) => self.differ(format!("{what}: accepted, but Congress rejected it")),
            (Err(e), Some(true), _) => {
                self.differ(format!("{what}: rejected ({}), but Congress accepted it", short(&e.to_string())))
            }
            (Ok(_), None, Some(err)) => self.differ(format!("{what}: succeeded, but Congress raised ({})", short(err))),
            (Err(e), None, None) => self.differ(format!("{what}: {}", short(&e.to_string()))),
            _ => {}
        }
        if let Ok(commit) = result {
            fired.extend(commit.actions);
        }
    }
}

/// Rows as pushed by a datasource: JSON values through Congress's conversion.
fn congress_rows(rows: &[Vec<Json>]) -> Vec<Vec<Value>> {
    rows.iter().map(|r| r.iter().map(Value::from_json_congress).collect()).collect()
}
