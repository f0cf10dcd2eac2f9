//! Stable sorting through one shared instance of the standard sort, for the binary's size.
//!
//! Every `sort`/`sort_by` on a new element type or comparison compiles the whole
//! standard sort again (about 3.5 KiB each). [`sort_by`] sorts indices with a single
//! instance behind a `dyn` comparison, then moves the elements into that order. Stable,
//! like `slice::sort_by`; O(n log n). The hot placement loop keeps `sort_unstable` on
//! `usize`, which is one instance too.

use std::cmp::Ordering;

/// `v.sort_by(cmp)`.
pub fn sort_by<T>(v: &mut Vec<T>, mut cmp: impl FnMut(&T, &T) -> Ordering) {
    if v.len() < 2 {
        return;
    }
    let mut order: Vec<usize> = (0..v.len()).collect();
    sort_indices(&mut order, &mut |a, b| cmp(&v[a], &v[b]));
    let mut slots: Vec<Option<T>> = v.drain(..).map(Some).collect();
    v.extend(
        order
            .iter()
            .filter_map(|&i| slots.get_mut(i).and_then(Option::take)),
    );
}

/// `v.sort()`.
pub fn sort<T: Ord>(v: &mut Vec<T>) {
    sort_by(v, T::cmp);
}

#[inline(never)]
fn sort_indices(order: &mut [usize], cmp: &mut dyn FnMut(usize, usize) -> Ordering) {
    order.sort_by(|&a, &b| cmp(a, b));
}

#[cfg(test)]
mod tests {
    #[test]
    fn sorts_stably() {
        let mut v = vec![(3, 'a'), (1, 'b'), (3, 'c'), (2, 'd'), (1, 'e')];
        super::sort_by(&mut v, |a, b| a.0.cmp(&b.0));
        assert_eq!(v, [(1, 'b'), (1, 'e'), (2, 'd'), (3, 'a'), (3, 'c')]);
        let mut w: Vec<String> = ["b", "a", "c", "a"].map(String::from).to_vec();
        super::sort(&mut w);
        assert_eq!(w, ["a", "a", "b", "c"]);
        let mut e: Vec<u8> = Vec::new();
        super::sort(&mut e);
        assert!(e.is_empty());
    }
}
