//! Unit names to job indices: a sorted vector, looked up by binary search.
//!
//! Architecture invariant: built once per placement run from jobs already in
//! canonical order; lookups never allocate. A sorted vector rather than a map:
//! one allocation instead of one per node, and prefix ranges for glob matching.

/// Job indices by unit name, sorted by name.
pub(crate) struct NameIndex<'a> {
    sorted: Vec<(&'a str, usize)>,
}

impl<'a> NameIndex<'a> {
    /// Indexes `names` (job index = position). With duplicates, the lowest index wins;
    /// the indices of the others are returned so the caller can drop those jobs.
    pub(crate) fn build(names: impl Iterator<Item = &'a str>) -> (NameIndex<'a>, Vec<usize>) {
        // Sorted by (first 16 bytes as a number, name, index): the number orders like the
        // bytes it holds (big-endian, zero padded), and the name breaks its ties, so this
        // is plain (name, index) order with most compares on a u128 instead of a memcmp.
        // Unstable is exact: no two entries are equal (the indices differ), and equal
        // names come out by index, so the dedup below keeps the lowest.
        let mut keyed: Vec<(u128, &str, usize)> = names
            .enumerate()
            .map(|(i, n)| (prefix_key(n), n, i))
            .collect();
        keyed.sort_unstable();
        let mut sorted: Vec<(&str, usize)> = keyed.into_iter().map(|(_, n, i)| (n, i)).collect();
        let mut duplicates = Vec::new();
        sorted.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                duplicates.push(later.1);
            }
            same
        });
        (NameIndex { sorted }, duplicates)
    }

    /// The job index of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<usize> {
        self.sorted
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|at| self.sorted[at].1)
    }

    /// (name, job index) of every name starting with `prefix`, in name order.
    pub(crate) fn with_prefix<'s>(
        &'s self,
        prefix: &'s str,
    ) -> impl Iterator<Item = (&'a str, usize)> + 's {
        let start = self.sorted.partition_point(|(n, _)| *n < prefix);
        self.sorted[start..]
            .iter()
            .take_while(move |(n, _)| n.starts_with(prefix))
            .copied()
    }

    /// (name, job index) of every job, in name order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'a str, usize)> + '_ {
        self.sorted.iter().copied()
    }
}

/// The first 16 bytes of `name` as a big-endian number, zero padded: a < b as numbers
/// implies name a < name b; equal numbers say nothing (one may be a prefix).
fn prefix_key(name: &str) -> u128 {
    let mut bytes = [0u8; 16];
    let n = name.len().min(16);
    bytes[..n].copy_from_slice(&name.as_bytes()[..n]);
    u128::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::NameIndex;

    #[test]
    fn lookups_prefixes_and_duplicates() {
        let (index, dups) =
            NameIndex::build(["b.service", "a@1.service", "b.service", "a@2.service"].into_iter());
        assert_eq!(dups, vec![2]);
        assert_eq!(index.get("b.service"), Some(0));
        assert_eq!(index.get("a@2.service"), Some(3));
        assert_eq!(index.get("c.service"), None);
        let a: Vec<usize> = index.with_prefix("a@").map(|(_, i)| i).collect();
        assert_eq!(a, vec![1, 3]);
        assert_eq!(index.with_prefix("").count(), 3);
    }
}
