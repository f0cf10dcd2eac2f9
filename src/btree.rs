//! Building B-tree maps and sets without `collect()`, for the binary's size.
//!
//! `collect()` into a `BTreeMap` or `BTreeSet` gathers a `Vec`, sorts it and bulk-builds
//! the tree: a whole stable sort (about 4 KiB of code) for every element type and
//! iterator, while one insert per element reuses the map's `insert`, which is there
//! anyway. Same contents (a repeated key keeps the last value; keys that compare
//! equal here are equal), same O(n log n).

use std::collections::{BTreeMap, BTreeSet};

/// `iter.collect::<BTreeMap<_, _>>()`, by inserting.
pub fn map<K: Ord, V>(iter: impl IntoIterator<Item = (K, V)>) -> BTreeMap<K, V> {
    let mut m = BTreeMap::new();
    m.extend(iter);
    m
}

/// `iter.collect::<BTreeSet<_>>()`, by inserting.
pub fn set<T: Ord>(iter: impl IntoIterator<Item = T>) -> BTreeSet<T> {
    let mut s = BTreeSet::new();
    s.extend(iter);
    s
}
