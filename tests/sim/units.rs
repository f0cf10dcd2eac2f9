//! The unit files the simulation submits: fleet's constraints, a global unit, a 20 KiB
//! file that needs chunking, and one that fails to parse.

pub const NAMES: &[&str] = &[
    "web@1.service",
    "web@2.service",
    "web@3.service",
    "db.service",
    "db-backup.service",
    "monitor.service",
    "big.service",
    "broken.service",
    "hello@1.service",
    "hello@2.service",
    "hello@3.service",
    "hello@4.service",
];

/// The text of a unit by name (deterministic, so checkers can re-read it).
pub fn text_of(name: &str) -> String {
    let base = name
        .split('@')
        .next()
        .unwrap_or(name)
        .trim_end_matches(".service");
    let fleet = match base {
        "web" => "[X-Fleet]\nConflicts=web@*.service\n".to_string(),
        "db" => "[X-Fleet]\nMachineMetadata=disk=ssd\n".to_string(),
        "db-backup" => "[X-Fleet]\nMachineOf=db.service\n".to_string(),
        "monitor" => "[X-Fleet]\nGlobal=true\n".to_string(),
        "broken" => "[X-Fleet]\nNoSuchKey=1\n".to_string(),
        _ => String::new(),
    };
    let padding = if base == "big" {
        "# padding to make the file need many datagrams\n".repeat(1300)
    } else {
        String::new()
    };
    format!("[Unit]\nDescription={name}\n{padding}\n[Service]\nExecStart=/bin/sleep infinity\n\n{fleet}")
}

/// Units whose constraints every cluster of 3+ members with both disks can satisfy alone.
pub fn always_placeable(name: &str) -> bool {
    name.starts_with("hello@") || name == "big.service" || name == "monitor.service"
}
