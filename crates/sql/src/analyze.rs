//! ANALYZE: counts a table's rows and estimates the distinct values and NULLs of each
//! column, for the planner's row estimates (see `plan::estimate_rows`).
//!
//! ```text
//!   rows, by key, in batches ─► count rows, NULLs per column (exact)
//!                            └► reservoir sample of rows ─► distinct values per column
//! ```
//!
//! Every row is read (in batches of [`ANALYZE_BATCH_ROWS`], so memory stays bounded), but
//! only a sample of [`ANALYZE_SAMPLE_ROWS`] rows is kept to count distinct values, as
//! PostgreSQL does. The sample is a reservoir drawn with a generator seeded by the table id,
//! so ANALYZE of the same rows always finds the same statistics. When the table is larger
//! than the sample, the distinct count is the Haas–Stokes Duj1 estimate PostgreSQL uses.
//!
//! The statistics are written through the transaction (key `C s <table id>`, see
//! `catalog::encode_stats`): they commit or roll back with it, like any catalog data.

use crate::catalog::{keys, ColumnStats, Table, TableStats};
use crate::error::Result;
use crate::eval::{self, GroupKey};
use std::collections::HashMap;
use std::ops::Bound;
use txn::Txn;

/// Rows ANALYZE reads from the store at a time.
pub const ANALYZE_BATCH_ROWS: usize = 1024;

/// Rows ANALYZE keeps to count distinct values (PostgreSQL samples 300 × its default
/// statistics target of 100).
pub const ANALYZE_SAMPLE_ROWS: usize = 30_000;

/// Reads every row of `table` and returns its statistics.
pub fn table_stats(txn: &mut Txn, table: &Table) -> Result<TableStats> {
    let width = table.columns.len();
    let prefix = keys::rows(table.id);
    let end = storage::keycode::prefix_end(&prefix).expect("row prefix has an end");
    let mut start = Bound::Included(prefix);
    let mut rows: u64 = 0;
    let mut nulls = vec![0u64; width];
    let mut sample: Vec<Vec<GroupKey>> = Vec::new();
    let mut rng = SplitMix(u64::from(table.id));
    loop {
        let batch = txn.scan(start.clone(), Bound::Excluded(end.clone()), false, ANALYZE_BATCH_ROWS)?;
        let Some((last, _)) = batch.last() else { break };
        start = Bound::Excluded(last.clone());
        let full = batch.len() == ANALYZE_BATCH_ROWS;
        for (_, bytes) in batch {
            let row = eval::decode_row(&bytes)?;
            rows += 1;
            for (n, v) in nulls.iter_mut().zip(&row) {
                *n += u64::from(v.is_null());
            }
            let keys: Vec<GroupKey> = (0..width).map(|c| row.get(c).map_or(GroupKey::Null, eval::group_key)).collect();
            // Reservoir sampling (Algorithm R): row i replaces a kept one with chance n/i.
            if sample.len() < ANALYZE_SAMPLE_ROWS {
                sample.push(keys);
            } else {
                let slot = rng.below(rows) as usize;
                if slot < ANALYZE_SAMPLE_ROWS {
                    sample[slot] = keys;
                }
            }
        }
        if !full {
            break;
        }
    }
    let columns = (0..width)
        .map(|c| {
            let mut counts: HashMap<&GroupKey, u64> = HashMap::new();
            for row in &sample {
                if row[c] != GroupKey::Null {
                    *counts.entry(&row[c]).or_default() += 1;
                }
            }
            let seen = sample.iter().filter(|r| r[c] != GroupKey::Null).count() as u64;
            let total = rows - nulls[c];
            ColumnStats { distinct: estimate_distinct(&counts, seen, total), nulls: nulls[c] }
        })
        .collect();
    Ok(TableStats { rows, columns })
}

/// The distinct values among `total` non-NULL values, from a sample of `seen` of them with
/// these value counts: exact when the sample is everything, else Duj1
/// `n·d / (n − f1 + f1·n/N)` (d distinct in the sample, f1 of them seen once), and every
/// value distinct when the sample's all are.
fn estimate_distinct(counts: &HashMap<&GroupKey, u64>, seen: u64, total: u64) -> u64 {
    let d = counts.len() as u64;
    if seen >= total || seen == 0 {
        return d;
    }
    let f1 = counts.values().filter(|&&n| n == 1).count() as u64;
    if f1 == seen {
        return total;
    }
    let (n, big_n) = (seen as f64, total as f64);
    let f1 = f1 as f64;
    let estimate = n * d as f64 / (n - f1 + f1 * n / big_n);
    (estimate.round() as u64).clamp(d, total)
}

/// A small deterministic generator (SplitMix64) for the sample.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(keys: &[GroupKey], per: &[u64]) -> HashMap<&'static GroupKey, u64> {
        let leaked: &'static [GroupKey] = Box::leak(keys.to_vec().into_boxed_slice());
        leaked.iter().zip(per).map(|(k, &n)| (k, n)).collect()
    }

    #[test]
    fn distinct_estimates() {
        let keys: Vec<GroupKey> = (0..4).map(GroupKey::Int).collect();
        // The whole column seen: exact.
        assert_eq!(estimate_distinct(&counts(&keys, &[5, 5, 5, 5]), 20, 20), 4);
        // A sample of repeated values: few distinct values in the table as well.
        assert_eq!(estimate_distinct(&counts(&keys, &[5, 5, 5, 5]), 20, 1000), 4);
        // Every sampled value distinct: the column is taken to be unique.
        assert_eq!(estimate_distinct(&counts(&keys, &[1, 1, 1, 1]), 4, 1000), 1000);
        // Some seen once: between the sample's count and the table's rows.
        let d = estimate_distinct(&counts(&keys, &[1, 1, 4, 4]), 10, 1000);
        assert!(d > 4 && d < 1000, "{d}");
    }
}
