//! `congress serve`'s database: one SQLite file holding the policies, the library, the
//! data-source configurations, pushed rows, the ActionRequests and the history of violations.
//!
//! Objects are kept whole as JSON (the same `Policy`, `LibraryPolicy` and `Datasource`
//! resources the operator stores in Kubernetes), so the API has one model whichever backend
//! serves it. Every write is one SQLite transaction, committed (write-ahead log,
//! `synchronous=FULL`) before the API acknowledges it: a crash loses nothing acknowledged.
//! The schema's version is SQLite's `user_version`; [`MIGRATIONS`] bring an older file up to
//! date at open, each in its own transaction.

use rusqlite::{Connection, params};
use serde_json::Value;
use std::path::Path;
use std::sync::Mutex;

/// Schema migrations, in order: migration `i` takes `user_version` from `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: objects, pushed rows, history, action requests, settings.
    "CREATE TABLE objects (kind TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, name));
     CREATE TABLE pushed_rows (datasource TEXT NOT NULL, tbl TEXT NOT NULL, body TEXT NOT NULL,
                               PRIMARY KEY (datasource, tbl));
     CREATE TABLE history (id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, policy TEXT NOT NULL,
                           row TEXT NOT NULL, data TEXT NOT NULL, change TEXT NOT NULL, cause TEXT NOT NULL);
     CREATE INDEX history_by_policy ON history (policy, at_ms);
     CREATE TABLE action_requests (id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, body TEXT NOT NULL);
     CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
];

/// Why the database failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("database {path} has schema version {found}, newer than this congress knows ({known}): upgrade congress")]
    TooNew { path: String, found: i64, known: usize },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("database: a stored {kind} `{name}` is not valid JSON: {message}")]
    Corrupt { kind: String, name: String, message: String },
}

/// The kinds of object kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Policy,
    LibraryPolicy,
    Datasource,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Policy => "Policy",
            Kind::LibraryPolicy => "LibraryPolicy",
            Kind::Datasource => "Datasource",
        }
    }
}

/// One change of a violation, as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistoryEvent {
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub policy: String,
    /// The row as Congress prints it: `error("vm-1")`.
    pub row: String,
    /// The row's values (JSON).
    pub data: Value,
    /// `appeared` or `cleared`.
    pub change: String,
    /// What made it change: `datasource nova`, `policy classification`.
    pub cause: String,
}

/// Which history to read.
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery {
    pub policy: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub limit: usize,
}

/// The open database.
pub struct Store {
    conn: Mutex<Connection>,
    /// True when this open created the file (the library is initialised only then).
    created: bool,
}

impl Store {
    /// Open (creating and migrating as needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let shown = path.display().to_string();
        let open_err = |source| StoreError::Open { path: shown.clone(), source };
        let existed = path.exists();
        let conn = Connection::open(path).map_err(open_err)?;
        Self::init(conn, !existed, &shown)
    }

    /// A database in memory (tests, and `congress serve` without `--db`).
    pub fn in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory()?;
        Self::init(conn, true, ":memory:")
    }

    fn init(mut conn: Connection, created: bool, path: &str) -> Result<Store, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // WAL: readers never block the writer; FULL: a commit is on disk when it returns.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > MIGRATIONS.len() as i64 {
            return Err(StoreError::TooNew { path: path.to_string(), found: version, known: MIGRATIONS.len() });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
            tracing::info!(database = %path, version = i + 1, "database migrated");
        }
        Ok(Store { conn: Mutex::new(conn), created })
    }

    pub fn created(&self) -> bool {
        self.created
    }

    /// The schema version of the file.
    #[cfg(test)]
    pub fn version(&self) -> Result<i64, StoreError> {
        Ok(self.lock().query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (its transactions
        // roll back), so a poisoned lock is safe to take.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every stored object of `kind`, in name order.
    pub fn list(&self, kind: Kind) -> Result<Vec<Value>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT name, body FROM objects WHERE kind = ?1 ORDER BY name")?;
        let rows = stmt.query_map([kind.as_str()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, body) = row?;
            out.push(parse(kind.as_str(), &name, &body)?);
        }
        Ok(out)
    }

    /// Insert or replace an object.
    pub fn put(&self, kind: Kind, name: &str, body: &Value) -> Result<(), StoreError> {
        self.lock().execute(
            "INSERT INTO objects (kind, name, body) VALUES (?1, ?2, ?3)
             ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body",
            params![kind.as_str(), name, body.to_string()],
        )?;
        Ok(())
    }

    /// Delete an object (and, for a datasource, its pushed rows). True when it existed.
    pub fn delete(&self, kind: Kind, name: &str) -> Result<bool, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let n = tx.execute("DELETE FROM objects WHERE kind = ?1 AND name = ?2", params![kind.as_str(), name])?;
        if kind == Kind::Datasource {
            tx.execute("DELETE FROM pushed_rows WHERE datasource = ?1", [name])?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    /// Replace the pushed rows of one table.
    pub fn put_rows(&self, datasource: &str, table: &str, rows: &Value) -> Result<(), StoreError> {
        self.lock().execute(
            "INSERT INTO pushed_rows (datasource, tbl, body) VALUES (?1, ?2, ?3)
             ON CONFLICT (datasource, tbl) DO UPDATE SET body = excluded.body",
            params![datasource, table, rows.to_string()],
        )?;
        Ok(())
    }

    /// The pushed rows of a datasource, by table.
    pub fn rows(&self, datasource: &str) -> Result<Vec<(String, Value)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT tbl, body FROM pushed_rows WHERE datasource = ?1 ORDER BY tbl")?;
        let rows = stmt.query_map([datasource], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (table, body) = row?;
            out.push((table.clone(), parse("rows of", &format!("{datasource}:{table}"), &body)?));
        }
        Ok(out)
    }

    /// Append history events, all or none.
    pub fn append_history(&self, events: &[HistoryEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO history (at_ms, policy, row, data, change, cause) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for e in events {
                stmt.execute(params![e.at_ms, e.policy, e.row, e.data.to_string(), e.change, e.cause])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// History events, oldest first, at most `q.limit` (the newest ones when there are more).
    pub fn history(&self, q: &HistoryQuery) -> Result<Vec<HistoryEvent>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT at_ms, policy, row, data, change, cause FROM history
             WHERE (?1 IS NULL OR policy = ?1) AND (?2 IS NULL OR at_ms >= ?2) AND (?3 IS NULL OR at_ms < ?3)
             ORDER BY id DESC LIMIT ?4",
        )?;
        let rows = stmt.query_map(params![q.policy, q.since_ms, q.until_ms, q.limit as i64], |r| {
            Ok(HistoryEvent {
                at_ms: r.get(0)?,
                policy: r.get(1)?,
                row: r.get(2)?,
                data: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or(Value::Null),
                change: r.get(4)?,
                cause: r.get(5)?,
            })
        })?;
        let mut out = rows.collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }

    /// For each row of `policy` whose last event is `appeared`: when it appeared.
    pub fn present_since(&self, policy: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT row, at_ms, change FROM history WHERE id IN
               (SELECT MAX(id) FROM history WHERE policy = ?1 GROUP BY row)",
        )?;
        let rows =
            stmt.query_map([policy], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (row, at, change) = row?;
            if change == "appeared" {
                out.push((row, at));
            }
        }
        Ok(out)
    }

    /// Insert or replace an ActionRequest.
    pub fn put_action(&self, id: &str, created_ms: i64, body: &Value) -> Result<(), StoreError> {
        self.lock().execute(
            "INSERT INTO action_requests (id, created_ms, body) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET body = excluded.body",
            params![id, created_ms, body.to_string()],
        )?;
        Ok(())
    }

    /// Every ActionRequest, oldest first.
    pub fn actions(&self) -> Result<Vec<Value>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT id, body FROM action_requests ORDER BY created_ms, id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, body) = row?;
            out.push(parse("ActionRequest", &id, &body)?);
        }
        Ok(out)
    }

    #[cfg(test)]
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        Ok(self.lock().query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.lock().execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }
}

