//! Tidy: the architecture's invariants checked mechanically over the source tree.

use std::collections::{BTreeMap, BTreeSet};
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

/// Non-test code of a source file: everything before its first `#[cfg(test)]`
/// (test modules sit at the end of a file or in their own `tests.rs`).
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let code = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    // Comments say things like "crate::x"; only code counts.
    code.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The top-level module a file under `src/` belongs to (`src/node/remote.rs` -> `node`).
fn top_module(path: &Path) -> String {
    let rel = path.strip_prefix(root().join("src")).unwrap_or(path);
    let first = rel.components().next();
    let name = first.map(|c| c.as_os_str().to_string_lossy().to_string());
    name.unwrap_or_default().trim_end_matches(".rs").to_string()
}

fn leading_ident(s: &str) -> String {
    s.trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The top-level modules named after `crate::` in `code`, grouped imports
/// included (`use crate::{catalog::Status, node};` names `catalog` and `node`).
fn crate_imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            found.insert(leading_ident(rest));
            continue;
        };
        let (mut depth, mut item_start) = (1, 0);
        for (j, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 1 => {
                    found.insert(leading_ident(&group[item_start..j]));
                    item_start = j + 1;
                }
                _ => {}
            }
            if depth == 0 {
                found.insert(leading_ident(&group[item_start..j]));
                break;
            }
        }
    }
    found.remove("");
    found
}

/// Which top-level module may import which: the diagram in ARCHITECTURE.md.
/// Pure modules name nothing from `agent`, `cli` or `control`; the table must be
/// acyclic, so the code is too.
const LAYERS: &[(&str, &[&str])] = &[
    ("time", &[]),
    ("btree", &[]),
    ("sort", &[]),
    ("states", &[]),
    ("unit", &["btree", "sort"]),
    ("schedule", &["unit", "btree", "sort"]),
    ("wire", &["time"]),
    ("membership", &["wire", "time", "sort", "btree"]),
    ("catalog", &["states", "wire", "time", "btree", "sort"]),
    ("journal", &["schedule", "time"]),
    ("systemd", &["states", "unit", "btree", "sort"]),
    ("store", &[]),
    (
        "node",
        &[
            "catalog",
            "membership",
            "schedule",
            "unit",
            "wire",
            "journal",
            "states",
            "time",
            "btree",
            "sort",
        ],
    ),
    (
        "control",
        &[
            "node", "catalog", "schedule", "journal", "states", "unit", "time", "btree", "sort",
        ],
    ),
    (
        "agent",
        &[
            "node",
            "control",
            "systemd",
            "store",
            "catalog",
            "membership",
            "schedule",
            "unit",
            "wire",
            "journal",
            "states",
            "time",
            "btree",
            "sort",
        ],
    ),
    (
        // `cli` also wires the real systemd into the agent it starts (`shoal agent`).
        "cli",
        &[
            "agent", "systemd", "control", "node", "schedule", "unit", "journal", "catalog",
            "states", "wire", "time", "btree", "sort",
        ],
    ),
    ("main", &["cli"]),
    ("lib", &[]),
];

