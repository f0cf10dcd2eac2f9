//! What local systemd says, and this member's reports of it in the catalog.
//!
//! Architecture invariant: the catalog holds what this member last said about each
//! unit, under its current boot; a report from an earlier life of this member that
//! would claim otherwise is overruled at once.

use super::{Node, Pending};
use crate::catalog::{self, ReportEntry, ReportVersion, Status, WireEntry};
use crate::states::ActiveState;
use crate::time::Millis;

impl Node {
    /// Local systemd's state of `unit`; `None` when systemd doesn't have it.
    pub fn handle_systemd_report(&mut self, now: Millis, unit: &str, status: Option<Status>) {
        self.handle_systemd_reports(now, [(unit, status)]);
    }

    /// Local systemd's states of several units (one poll of the executor), in order,
    /// as one input: one reconcile and one rumour flush for all of them, so a member
    /// starting 400 units gossips packed reports, not 400 flushes.
    pub fn handle_systemd_reports<'a>(
        &mut self,
        now: Millis,
        reports: impl IntoIterator<Item = (&'a str, Option<Status>)>,
    ) {
        self.now = now.max(self.now);
        for (unit, status) in reports {
            self.apply_systemd_report(unit, status);
        }
        self.after_input();
    }

    fn apply_systemd_report(&mut self, unit: &str, status: Option<Status>) {
        if unit.len() > catalog::MAX_NAME_BYTES {
            return;
        }
        let status = status.map(|mut s| {
            s.active.truncate(catalog::MAX_STATUS_BYTES);
            s.sub.truncate(catalog::MAX_STATUS_BYTES);
            s
        });
        let running = status.as_ref().is_some_and(Status::is_running);
        match self.pending.get(unit) {
            Some(Pending::Start(_))
                if running
                    || status
                        .as_ref()
                        .is_some_and(|s| s.active == ActiveState::Failed) =>
            {
                self.pending.remove(unit);
            }
            Some(Pending::Stop(_)) if !running => {
                self.pending.remove(unit);
            }
            _ => {}
        }
        let before = self.local.get(unit).cloned();
        match &status {
            Some(s) => self.local.insert(unit.to_string(), s.clone()),
            None => self.local.remove(unit),
        };
        let known = self
            .catalog
            .replica()
            .reports
            .get(&(self.cfg.machine_id.clone(), unit.to_string()));
        let same_as_reported =
            known.is_some_and(|r| r.status == status) || (known.is_none() && status.is_none());
        if before != status || !same_as_reported {
            self.write_report(unit, status);
        }
        self.dirty = true;
    }

    /// A report about this member that beats the one it holds was written by an earlier
    /// life of it (a boot number reused after a crash before the last snapshot, say).
    /// It may claim a unit that systemd here no longer runs, and it would win every merge
    /// from now on; so move to a boot above it and say again what really runs here.
    pub(super) fn overrule_report_from_past_life(&mut self, entry: &WireEntry) {
        let WireEntry::Report {
            member,
            unit,
            entry,
        } = entry
        else {
            return;
        };
        if *member != self.cfg.machine_id {
            return;
        }
        self.boot = self.boot.max(entry.version.boot.saturating_add(1));
        self.restamp_reports();
        let truth = self.local.get(unit).cloned();
        self.write_report(unit, truth);
    }

    /// Publishes this member's reports again under its current boot: the others count
    /// only reports from a member's current boot, so reports from before a rejoin
    /// would otherwise stop counting while the units still run here.
    pub(super) fn restamp_reports(&mut self) {
        let me = self.cfg.machine_id.clone();
        let own: Vec<(String, Option<Status>)> = self
            .catalog
            .replica()
            .reports
            .iter()
            .filter(|((m, _), r)| *m == me && r.version.boot < self.boot)
            .map(|((_, unit), r)| (unit.clone(), r.status.clone()))
            .collect();
        for (unit, status) in own {
            self.write_report(&unit, status);
        }
    }

    fn write_report(&mut self, unit: &str, status: Option<Status>) {
        self.report_counter += 1;
        let entry = ReportEntry {
            version: ReportVersion {
                boot: self.boot,
                counter: self.report_counter,
            },
            status,
        };
        let w = WireEntry::Report {
            member: self.cfg.machine_id.clone(),
            unit: unit.to_string(),
            entry,
        };
        self.sync
            .write(self.now, w, &mut self.catalog, &mut self.out);
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use crate::catalog::{Msg, ReportEntry, ReportVersion, WireEntry};
    use crate::node::testing::{self, running};
    use crate::node::Node;
    use crate::time::Millis;

    #[test]
    fn a_report_from_an_earlier_life_of_this_member_is_overruled_with_what_runs_here() {
        let mut n = Node::new(testing::config("aaaaaaaaaaaaaaaa", 1, &[], 7), Millis(0));
        n.handle_systemd_report(Millis(10), "w.service", None);
        // Another member gossips a report about us, written by an earlier life that reused
        // our boot number: it claims w.service runs here, with a higher version.
        let stale = WireEntry::Report {
            member: "aaaaaaaaaaaaaaaa".into(),
            unit: "w.service".into(),
            entry: ReportEntry {
                version: ReportVersion {
                    boot: n.boot,
                    counter: 1_000,
                },
                status: Some(running()),
            },
        };
        let before = n.boot;
        n.handle_catalog(
            SocketAddr::from(([10, 0, 0, 2], 4700)),
            Msg::Entries(vec![stale]),
        );
        let key = ("aaaaaaaaaaaaaaaa".to_string(), "w.service".to_string());
        let now = &n.catalog.replica().reports[&key];
        assert!(n.boot > before, "moved to a boot above the earlier life's");
        assert_eq!(now.version.boot, n.boot);
        assert_eq!(
            now.status, None,
            "says again that w.service does not run here"
        );
    }
}
