//! Tidy: the architecture's invariants checked mechanically over the source tree.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_module_starts_with_a_doc_line() {
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "xtask/src"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 10, "found only {} files", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|f| f.strip_prefix(root()).unwrap_or(f).display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a `//!` first line: {missing:?}"
    );
}

/// Pure modules: no clock, socket, file, process or unseeded randomness, and no
/// hash-ordered collections whose order could leak into a decision.
#[test]
fn pure_modules_do_no_io_and_keep_order() {
    const PURE: &[&str] = &[
        "src/unit",
        "src/schedule",
        "src/catalog",
        "src/membership",
        "src/wire",
        "src/node",
        "src/node.rs",
        "src/journal.rs",
        "src/time.rs",
        "src/states.rs",
        "src/states",
    ];
    const FORBIDDEN: &[&str] = &[
        "Instant::now",
        "SystemTime",
        "UdpSocket",
        "TcpStream",
        "UnixStream",
        "std::fs",
        "std::process",
        "thread_rng",
        "OsRng",
        "HashMap",
        "HashSet",
        "DefaultHasher",
        "std::env",
    ];
    let mut files = Vec::new();
    for entry in PURE {
        let path = root().join(entry);
        if path.is_dir() {
            rust_files(&path, &mut files);
        } else if path.exists() {
            files.push(path);
        }
    }
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                if code.contains(word) {
                    found.push(format!(
                        "{}:{}: {word}",
                        file.strip_prefix(root()).unwrap_or(file).display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "I/O or hash order in pure modules:\n{}",
        found.join("\n")
    );
}
