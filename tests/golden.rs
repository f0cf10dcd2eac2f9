//! Data-driven cases: unit files, member lists and `shoal` commands with their exact output.
//!
//! Each `tests/testdata/*.txt` is a sequence of blocks:
//! `== file NAME` (the following lines become that file), `== copy PATH [NAME]` (a file of
//! this repository), and `== run ARGS...` (runs the real `shoal` binary in the case's
//! directory; the following lines are its expected stdout, then `--- stderr` and its
//! stderr if any, then `[exit N]`). `SHOAL_BLESS=1 cargo test --test golden` rewrites the
//! expectations after a deliberate change; review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

enum Block {
    File { name: String, text: String },
    Copy { from: String, name: String },
    Run { args: String, expected: String },
}

fn parse_case(text: &str) -> Vec<(String, Block)> {
    let mut blocks = Vec::new();
    let mut header: Option<String> = None;
    let mut body = String::new();
    let mut finish = |header: Option<String>, body: &mut String| {
        if let Some(h) = header {
            let content = std::mem::take(body);
            let block = if let Some(name) = h.strip_prefix("== file ") {
                Block::File {
                    name: name.trim().to_string(),
                    text: content,
                }
            } else if let Some(spec) = h.strip_prefix("== copy ") {
                let words: Vec<&str> = spec.split_whitespace().collect();
                let from = words[0].to_string();
                let name = words.get(1).map(|s| s.to_string()).unwrap_or_else(|| {
                    Path::new(&from)
                        .file_name()
                        .expect("copy names a file")
                        .to_string_lossy()
                        .into_owned()
                });
                Block::Copy { from, name }
            } else if let Some(args) = h.strip_prefix("== run ") {
                Block::Run {
                    args: args.trim().to_string(),
                    expected: content,
                }
            } else {
                panic!("unknown block header {h:?}");
            };
            blocks.push((h, block));
        }
        body.clear();
    };
    for line in text.split_inclusive('\n') {
        if line.starts_with("== ") {
            finish(header.take(), &mut body);
            header = Some(line.trim_end().to_string());
        } else if header.is_some() {
            body.push_str(line);
        }
    }
    finish(header, &mut body);
    blocks
}

fn run_shoal(dir: &Path, args: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .expect("run shoal");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.stderr.is_empty() {
        text.push_str("--- stderr\n");
        text.push_str(&String::from_utf8_lossy(&output.stderr));
    }
    text.push_str(&format!("[exit {}]\n", output.status.code().unwrap_or(-1)));
    text
}

fn run_case(path: &Path, bless: bool) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!(
        "shoal-golden-{}-{}",
        std::process::id(),
        path.file_stem().expect("case file name").to_string_lossy()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut rewritten = String::new();
    // Keep whatever precedes the first block (the case's description).
    rewritten.push_str(text.split("\n== ").next().unwrap_or(""));
    if !text.starts_with("== ") {
        rewritten.push('\n');
    } else {
        rewritten.clear();
    }
    let mut failures = Vec::new();
    for (header, block) in parse_case(&text) {
        rewritten.push_str(&header);
        rewritten.push('\n');
        match block {
            Block::File { name, text } => {
                std::fs::write(dir.join(&name), &text).map_err(|e| e.to_string())?;
                rewritten.push_str(&text);
            }
            Block::Copy { from, name } => {
                std::fs::copy(root.join(&from), dir.join(&name))
                    .map_err(|e| format!("copy {from}: {e}"))?;
            }
            Block::Run { args, expected } => {
                let actual = run_shoal(&dir, &args);
                if actual.trim_end() != expected.trim_end() {
                    failures.push(format!(
                        "`shoal {args}`\n--- expected\n{expected}--- actual\n{actual}"
                    ));
                }
                rewritten.push_str(&actual);
                rewritten.push('\n');
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if bless {
        std::fs::write(path, rewritten.trim_end().to_string() + "\n").map_err(|e| e.to_string())?;
        return Ok(());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

#[test]
fn golden_cases() {
    let bless = std::env::var_os("SHOAL_BLESS").is_some();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/testdata exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {}", dir.display());
    let mut failed = Vec::new();
    for case in &cases {
        if let Err(why) = run_case(case, bless) {
            failed.push(format!("=== {}\n{why}", case.display()));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases differ (SHOAL_BLESS=1 rewrites them after a deliberate change):\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
}
