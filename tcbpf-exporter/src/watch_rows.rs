//! What `map watch` keeps between and during refreshes, bounded by what it
//! shows: the last read of a map as flat arrays (every key's bytes and
//! values, sorted by key, no allocation per entry: the rates need them) and
//! the rows shown, kept in a heap of at most `top N` while the map streams
//! by (a key is decoded and rendered only when its row can be shown). A
//! watch of a million entries with `top 10` holds the raw keys and values
//! and ten rows, not a million decoded rows. Pure: no I/O.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One map's entries as read: keys and values in flat arrays, looked up by
/// binary search once sorted.
pub struct Snapshot {
    key_size: usize,
    fields: usize,
    keys: Vec<u8>,
    values: Vec<i128>,
    /// Entry indexes in key order (after [`Snapshot::sorted`]).
    order: Vec<u32>,
}

impl Snapshot {
    /// No entries yet, of keys of `key_size` bytes and `fields` values.
    pub fn new(key_size: usize, fields: usize) -> Snapshot {
        Snapshot {
            key_size,
            fields,
            keys: Vec::new(),
            values: Vec::new(),
            order: Vec::new(),
        }
    }

    /// Adds an entry (a key of another size is a caller's bug: ignored).
    pub fn push(&mut self, key: &[u8], values: &[i128]) {
        if key.len() != self.key_size || values.len() != self.fields {
            return;
        }
        self.keys.extend_from_slice(key);
        self.values.extend_from_slice(values);
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.values.len().checked_div(self.fields).unwrap_or(0)
    }

    /// The key of entry `i`.
    pub fn key(&self, i: usize) -> &[u8] {
        &self.keys[i * self.key_size..(i + 1) * self.key_size]
    }

    /// The values of entry `i`.
    pub fn values(&self, i: usize) -> &[i128] {
        &self.values[i * self.fields..(i + 1) * self.fields]
    }

    /// Ready for [`Snapshot::find`].
    pub fn sorted(mut self) -> Snapshot {
        let mut order: Vec<u32> = (0..self.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| self.key(a as usize).cmp(self.key(b as usize)));
        self.order = order;
        self.keys.shrink_to_fit();
        self.values.shrink_to_fit();
        self
    }

    /// The entry holding `key` (after [`Snapshot::sorted`]).
    pub fn find(&self, key: &[u8]) -> Option<usize> {
        self.order
            .binary_search_by(|&i| self.key(i as usize).cmp(key))
            .ok()
            .map(|at| self.order[at] as usize)
    }
}

/// A row's place in the order shown: by its sort rate (or its largest
/// rate), largest first; rows without a rate after those.
pub fn score(rates: &[Option<f64>], column: Option<usize>) -> f64 {
    match column {
        Some(c) => rates.get(c).copied().flatten().unwrap_or(f64::NEG_INFINITY),
        None => rates
            .iter()
            .flatten()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max),
    }
}

/// A row in the heap: ordered so that the worst row shown is the greatest.
struct Ranked<T> {
    score: f64,
    key: Vec<(String, String)>,
    row: T,
}

/// `a` against `b` in the order shown: `Less` when `a` comes first (larger
/// score, then smaller key text).
fn shown_order<A, B>(a: &Ranked<A>, b: &Ranked<B>) -> Ordering {
    b.score.total_cmp(&a.score).then_with(|| a.key.cmp(&b.key))
}

impl<T> PartialEq for Ranked<T> {
    fn eq(&self, other: &Self) -> bool {
        shown_order(self, other) == Ordering::Equal
    }
}
impl<T> Eq for Ranked<T> {}
impl<T> PartialOrd for Ranked<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Ranked<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        shown_order(self, other)
    }
}

/// The rows to show: the best `limit` (all without one) of those offered,
/// by score then key text.
pub struct TopRows<T> {
    limit: Option<usize>,
    heap: BinaryHeap<Ranked<T>>,
}

impl<T> TopRows<T> {
    /// Keeps at most `limit` rows.
    pub fn new(limit: Option<usize>) -> TopRows<T> {
        TopRows {
            limit,
            heap: BinaryHeap::new(),
        }
    }

    /// Offers a row of `score`; `key` renders its key text and `row` makes
    /// the row, each called only when the row may be shown.
    pub fn offer(
        &mut self,
        score: f64,
        key: impl FnOnce() -> Vec<(String, String)>,
        row: impl FnOnce(&[(String, String)]) -> T,
    ) {
        if self.limit == Some(0) {
            return;
        }
        let full = self.limit.is_some_and(|l| self.heap.len() >= l);
        if full && self.heap.peek().is_some_and(|w| score < w.score) {
            return;
        }
        let probe = Ranked {
            score,
            key: key(),
            row: (),
        };
        if full
            && self
                .heap
                .peek()
                .is_some_and(|w| shown_order(&probe, w) != Ordering::Less)
        {
            return;
        }
        let row = row(&probe.key);
        self.heap.push(Ranked {
            score,
            key: probe.key,
            row,
        });
        if full {
            self.heap.pop();
        }
    }

    /// The rows kept, best first.
    pub fn into_sorted(self) -> Vec<T> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.row)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Vec<(String, String)> {
        vec![("key".into(), k.into())]
    }

    #[test]
    fn snapshot_finds_keys_after_sorting() {
        let mut s = Snapshot::new(2, 1);
        for (k, v) in [([9u8, 0], 90), ([1, 0], 10), ([5, 5], 55)] {
            s.push(&k, &[v]);
        }
        let s = s.sorted();
        assert_eq!(s.len(), 3);
        assert_eq!(s.find(&[5, 5]).map(|i| s.values(i)[0]), Some(55));
        assert_eq!(s.find(&[1, 0]).map(|i| s.values(i)[0]), Some(10));
        assert_eq!(s.find(&[2, 0]), None);
    }

    #[test]
    fn top_rows_keep_the_best_n_in_order_and_render_only_candidates() {
        let mut top = TopRows::new(Some(3));
        let mut rendered = 0;
        let offers = [
            ("a", 1.0),
            ("b", 9.0),
            ("c", f64::NEG_INFINITY),
            ("d", 5.0),
            ("e", 9.0),
            ("f", 0.5),
            ("g", 0.7),
            ("a0", 1.0),
        ];
        for (k, sc) in offers {
            top.offer(
                sc,
                || {
                    rendered += 1;
                    key(k)
                },
                |key| key[0].1.clone(),
            );
        }
        assert_eq!(top.into_sorted(), ["b", "e", "d"]);
        // f and g score below the worst kept (a, then d): never rendered.
        assert!(rendered < offers.len(), "{rendered}");
        // Ties go by key text, as the full sort does.
        let mut top = TopRows::new(Some(2));
        for k in ["z", "m", "a", "q"] {
            top.offer(0.0, || key(k), |key| key[0].1.clone());
        }
        assert_eq!(top.into_sorted(), ["a", "m"]);
        let mut all = TopRows::new(None);
        for (k, sc) in [("x", 1.0), ("y", 2.0)] {
            all.offer(sc, || key(k), |key| key[0].1.clone());
        }
        assert_eq!(all.into_sorted(), ["y", "x"]);
    }
}
