//! The poll loop of polled drivers: poll, diff every table against the last good poll,
//! commit the difference of all of them in ONE transaction (a policy joining two tables of a
//! service never sees half a poll), then wait the interval (with jitter), or a backoff after
//! a failure, or a refresh request, whichever comes first.
//!
//! A failed poll changes no table: the last good data stays, the status says why
//! ([`DriverStatus::last_error`], [`DriverStatus::failure_reason`], the counters), and the
//! next good poll clears it. A poll that returns what the last one did commits nothing.
//!
//! Only tables a loaded rule reads are fetched (Congress's lazy tables); when the rules
//! change so that a table no poll has fetched is read, the driver polls at once.

use super::http::{HttpDriver, PollError, PollState, Polled};
use super::{DriverStatus, Sink, SinkError, TableChange};
use congress_engine::Value;
use hashbrown::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

/// Congress's default poll interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// The first wait after a failure; it doubles per failure in a row, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// When to poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// `None`: only on request (Congress's `poll_time: 0`).
    pub interval: Option<Duration>,
}

impl Schedule {
    /// From `spec.pollIntervalSeconds` (absent: 10 s; 0: only on request).
    pub fn from_seconds(seconds: Option<u32>) -> Schedule {
        Schedule {
            interval: match seconds {
                None => Some(DEFAULT_INTERVAL),
                Some(0) => None,
                Some(s) => Some(Duration::from_secs(u64::from(s))),
            },
        }
    }

    /// The wait after a poll: the interval less up to a tenth (so datasources started
    /// together spread out), or the backoff after `failures` failures in a row.
    pub fn wait(&self, failures: u64, seed: u64) -> Option<Duration> {
        if failures > 0 {
            let exp = FIRST_BACKOFF.saturating_mul(1 << failures.saturating_sub(1).min(20));
            return Some(exp.min(MAX_BACKOFF));
        }
        let interval = self.interval?;
        let jitter = interval.mul_f64((seed % 1000) as f64 / 10_000.0);
        Some(interval - jitter)
    }
}

/// Why a poll changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum PollFailure {
    #[error(transparent)]
    Poll(#[from] PollError),
    #[error(transparent)]
    Sink(#[from] SinkError),
}

impl PollFailure {
    pub fn reason(&self) -> &'static str {
        match self {
            PollFailure::Poll(e) => e.reason(),
            PollFailure::Sink(SinkError::Rejected(_)) => "Rejected",
            PollFailure::Sink(SinkError::Unavailable(_)) => "EngineUnavailable",
        }
    }
}

/// The rows of every table as last committed, to diff a whole new set of rows against (the
/// `push` driver's replace).
#[derive(Debug, Default)]
pub struct Tables {
    rows: HashMap<String, HashSet<Vec<Value>>>,
}

/// The difference a poll makes, and the state it leads to.
#[derive(Debug, Default)]
pub struct Diff {
    pub changes: Vec<TableChange>,
    /// Rows that changed (added plus removed).
    pub changed: u64,
    next: Vec<(String, HashSet<Vec<Value>>)>,
}

impl Tables {
    /// What `polled` changes. Tables not in `polled` keep their rows. Costs one hash of every
    /// polled row plus one per old row.
    pub fn diff(&self, polled: Polled) -> Diff {
        let mut diff = Diff::default();
        for (table, rows) in polled {
            let new: HashSet<Vec<Value>> = rows.into_iter().collect();
            let empty = HashSet::new();
            let old = self.rows.get(&table).unwrap_or(&empty);
            let added: Vec<Vec<Value>> = new.iter().filter(|r| !old.contains(*r)).cloned().collect();
            let removed: Vec<Vec<Value>> = old.iter().filter(|r| !new.contains(*r)).cloned().collect();
            if !added.is_empty() || !removed.is_empty() {
                diff.changed += (added.len() + removed.len()) as u64;
                diff.changes.push(TableChange { table: table.clone(), added, removed });
            }
            diff.next.push((table, new));
        }
        diff
    }

    /// Take the state `diff` leads to (once its changes are committed).
    pub fn apply(&mut self, diff: Diff) {
        self.rows.extend(diff.next);
    }

    /// A copy of `table`'s rows.
    pub fn rows(&self, table: &str) -> HashSet<Vec<Value>> {
        self.rows.get(table).cloned().unwrap_or_default()
    }

    /// Rows per table.
    pub fn counts(&self) -> impl Iterator<Item = (&str, u64)> {
        self.rows.iter().map(|(t, r)| (t.as_str(), r.len() as u64))
    }
}

/// What one good poll did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    pub changed: u64,
    pub seconds: f64,
}

/// One poll of `driver` into datasource `engine_name`: fetch the tables a policy reads,
/// diff, commit the difference (nothing when there is none), then record the poll in
/// `state` (only once committed: a failure leaves `state` as the last good poll left it).
pub async fn poll_once(
    driver: &HttpDriver,
    engine_name: &str,
    sink: &dyn Sink,
    state: &mut PollState,
) -> Result<Outcome, PollFailure> {
    let started = Instant::now();
    let all: Vec<String> = driver.tables().map(str::to_string).collect();
    let needed: HashSet<String> = sink.tables_read(engine_name, all).await.into_iter().collect();
    let mut pending = driver.poll(&|t| needed.contains(t), state).await?;
    let changed = pending.changed;
    let changes = std::mem::take(&mut pending.changes);
    if !changes.is_empty() {
        sink.apply(engine_name, changes).await?;
    }
    state.commit(pending);
    Ok(Outcome { changed, seconds: started.elapsed().as_secs_f64() })
}

