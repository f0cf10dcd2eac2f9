//! `cargo xtask dist`: the static musl release binary, and a copy in the test hosts' `/opt/bin`.

use crate::hosts::{Cluster, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "x86_64-unknown-linux-musl";

pub fn main(_args: &[String]) -> Result<()> {
    let bin = build()?;
    let size = std::fs::metadata(&bin)
        .map_err(|e| format!("{}: {e}", bin.display()))?
        .len();
    println!(
        "{} {size} bytes ({:.1} KiB)",
        bin.display(),
        size as f64 / 1024.0
    );
    let dir = Cluster::from_env()?.bin_dir();
    let copy = install(&bin, &dir)?;
    println!(
        "copied to {} (/opt/bin/shoal in the test hosts)",
        copy.display()
    );
    Ok(())
}

fn workspace_root() -> PathBuf {
    // The xtask lives one level below the workspace root.
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

fn run(c: &mut Command) -> Result<String> {
    let out = c.output().map_err(|e| format!("{c:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{c:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The toolchain `nightly` when it can rebuild std for musl (`rust-src` and
/// the musl target installed): `Some(its sysroot)`.
fn nightly_sysroot() -> Option<String> {
    let sysroot =
        run(Command::new("rustup").args(["run", "nightly", "rustc", "--print", "sysroot"]))
            .ok()?
            .trim()
            .to_string();
    let rustlib = Path::new(&sysroot).join("lib/rustlib");
    let ready = rustlib.join("src/rust/library/std").is_dir()
        && rustlib.join(TARGET).join("lib/self-contained").is_dir();
    ready.then_some(sysroot)
}

/// How the release binary is built.
enum Toolchain {
    /// The stable toolchain and its prebuilt std (about 1.3 MiB).
    Stable,
    /// `nightly` rebuilding std for size (`-Zbuild-std`) without its backtrace
    /// printer and without unwind tables (about 0.9 MiB). Panic messages are
    /// kept: with `panic = "abort"` nothing ever unwinds, so the tables only
    /// served `RUST_BACKTRACE=1`.
    NightlyBuildStd { sysroot: String },
}

/// `SHOAL_DIST_TOOLCHAIN=stable|nightly` chooses; unset, nightly is used when
/// it is ready and stable otherwise (with a note on how to get the smaller build).
fn toolchain() -> Result<Toolchain> {
    let wanted = std::env::var("SHOAL_DIST_TOOLCHAIN").unwrap_or_default();
    match wanted.as_str() {
        "stable" => Ok(Toolchain::Stable),
        "nightly" | "" => match nightly_sysroot() {
            Some(sysroot) => Ok(Toolchain::NightlyBuildStd { sysroot }),
            None if wanted.is_empty() => {
                eprintln!(
                    "note: building with stable (about 1.3 MiB); for the < 1 MiB build: \
                     rustup toolchain install nightly --profile minimal -c rust-src -t {TARGET}"
                );
                Ok(Toolchain::Stable)
            }
            None => Err(format!(
                "SHOAL_DIST_TOOLCHAIN=nightly, but nightly cannot rebuild std for {TARGET}; \
                 rustup toolchain install nightly --profile minimal -c rust-src -t {TARGET}"
            )),
        },
        other => Err(format!(
            "SHOAL_DIST_TOOLCHAIN={other}: expected stable or nightly"
        )),
    }
}

/// Builds `shoal` for musl (adding the target with rustup when missing) and
/// checks that the result is static.
pub fn build() -> Result<PathBuf> {
    let root = workspace_root();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let (mut cmd, target_dir) = match toolchain()? {
        Toolchain::Stable => {
            let installed = run(Command::new("rustup").args(["target", "list", "--installed"]))?;
            if !installed.lines().any(|l| l.trim() == TARGET) {
                eprintln!("adding rust target {TARGET} ...");
                run(Command::new("rustup").args(["target", "add", TARGET]))?;
            }
            let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
            let sysroot = run(Command::new(&rustc).args(["--print", "sysroot"]))?;
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut c = Command::new(cargo);
            c.args(["build", "--config", &rustflags(sysroot.trim(), &[])?]);
            (c, target_dir)
        }
        Toolchain::NightlyBuildStd { sysroot } => {
            eprintln!("building with nightly, std rebuilt for size (SHOAL_DIST_TOOLCHAIN=stable for the stable build)");
            let mut c = Command::new("rustup");
            // The outer cargo's settings name the stable toolchain.
            for var in [
                "CARGO",
                "RUSTC",
                "RUSTDOC",
                "RUSTUP_TOOLCHAIN",
                "RUSTC_WRAPPER",
            ] {
                c.env_remove(var);
            }
            c.args(["run", "nightly", "cargo", "build"])
                .args(["-Zbuild-std=std,panic_abort", "-Zbuild-std-features="])
                .args([
                    "--config",
                    &rustflags(&sysroot, &["-Cforce-unwind-tables=no"])?,
                ]);
            // Its own directory: the two toolchains would rebuild each other's output.
            let dir = target_dir.join("nightly-build-std");
            c.arg("--target-dir").arg(&dir);
            (c, dir)
        }
    };
    let status = cmd
        .current_dir(&root)
        .args([
            "--release",
            "--locked",
            "--package",
            "shoal",
            "--bin",
            "shoal",
        ])
        .args(["--target", TARGET])
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build for {TARGET} failed ({status})"));
    }
    let bin = target_dir.join(TARGET).join("release").join("shoal");
    check_static(&bin)?;
    Ok(bin)
}

/// Rustflags for the release binary, added (as `--config`, so they join the
/// rustflags of `.cargo/config.toml`) to the build: `extra`, then rustc's
/// bundled `rust-lld` through `cc` and identical code folding (`--icf=all`),
/// which merges the many byte-identical generic instances (about 28 KiB). The
/// path to `rust-lld` depends on the toolchain, so it cannot be written in a
/// config file. `--icf=all` may give two identical functions one address; Rust
/// promises no distinct function addresses (rustc itself merges functions),
/// and writable data, vtables included, is never folded.
fn rustflags(sysroot: &str, extra: &[&str]) -> Result<String> {
    let host = run(Command::new("rustc").arg("-vV"))?
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .ok_or("rustc -vV: no host line")?;
    let gcc_ld = Path::new(sysroot)
        .join("lib/rustlib")
        .join(host.trim())
        .join("bin/gcc-ld");
    if !gcc_ld.join("ld.lld").is_file() {
        return Err(format!(
            "{}: no ld.lld (rustc's bundled rust-lld) to link the release binary with",
            gcc_ld.display()
        ));
    }
    let gcc_ld = gcc_ld
        .to_str()
        .ok_or_else(|| format!("{}: not UTF-8", gcc_ld.display()))?
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    let mut flags: Vec<String> = extra.iter().map(|f| format!("\"{f}\"")).collect();
    flags.extend([
        "\"-Clink-arg=-fuse-ld=lld\"".to_string(),
        format!("\"-Clink-arg=-B{gcc_ld}\""),
        "\"-Clink-arg=-Wl,--icf=all\"".to_string(),
    ]);
    Ok(format!(
        "target.{TARGET}.rustflags = [{}]",
        flags.join(", ")
    ))
}

/// An error unless `bin` is a static ELF64 binary (the test hosts have no
/// musl loader, and the point of shoal is one file to copy).
pub fn check_static(bin: &Path) -> Result<()> {
    let bytes = std::fs::read(bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    let dynamic = has_interpreter(&bytes).map_err(|e| format!("{}: {e}", bin.display()))?;
    if dynamic {
        return Err(format!("{} is dynamically linked", bin.display()));
    }
    Ok(())
}

/// Whether an ELF64 little-endian file asks for a dynamic loader (has a
/// PT_INTERP program header): a static binary has none.
fn has_interpreter(elf: &[u8]) -> Result<bool> {
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    if elf.get(..5) != Some(b"\x7fELF\x02".as_slice()) {
        return Err("not an ELF64 file".into());
    }
    let bad = || "truncated ELF header".to_string();
    let phoff = usize::try_from(u64_at(0x20).ok_or_else(bad)?).map_err(|_| bad())?;
    let phentsize = usize::from(u16_at(0x36).ok_or_else(bad)?);
    let phnum = usize::from(u16_at(0x38).ok_or_else(bad)?);
    const PT_INTERP: u32 = 3;
    for k in 0..phnum {
        let o = phoff + k * phentsize;
        let p_type = elf
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(bad)?;
        if p_type == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Copies `bin` into `dir` as `shoal` through a temporary name and a rename,
/// so a host never sees a half-written binary.
pub fn install(bin: &Path, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = dir.join(".shoal.tmp");
    let dest = dir.join("shoal");
    std::fs::copy(bin, &tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::has_interpreter;

    #[test]
    fn a_dynamically_linked_binary_is_told_apart() {
        // This test binary is built for the host target, with a dynamic loader.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(has_interpreter(&me).unwrap());
        assert!(has_interpreter(b"#!/bin/sh\n").is_err());
        assert!(has_interpreter(b"\x7fELF\x02").is_err());
    }
}
