//! `cargo xtask`: repository chores (static builds, test hosts with real systemd, simulation sweeps, benchmarks, the demo).

const USAGE: &str =
    "usage: cargo xtask (hosts COMMAND... | dist | sim [--seeds N] [--first-seed S] [--figures]
                    | bench [--quick | --scale | --idle] | demo [--keep])
  cargo xtask hosts help
  cargo xtask bench --help";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("hosts") => xtask::hosts::main(&args[1..]),
        Some("dist") => xtask::dist::main(&args[1..]),
        Some("sim") => xtask::sim::main(&args[1..]),
        Some("bench") => xtask::bench::main(&args[1..]),
        Some("demo") => xtask::demo::main(&args[1..]),
        _ => Err(USAGE.to_string()),
    };
    if let Err(e) = result {
        eprintln!("xtask: {e}");
        std::process::exit(1);
    }
}
