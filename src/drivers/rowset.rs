//! A counted set of rows per table, for drivers whose objects may produce the same row
//! (two pods with the same image in an `images` table): a row is in the engine while at
//! least one object produces it. Changes are batched, and a batch yields only its net
//! effect per row, so a row removed and re-added in one batch changes nothing.

use super::TableChange;
use congress_engine::Value;
use hashbrown::HashMap;
use std::collections::BTreeMap;

type Key = (String, Vec<Value>);

/// Rows with the number of objects producing each, and the batch being built.
#[derive(Debug, Default)]
pub struct RowSet {
    counts: HashMap<Key, u32>,
    /// Rows touched in the current batch, with whether each was present before it.
    touched: HashMap<Key, bool>,
    rows_per_table: BTreeMap<String, u64>,
}

impl RowSet {
    pub fn new(tables: impl IntoIterator<Item = String>) -> RowSet {
        RowSet { rows_per_table: tables.into_iter().map(|t| (t, 0)).collect(), ..RowSet::default() }
    }

    /// One more object produces `row`.
    pub fn add(&mut self, table: &str, row: Vec<Value>) {
        let key = (table.to_string(), row);
        let count = self.counts.get(&key).copied().unwrap_or(0);
        self.touched.entry(key.clone()).or_insert(count > 0);
        self.counts.insert(key, count + 1);
    }

    /// One fewer object produces `row` (a row never added is ignored).
    pub fn remove(&mut self, table: &str, row: Vec<Value>) {
        let key = (table.to_string(), row);
        let Some(count) = self.counts.get(&key).copied() else { return };
        self.touched.entry(key.clone()).or_insert(true);
        if count <= 1 {
            self.counts.remove(&key);
        } else {
            self.counts.insert(key, count - 1);
        }
    }

    /// Whether the current batch has changed anything yet.
    pub fn is_dirty(&self) -> bool {
        !self.touched.is_empty()
    }

    /// End the batch: the rows that appeared and disappeared, per table.
    pub fn take_changes(&mut self) -> Vec<TableChange> {
        let mut by_table: BTreeMap<String, TableChange> = BTreeMap::new();
        for ((table, row), before) in self.touched.drain() {
            let after = self.counts.contains_key(&(table.clone(), row.clone()));
            if before == after {
                continue;
            }
            let n = self.rows_per_table.entry(table.clone()).or_insert(0);
            let change = by_table.entry(table.clone()).or_insert_with(|| TableChange { table, ..Default::default() });
            if after {
                *n += 1;
                change.added.push(row);
            } else {
                *n = n.saturating_sub(1);
                change.removed.push(row);
            }
        }
        by_table.into_values().collect()
    }

    /// Rows per table as of the last [`RowSet::take_changes`].
    pub fn rows_per_table(&self) -> &BTreeMap<String, u64> {
        &self.rows_per_table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Vec<Value> {
        vec![Value::str(s)]
    }

    #[test]
    fn a_shared_row_stays_while_one_object_produces_it() {
        let mut set = RowSet::new(["images".to_string()]);
        set.add("images", r("nginx"));
        set.add("images", r("nginx"));
        let c = set.take_changes();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].added, vec![r("nginx")]);
        set.remove("images", r("nginx"));
        assert!(set.take_changes().is_empty());
        set.remove("images", r("nginx"));
        assert_eq!(set.take_changes()[0].removed, vec![r("nginx")]);
        assert_eq!(set.rows_per_table()["images"], 0);
    }

    #[test]
    fn a_batch_yields_only_its_net_effect() {
        let mut set = RowSet::default();
        set.add("t", r("a"));
        set.remove("t", r("a"));
        assert!(set.is_dirty());
        assert!(set.take_changes().is_empty());
        set.add("t", r("b"));
        set.take_changes();
        set.remove("t", r("b"));
        set.add("t", r("b"));
        assert!(set.take_changes().is_empty());
        set.remove("t", r("never"));
        assert!(set.take_changes().is_empty());
        assert_eq!(set.rows_per_table()["t"], 1);
    }
}
