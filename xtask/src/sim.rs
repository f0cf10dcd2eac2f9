//! `cargo xtask sim`: long sweeps of the seeded whole-cluster simulation, and its figures.
//!
//! The simulator lives in shoal's `tests/simulation.rs`; this runs its seed test (or
//! its figures test) through cargo with the seeds and sizes in the environment, so a
//! failing seed exits non-zero and prints the command that replays it.

use std::process::Command;

const USAGE: &str = "usage: cargo xtask sim [--seeds N] [--first-seed S] [--figures]\n  \
    --seeds N        run N seeds (default 100)\n  \
    --first-seed S   start at seed S (default 1)\n  \
    --figures        measure convergence and traffic for 3, 20, 100 and 1,000 members instead";

pub fn main(args: &[String]) -> Result<(), String> {
    let mut seeds = 100u64;
    let mut first = 1u64;
    let mut figures = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a number\n{USAGE}"))
        };
        match a.as_str() {
            "--seeds" => seeds = number("--seeds")?,
            "--first-seed" => first = number("--first-seed")?,
            "--figures" => figures = true,
            "-h" | "--help" | "help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let test = if figures {
        "figures"
    } else {
        "fixed_seeds_converge_after_faults"
    };
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "test",
            "--package",
            "shoal",
            "--test",
            "simulation",
            test,
            "--",
            "--nocapture",
            "--exact",
        ])
        .env("SHOAL_SIM_SEEDS", seeds.to_string())
        .env("SHOAL_SIM_FIRST_SEED", first.to_string())
        .env(
            "SHOAL_SIM_SIZES",
            std::env::var("SHOAL_SIM_SIZES").unwrap_or_else(|_| "3,20,100,1000".into()),
        )
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "simulation failed ({status}); each failing seed above prints its replay command"
        ))
    }
}
