//! The hosts' network: one namespace per host, a bridge in a switch namespace,
//! and nftables rules at the bridge for partitions and loss.
//!
//! Faults are applied at the switch, never inside a host, so the software
//! under test cannot see or undo them. The kernel here has no netem: loss is
//! nftables `numgen random`, and delay would need a user-space relay.

use super::run::{cmd, run, run_with_input, Result};

/// The bridge table and chain that hold every fault rule.
const TABLE: &str = "shoal";
const CHAIN: &str = "faults";

/// The address of host `i` (1..=250) on the test network.
pub fn addr(i: u32) -> String {
    format!("10.77.0.{i}")
}

/// Network namespaces that exist now.
pub fn namespaces() -> Result<Vec<String>> {
    Ok(run(&mut cmd("ip", &["netns", "list"]))?
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect())
}

fn ip_in(ns: &str, args: &[&str]) -> Result<String> {
    let mut c = cmd("ip", &["-n", ns]);
    c.args(args);
    run(&mut c)
}

fn nft(sw: &str, args: &[&str]) -> Result<String> {
    let mut c = cmd("ip", &["netns", "exec", sw, "nft"]);
    c.args(args);
    run(&mut c)
}

/// Creates the switch namespace `sw` with bridge `br0` and an empty fault
/// chain (a no-op when it exists).
pub fn ensure_switch(sw: &str) -> Result<()> {
    if namespaces()?.iter().any(|n| n == sw) {
        return Ok(());
    }
    run(&mut cmd("ip", &["netns", "add", sw]))?;
    ip_in(sw, &["link", "set", "lo", "up"])?;
    ip_in(sw, &["link", "add", "br0", "type", "bridge"])?;
    ip_in(sw, &["link", "set", "br0", "up"])?;
    let rules = format!(
        "table bridge {TABLE} {{\n  chain {CHAIN} {{ type filter hook forward priority 0; policy accept; }}\n}}\n"
    );
    let mut c = cmd("ip", &["netns", "exec", sw, "nft", "-f", "-"]);
    run_with_input(&mut c, Some(&rules))?;
    Ok(())
}

/// Creates host `i`'s namespace `ns` with `eth0` = 10.77.0.i/24, wired to
/// port `p<i>` of the switch (a no-op when it exists).
pub fn ensure_host(sw: &str, ns: &str, i: u32) -> Result<()> {
    if namespaces()?.iter().any(|n| n == ns) {
        return Ok(());
    }
    run(&mut cmd("ip", &["netns", "add", ns]))?;
    // Both ends are created directly inside their namespaces, so nothing
    // appears (or can clash) in the machine's own namespace.
    let (veth, port) = (format!("veth{i}"), format!("p{i}"));
    run(&mut cmd(
        "ip",
        &[
            "link", "add", &veth, "netns", ns, "type", "veth", "peer", "name", &port, "netns", sw,
        ],
    ))?;
    ip_in(sw, &["link", "set", &port, "master", "br0", "up"])?;
    ip_in(ns, &["link", "set", "lo", "up"])?;
    ip_in(ns, &["link", "set", &veth, "name", "eth0"])?;
    ip_in(
        ns,
        &["addr", "add", &format!("{}/24", addr(i)), "dev", "eth0"],
    )?;
    ip_in(ns, &["link", "set", "eth0", "up"])?;
    Ok(())
}

/// Deletes namespace `ns` if it exists (its veth pair goes with it).
pub fn delete(ns: &str) -> Result<()> {
    if namespaces()?.iter().any(|n| n == ns) {
        run(&mut cmd("ip", &["netns", "delete", ns]))?;
    }
    Ok(())
}

fn add_rule(sw: &str, rule: &str) -> Result<()> {
    let mut args = vec!["add", "rule", "bridge", TABLE, CHAIN];
    args.extend(rule.split(' '));
    nft(sw, &args).map(drop)
}

/// Drops everything host `i` sends or receives.
pub fn cut(sw: &str, i: u32) -> Result<()> {
    heal(sw, i)?;
    add_rule(sw, &format!("iifname \"p{i}\" drop"))?;
    add_rule(sw, &format!("oifname \"p{i}\" drop"))
}

/// Drops traffic between hosts `i` and `j` only.
pub fn block(sw: &str, i: u32, j: u32) -> Result<()> {
    add_rule(sw, &format!("iifname \"p{i}\" oifname \"p{j}\" drop"))?;
    add_rule(sw, &format!("iifname \"p{j}\" oifname \"p{i}\" drop"))
}

/// Drops `pct`% of host `i`'s packets in each direction (replaces its rules).
pub fn loss(sw: &str, i: u32, pct: u32) -> Result<()> {
    heal(sw, i)?;
    if pct >= 100 {
        return cut(sw, i);
    }
    if pct == 0 {
        return Ok(());
    }
    for dir in ["iifname", "oifname"] {
        add_rule(
            sw,
            &format!("{dir} \"p{i}\" numgen random mod 100 < {pct} drop"),
        )?;
    }
    Ok(())
}

/// Removes every rule that mentions host `i`'s port (cut, block and loss).
pub fn heal(sw: &str, i: u32) -> Result<()> {
    let port = format!("\"p{i}\"");
    for handle in rule_handles(sw)?
        .into_iter()
        .filter(|(text, _)| text.contains(&port))
        .map(|(_, h)| h)
    {
        nft(
            sw,
            &["delete", "rule", "bridge", TABLE, CHAIN, "handle", &handle],
        )?;
    }
    Ok(())
}

/// The fault rules now in place, as nft prints them.
pub fn rules(sw: &str) -> Result<Vec<String>> {
    Ok(rule_handles(sw)?.into_iter().map(|(t, _)| t).collect())
}

/// (rule text, handle) for each rule of the fault chain.
fn rule_handles(sw: &str) -> Result<Vec<(String, String)>> {
    let out = nft(sw, &["-a", "list", "chain", "bridge", TABLE, CHAIN])?;
    Ok(parse_rules(&out))
}

/// (rule text, handle) from `nft -a list chain` output.
fn parse_rules(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let (text, handle) = l.trim().rsplit_once(" # handle ")?;
            // The chain's own line carries a handle too; rules all end in a verdict.
            text.ends_with("drop")
                .then(|| (text.to_string(), handle.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse_rules;

    #[test]
    fn rules_and_their_handles_are_read_from_nft_listings() {
        let out = "table bridge shoal {\n\tchain faults { # handle 1\n\
                   \t\ttype filter hook forward priority filter; policy accept;\n\
                   \t\tiifname \"p1\" drop # handle 4\n\
                   \t\tiifname \"p12\" oifname \"p3\" drop # handle 7\n\t}\n}\n";
        let rules = parse_rules(out);
        assert_eq!(rules.len(), 2);
        assert_eq!(
            rules[0],
            ("iifname \"p1\" drop".to_string(), "4".to_string())
        );
        // heal 1 matches the quoted port, so p12's rule is not taken for p1's.
        assert!(!rules[1].0.contains("\"p1\""));
    }
}