fn parse(kind: &str, name: &str, body: &str) -> Result<Value, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt {
        kind: kind.to_string(),
        name: name.to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_round_trip_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        {
            let s = Store::open(&path).unwrap();
            assert!(s.created());
            s.put(Kind::Policy, "b", &json!({"n": 2})).unwrap();
            s.put(Kind::Policy, "a", &json!({"n": 1})).unwrap();
            s.put(Kind::Policy, "a", &json!({"n": 3})).unwrap();
            s.put(Kind::Datasource, "nova", &json!({})).unwrap();
            s.put_rows("nova", "servers", &json!([["vm-1"]])).unwrap();
            s.set_setting("library", "initialised").unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert!(!s.created());
        assert_eq!(s.version().unwrap(), MIGRATIONS.len() as i64);
        assert_eq!(s.list(Kind::Policy).unwrap(), vec![json!({"n": 3}), json!({"n": 2})]);
        assert_eq!(s.rows("nova").unwrap(), vec![("servers".to_string(), json!([["vm-1"]]))]);
        assert_eq!(s.setting("library").unwrap().as_deref(), Some("initialised"));
        assert!(s.delete(Kind::Datasource, "nova").unwrap());
        assert!(!s.delete(Kind::Datasource, "nova").unwrap());
        assert!(s.rows("nova").unwrap().is_empty(), "a datasource's pushed rows go with it");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Store::open(&path).err().unwrap();
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    }

    #[test]
    fn a_corrupt_object_is_an_error_naming_it() {
        let s = Store::in_memory().unwrap();
        s.lock().execute("INSERT INTO objects VALUES ('Policy', 'p', '{not json')", []).unwrap();
        let err = s.list(Kind::Policy).unwrap_err().to_string();
        assert!(err.contains("Policy `p`"), "{err}");
    }

    #[test]
    fn history_is_filtered_and_keeps_the_newest_within_the_limit() {
        let s = Store::in_memory().unwrap();
        let ev = |at, row: &str, change: &str| HistoryEvent {
            at_ms: at,
            policy: "p".into(),
            row: row.into(),
            data: json!([row]),
            change: change.into(),
            cause: "test".into(),
        };
        s.append_history(&[
            ev(1, "a", "appeared"),
            ev(2, "b", "appeared"),
            ev(3, "a", "cleared"),
            ev(4, "c", "appeared"),
        ])
        .unwrap();
        let q =
            |since, until, limit| HistoryQuery { policy: Some("p".into()), since_ms: since, until_ms: until, limit };
        let rows: Vec<i64> = s.history(&q(None, None, 10)).unwrap().iter().map(|e| e.at_ms).collect();
        assert_eq!(rows, vec![1, 2, 3, 4]);
        let rows: Vec<i64> = s.history(&q(Some(2), Some(4), 10)).unwrap().iter().map(|e| e.at_ms).collect();
        assert_eq!(rows, vec![2, 3]);
        let rows: Vec<i64> = s.history(&q(None, None, 2)).unwrap().iter().map(|e| e.at_ms).collect();
        assert_eq!(rows, vec![3, 4]);
        let mut present = s.present_since("p").unwrap();
        present.sort();
        assert_eq!(present, vec![("b".to_string(), 2), ("c".to_string(), 4)]);
    }
}
