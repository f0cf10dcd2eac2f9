//! `cargo xtask`: repository chores (benchmarks, static builds, test hosts).
fn main() {}
