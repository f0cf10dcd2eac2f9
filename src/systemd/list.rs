//! Reading `systemctl list-units --all --plain --no-legend --full` (pure).
//!
//! One line per unit systemd holds in memory: `UNIT LOAD ACTIVE SUB
//! DESCRIPTION...`, columns separated by spaces. This form is stable from
//! systemd v2xx on (CoreOS-era v232 included). `--plain` drops the status
//! bullet, but a bullet is skipped anyway should some version print one.

use super::Observed;
use std::collections::BTreeMap;

/// The arguments that make `systemctl` print the lines [`parse_list_units`] reads.
pub const LIST_ARGS: [&str; 5] = ["list-units", "--all", "--plain", "--no-legend", "--full"];

/// The units listed and their states. A line that does not read as a unit
/// (too few columns, or no unit name first) is skipped, not an error: one
/// odd line must not cost the others their state. The caller treats a unit
/// it does not find as "not in memory" and asks about it precisely.
pub fn parse_list_units(out: &str) -> BTreeMap<String, Observed> {
    let mut units = BTreeMap::new();
    for line in out.lines() {
        let mut words = line.split_whitespace().peekable();
        // A status bullet (`●`, `○`, `*`) before the name on some versions.
        if words.peek().is_some_and(|w| !w.contains('.')) {
            words.next();
        }
        let (Some(unit), Some(load), Some(active), Some(sub)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        if !super::is_unit_name(unit) {
            continue;
        }
        units.insert(unit.to_string(), Observed::new(load, active, sub));
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::states::{ActiveState, LoadState};

    #[test]
    fn each_line_gives_a_units_three_states_and_the_description_is_ignored() {
        let out = "bad.service                loaded    failed   failed    bad.service\n\
                   home.mount                 not-found inactive dead      home.mount\n\
                   m401.service               loaded    active   running   sleeps for ever\n";
        let u = parse_list_units(out);
        assert_eq!(u.len(), 3);
        assert_eq!(u["bad.service"].active_state, ActiveState::Failed);
        assert_eq!(u["home.mount"].load_state, LoadState::NotFound);
        assert_eq!(
            u["m401.service"],
            Observed::new("loaded", "active", "running")
        );
    }

    #[test]
    fn a_bullet_is_skipped_and_odd_lines_cost_only_themselves() {
        let out = "● bad.service loaded failed failed bad\n\
                   \n\
                   garbage\n\
                   run-x\\x2dy.mount loaded active mounted /run/x-y\n\
                   web.service loaded active running web\n";
        let u = parse_list_units(out);
        assert_eq!(u.keys().collect::<Vec<_>>(), ["bad.service", "web.service"]);
        assert!(parse_list_units("").is_empty());
    }
}
