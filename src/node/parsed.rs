//! Parse once: the `[X-Fleet]` options of each placed unit, kept between reconciles.
//!
//! Every reconcile places every unit, and parsing 10,000 unit texts each time costs
//! more than placing them. A text is parsed again only when the unit's text changes
//! (its digest), and the key includes the unit's name because `%n`/`%i` in the
//! options expand to it.
//!
//! Architecture invariant: the cache is invisible: a reconcile gives the same
//! placement with it as without it. Bounded: it keeps only the units the last
//! reconcile parsed (at most the catalog's [`crate::catalog::MAX_UNITS`]).

use std::collections::BTreeMap;

use super::ParseFn;
use crate::catalog::Digest;
use crate::unit::FleetOptions;

/// One unit's options (or the parser's error) and the digest of the text they came from.
struct Parsed {
    digest: Digest,
    result: Result<FleetOptions, String>,
}

/// The options of the units the last reconcile placed, by unit name.
#[derive(Default)]
pub(super) struct ParseCache {
    last: BTreeMap<String, Parsed>,
    /// Filled during a reconcile; becomes `last` when it ends.
    this: BTreeMap<String, Parsed>,
}

impl ParseCache {
    /// The options of `name` with text `text` (whose digest is `digest`), parsed only
    /// when this name was not parsed with this text last time.
    pub(super) fn get(
        &mut self,
        parse: ParseFn,
        name: &str,
        digest: &Digest,
        text: &str,
    ) -> &Result<FleetOptions, String> {
        let entry = match self.last.remove_entry(name) {
            Some((key, p)) if p.digest == *digest => (key, p),
            _ => {
                let p = Parsed {
                    digest: *digest,
                    result: parse(name, text),
                };
                (name.to_string(), p)
            }
        };
        let slot = self.this.entry(entry.0).or_insert(entry.1);
        &slot.result
    }

    /// Ends a reconcile: units not asked about this time (gone from the catalog, not
    /// placed, text missing) are forgotten.
    pub(super) fn finish(&mut self) {
        self.last = std::mem::take(&mut self.this);
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.last.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{self, text_digest};
    use crate::node::testing::{self, start};
    use crate::node::{Command, Node};
    use crate::time::Millis;
    use std::cell::Cell;

    thread_local! {
        static PARSES: Cell<usize> = const { Cell::new(0) };
    }

    fn counting(name: &str, text: &str) -> Result<FleetOptions, String> {
        PARSES.with(|p| p.set(p.get() + 1));
        super::super::parse_fleet_options(name, text)
    }

    fn parses() -> usize {
        PARSES.with(Cell::get)
    }

    #[test]
    fn a_text_is_parsed_again_only_when_it_changes_and_forgotten_units_leave() {
        let mut c = ParseCache::default();
        let (a, b) = (
            "[X-Fleet]\nGlobal=true\n",
            "[X-Fleet]\nConflicts=%p@*.service\n",
        );
        let (da, db) = (text_digest(a), text_digest(b));
        let p0 = parses();
        assert!(c
            .get(counting, "x.service", &da, a)
            .as_ref()
            .is_ok_and(|o| o.global));
        c.get(counting, "web@1.service", &db, b);
        c.finish();
        assert_eq!(parses() - p0, 2);
        c.get(counting, "x.service", &da, a);
        c.get(counting, "web@1.service", &db, b);
        c.finish();
        assert_eq!(parses() - p0, 2, "unchanged: nothing parsed");
        // The same text under another name is parsed for that name (%p differs).
        let other = c.get(counting, "db@1.service", &db, b).clone();
        assert_eq!(parses() - p0, 3);
        assert!(other.is_ok_and(|o| o.conflicts[0].as_str() == "db@*.service"));
        // A changed text is parsed again.
        c.get(counting, "x.service", &db, b);
        assert_eq!(parses() - p0, 4);
        c.finish();
        assert_eq!(c.len(), 2, "web@1 was not asked about: forgotten");
    }

    #[test]
    fn a_reconcile_of_ten_thousand_unchanged_units_parses_no_text() {
        let mut cfg = testing::config("aaaaaaaaaaaaaaaa", 1, &[], 9);
        cfg.parse = counting;
        let mut n = Node::new(cfg, Millis(0));
        for u in 0..catalog::MAX_UNITS {
            let name = format!("u{u}@{}.service", u % 10);
            let text = format!("[X-Fleet]\nConflicts=u{u}@*.service\n");
            n.handle_command(
                Millis(10),
                Command::Submit {
                    name: name.clone(),
                    text,
                },
            )
            .expect("submit");
            n.handle_command(Millis(10), Command::Start { name })
                .expect("start");
        }
        let p0 = parses();
        n.handle_timeout(Millis(100));
        assert_eq!(parses() - p0, catalog::MAX_UNITS, "each text parsed once");
        assert_eq!(n.placement().units.len(), catalog::MAX_UNITS);
        let placed = n.placement().clone();
        let p1 = parses();
        // A report makes the member reconcile everything again.
        n.handle_systemd_report(Millis(200), "other.service", None);
        n.handle_timeout(Millis(300));
        assert_eq!(parses() - p1, 0, "nothing changed: nothing parsed");
        assert_eq!(n.placement(), &placed);
        // A unit that leaves placement is forgotten, and parsed again when it comes back.
        let name = || "u1@1.service".to_string();
        n.handle_command(Millis(400), Command::Unload { name: name() })
            .expect("unload");
        n.handle_timeout(Millis(500));
        assert_eq!(n.parsed.len(), catalog::MAX_UNITS - 1);
        n.handle_command(Millis(600), start(&name()))
            .expect("start");
        n.handle_timeout(Millis(700));
        assert_eq!(parses() - p1, 1);
        assert_eq!(n.parsed.len(), catalog::MAX_UNITS);
    }
}
