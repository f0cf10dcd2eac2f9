//! One machine id at several addresses (cloned images): the newcomer refuses to run.

use std::net::SocketAddr;

use super::{Action, Node, NodeEvent, DUPLICATE_GRACE_MS};

impl Node {
    /// Reports every machine id claimed from several addresses once; if it is ours
    /// and we joined within [`DUPLICATE_GRACE_MS`], we are the copy and refuse.
    pub(super) fn check_duplicates(&mut self) {
        for (machine, addrs) in self.membership.duplicate_machine_ids() {
            if machine == self.cfg.machine_id && self.refused.is_none() {
                let newcomer = self
                    .active_since
                    .is_none_or(|t| self.now.since(t) < DUPLICATE_GRACE_MS);
                if newcomer {
                    self.refuse(&addrs, &machine);
                }
            }
            if self
                .reported_duplicates
                .insert((machine.clone(), addrs.clone()))
            {
                self.out
                    .emit(NodeEvent::DuplicateMachineId { machine, addrs });
            }
        }
    }

    /// Our machine id is used at another address and we are the newcomer: leave, and
    /// stop what runs here.
    fn refuse(&mut self, addrs: &[SocketAddr], machine: &str) {
        let reason = format!(
            "machine id {machine} is already used by a member at {}; cloned image? give this host its own /etc/machine-id",
            addrs.iter().filter(|a| **a != self.cfg.addr).map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
        );
        self.refused = Some(reason.clone());
        self.membership.leave(self.now);
        self.out.emit(NodeEvent::Refused { reason });
        for unit in self
            .local
            .iter()
            .filter(|(_, s)| s.is_running())
            .map(|(u, _)| u.clone())
            .collect::<Vec<_>>()
        {
            self.out.act(Action::Stop { unit });
        }
    }
}