#[test]
fn imports_between_top_level_modules_follow_the_diagram() {
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let module = top_module(file);
        let Some(may) = allowed.get(module.as_str()) else {
            wrong.push(format!(
                "{}: module `{module}` is not in tidy's LAYERS table",
                relative(file)
            ));
            continue;
        };
        for import in crate_imports(&code_of(file)) {
            if import != module && !may.contains(&import.as_str()) {
                wrong.push(format!(
                    "{}: `{module}` imports `crate::{import}`",
                    relative(file)
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against ARCHITECTURE.md's diagram:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_layer_table_has_no_cycle_and_pure_modules_stay_pure() {
    // Kahn's algorithm: a table that cannot be ordered has a cycle.
    let mut left: BTreeMap<&str, BTreeSet<&str>> = LAYERS
        .iter()
        .map(|(m, deps)| (*m, deps.iter().copied().collect()))
        .collect();
    while let Some(free) = left.iter().find(|(_, d)| d.is_empty()).map(|(m, _)| *m) {
        left.remove(free);
        for deps in left.values_mut() {
            deps.remove(free);
        }
    }
    assert!(
        left.is_empty(),
        "the layer table has a cycle among {:?}",
        left.keys()
    );
    const PURE: &[&str] = &[
        "unit",
        "schedule",
        "catalog",
        "membership",
        "wire",
        "node",
        "journal",
        "states",
        "time",
    ];
    for (module, deps) in LAYERS {
        if PURE.contains(module) {
            for outer in ["agent", "cli", "control", "systemd", "store"] {
                assert!(
                    !deps.contains(&outer),
                    "pure `{module}` may not import `{outer}`"
                );
            }
        }
    }
}

#[test]
fn no_source_file_is_over_600_lines() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let big: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .count();
            (n > 600).then(|| format!("{} ({n} lines)", relative(f)))
        })
        .collect();
    assert!(
        big.is_empty(),
        "files over 600 lines; split them by job: {big:?}"
    );
}

/// The words a function over [`FN_LINES_MAX`] lines carries, with its reason, in
/// the comments or attributes just above it: `/// (Over 70 lines on purpose: ...)`.
const LONG_FN_MARKER: &str = "Over 70 lines on purpose";
const FN_LINES_MAX: usize = 70;

/// `(line, name, length)` of each function in `code` over the limit without a reason.
fn long_functions(code: &str) -> Vec<(usize, String, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        let t = t
            .strip_prefix("pub ")
            .or_else(|| t.strip_prefix("pub(crate) "))
            .unwrap_or(t);
        let t = t.strip_prefix("pub(super) ").unwrap_or(t);
        let t = t.strip_prefix("const ").unwrap_or(t);
        let t = t.strip_prefix("async ").unwrap_or(t);
        let Some(sig) = t.strip_prefix("fn ") else {
            continue;
        };
        let Some(len) = body_lines(&lines[i..]) else {
            continue;
        };
        if len <= FN_LINES_MAX {
            continue;
        }
        let reasoned = lines[..i]
            .iter()
            .rev()
            .take_while(|l| {
                let l = l.trim_start();
                l.starts_with("//") || l.starts_with("#[")
            })
            .any(|l| l.contains(LONG_FN_MARKER));
        if !reasoned {
            found.push((i + 1, leading_ident(sig), len));
        }
    }
    found
}

/// Lines from a `fn` line to its closing brace; `None` for a declaration without a body.
fn body_lines(from: &[&str]) -> Option<usize> {
    let mut depth = 0i32;
    let mut opened = false;
    for (n, line) in from.iter().enumerate() {
        let mut in_str = false;
        let mut prev = ' ';
        for c in line.split("//").next().unwrap_or("").chars() {
            match c {
                '"' if prev != '\\' => in_str = !in_str,
                '{' if !in_str => {
                    depth += 1;
                    opened = true;
                }
                '}' if !in_str => depth -= 1,
                _ => {}
            }
            prev = c;
        }
        if opened && depth <= 0 {
            return Some(n + 1);
        }
        if !opened && line.trim_end().ends_with(';') {
            return None;
        }
    }
    None
}

#[test]
fn functions_over_70_lines_say_why() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut long = Vec::new();
    for file in files.iter().filter(|f| !f.ends_with("tests.rs")) {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let code = text.find("#[cfg(test)]").map_or(&text[..], |i| &text[..i]);
        for (line, name, len) in long_functions(code) {
            long.push(format!(
                "{}:{line}: fn {name} ({len} lines)",
                relative(file)
            ));
        }
    }
    assert!(
        long.is_empty(),
        "functions over {FN_LINES_MAX} lines without a `({LONG_FN_MARKER}: reason)` comment above them \
         (split them, or say why they are better whole):\n{}",
        long.join("\n")
    );
}

#[test]
fn tidy_finds_grouped_imports_and_long_functions() {
    let code = "use crate::{catalog::{Status, Target}, node};\nuse crate::time::Millis;\n";
    let found: Vec<String> = crate_imports(code).into_iter().collect();
    assert_eq!(found, ["catalog", "node", "time"]);
    let body = "    x();\n".repeat(FN_LINES_MAX);
    let long = format!("fn big() {{\n{body}}}\nfn small() {{ \"}}\"; }}\n");
    assert_eq!(
        long_functions(&long),
        vec![(1, "big".to_string(), FN_LINES_MAX + 2)]
    );
    let reasoned = format!("/// (Over 70 lines on purpose: one table.)\n{long}");
    assert!(long_functions(&reasoned).is_empty());
}
