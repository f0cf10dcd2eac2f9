//! Reading `systemctl show -p Id,LoadState,ActiveState,SubState UNIT...` (pure).
//!
//! Without `--value`: with it, systemd prints values in its own property
//! order, not the order asked, so `Key=Value` lines are the safe form.

use super::Observed;
use std::collections::BTreeMap;

/// The properties asked for, as one `--property=` argument.
pub const PROPERTIES: &str = "Id,LoadState,ActiveState,SubState";

/// Parses the output for `units` (asked in this order). systemctl prints
/// one block of `Key=Value` lines per unit, in argument order, blocks
/// separated by an empty line.
pub fn parse_show(out: &str, units: &[&str]) -> Result<BTreeMap<String, Observed>, String> {
    let mut blocks: Vec<BTreeMap<&str, &str>> = Vec::new();
    let mut current = BTreeMap::new();
    for line in out.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(std::mem::take(&mut current));
            }
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("line without '=': {line:?}"))?;
        current.insert(k, v);
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    if blocks.len() != units.len() {
        return Err(format!(
            "{} units asked, {} answered",
            units.len(),
            blocks.len()
        ));
    }
    let mut states = BTreeMap::new();
    for (unit, block) in units.iter().zip(blocks) {
        let get = |k: &str| {
            block
                .get(k)
                .copied()
                .ok_or_else(|| format!("no {k} for {unit}"))
        };
        // Matched by position, not by `Id`: an alias answers with its
        // target's Id, and argument order is systemctl's contract.
        states.insert(
            unit.to_string(),
            Observed::new(get("LoadState")?, get("ActiveState")?, get("SubState")?),
        );
    }
    Ok(states)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_map_to_units_in_the_order_asked() {
        let out = "Id=web.service\nLoadState=loaded\nActiveState=active\nSubState=running\n\n\
                   Id=gone.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\n";
        let s = parse_show(out, &["web.service", "gone.service"]).unwrap();
        assert_eq!(
            s["web.service"],
            Observed::new("loaded", "active", "running")
        );
        assert_eq!(
            s["gone.service"],
            Observed::new("not-found", "inactive", "dead")
        );
    }

    #[test]
    fn properties_in_any_order_and_extra_ones_are_fine() {
        let out = "SubState=exited\nActiveState=active\nFoo=bar\nLoadState=loaded\nId=a.service\n";
        let s = parse_show(out, &["a.service"]).unwrap();
        assert_eq!(s["a.service"], Observed::new("loaded", "active", "exited"));
    }

    #[test]
    fn a_missing_block_or_property_is_an_error_not_a_guess() {
        let one = "Id=a.service\nLoadState=loaded\nActiveState=active\nSubState=running\n";
        assert!(parse_show(one, &["a.service", "b.service"]).is_err());
        assert!(parse_show("Id=a.service\nLoadState=loaded\n", &["a.service"]).is_err());
        assert!(parse_show("garbage\n", &["a.service"]).is_err());
    }

    #[test]
    fn no_units_no_output() {
        assert!(parse_show("", &[]).unwrap().is_empty());
    }
}