/// Poll `driver` for ever (until the task is dropped), reporting through `status`.
pub async fn run(
    driver: Arc<HttpDriver>,
    engine_name: String,
    sink: Arc<dyn Sink>,
    schedule: Schedule,
    refresh: Arc<Notify>,
    status: watch::Sender<DriverStatus>,
) {
    let mut state = PollState::default();
    let mut rules = sink.rules_changed();
    let seed = seed(&engine_name);
    let mut failures = 0u64;
    loop {
        let span = tracing::debug_span!("poll", datasource = %engine_name);
        let result = tracing::Instrument::instrument(poll_once(&driver, &engine_name, &*sink, &mut state), span).await;
        match result {
            Ok(outcome) => {
                failures = 0;
                tracing::debug!(datasource = %engine_name, changed = outcome.changed, seconds = outcome.seconds, "polled");
                status.send_modify(|s| {
                    s.synced = true;
                    s.rows = state.counts(&driver);
                    s.listed = Some(s.rows.keys().cloned().collect());
                    s.last_sync = Some(congress_model::now_rfc3339());
                    s.last_error = None;
                    s.failure_reason = None;
                    s.consecutive_errors = 0;
                    s.polls += 1;
                    s.last_poll_seconds = outcome.seconds;
                    s.rows_changed = outcome.changed;
                    s.lag_seconds = outcome.seconds;
                });
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(datasource = %engine_name, reason = e.reason(), error = %e, failures, "poll failed; the tables keep their last good rows");
                status.send_modify(|s| {
                    s.last_error = Some(e.to_string());
                    s.failure_reason = Some(e.reason().to_string());
                    s.errors += 1;
                    s.consecutive_errors = failures;
                });
            }
        }
        let deadline = schedule.wait(failures, seed.wrapping_add(failures)).map(|w| tokio::time::Instant::now() + w);
        wait(deadline, &refresh, &mut rules, || async {
            // A table a policy now reads that no poll has fetched yet: poll at once.
            let all: Vec<String> = driver.tables().map(str::to_string).collect();
            sink.tables_read(&engine_name, all).await.iter().any(|t| !driver.fetched(&state, t))
        })
        .await;
    }
}

/// Wait until `deadline` (for ever when `None`), a refresh request, or a change of the rules
/// after which `wanted` says a poll is due.
async fn wait<F, Fut>(
    deadline: Option<tokio::time::Instant>,
    refresh: &Notify,
    rules: &mut Option<watch::Receiver<u64>>,
    wanted: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let rules_changed = async {
            match rules.as_mut() {
                Some(r) => r.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => return,
            () = refresh.notified() => return,
            changed = rules_changed => {
                if !changed {
                    *rules = None;
                } else if wanted().await {
                    return;
                }
            }
        }
    }
}

/// A number per datasource and process for the jitter (randomly keyed, so datasources
/// started together, in one operator or in several, spread out).
fn seed(name: &str) -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(values: &[&str]) -> Vec<Vec<Value>> {
        values.iter().map(|v| vec![Value::str(v)]).collect()
    }

    #[test]
    fn a_diff_holds_only_what_changed_and_same_data_changes_nothing() {
        let mut tables = Tables::default();
        let first = tables.diff(vec![("t".into(), rows(&["a", "b"])), ("u".into(), rows(&["x"]))]);
        assert_eq!(first.changed, 3);
        assert_eq!(first.changes.len(), 2);
        tables.apply(first);
        let same = tables.diff(vec![("t".into(), rows(&["b", "a", "a"])), ("u".into(), rows(&["x"]))]);
        assert!(same.changes.is_empty());
        tables.apply(same);
        let next = tables.diff(vec![("t".into(), rows(&["a", "c"]))]);
        assert_eq!(next.changes.len(), 1);
        assert_eq!(next.changes[0].added, rows(&["c"]));
        assert_eq!(next.changes[0].removed, rows(&["b"]));
        tables.apply(next);
        // `u` was not polled: it keeps its row.
        let counts: std::collections::BTreeMap<_, _> = tables.counts().collect();
        assert_eq!(counts, [("t", 2), ("u", 1)].into_iter().collect());
    }

    #[test]
    fn waits_jitter_below_the_interval_and_back_off_after_failures() {
        let s = Schedule::from_seconds(None);
        assert_eq!(s.interval, Some(Duration::from_secs(10)));
        for seed in [0, 1, 999, 12345] {
            let w = s.wait(0, seed).unwrap();
            assert!(w <= DEFAULT_INTERVAL && w >= DEFAULT_INTERVAL.mul_f64(0.9), "{w:?}");
        }
        assert_eq!(s.wait(1, 0), Some(Duration::from_secs(1)));
        assert_eq!(s.wait(2, 0), Some(Duration::from_secs(2)));
        assert_eq!(s.wait(4, 0), Some(Duration::from_secs(8)));
        assert_eq!(s.wait(60, 0), Some(MAX_BACKOFF));
        assert_eq!(Schedule::from_seconds(Some(0)).wait(0, 0), None);
        // On request only: a failure still retries, with backoff.
        assert_eq!(Schedule::from_seconds(Some(0)).wait(3, 0), Some(Duration::from_secs(4)));
    }
}
