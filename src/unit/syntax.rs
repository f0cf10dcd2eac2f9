//! systemd unit-file syntax: sections, `Key=Value`, comments, continuations.
//!
//! Architecture invariant: syntax only. No key has a meaning here; repeated keys, empty
//! assignments and repeated sections are all kept, in file order, for the readers of each
//! section (`fleet.rs` for `[X-Fleet]`) to interpret. Never panics, on any input.
//!
//! Where systemd merely warns and skips a line, we refuse the file: a skipped line in
//! `[X-Fleet]` is a constraint silently lost, and shoal cannot tell which lines matter.

use super::UnitError;

/// Larger unit files are refused before parsing: real ones are a few KiB, and the limit
/// bounds the work one submitted file can cause on every member.
pub const FILE_SIZE_MAX_BYTES: usize = 64 * 1024;

/// How much of an offending line a message quotes.
const QUOTE_CHARS_MAX: usize = 60;

/// One `[Section]` with its assignments in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    /// 1-based line of the `[Section]` header.
    pub line: u32,
    pub entries: Vec<Entry>,
}

/// One `Key=Value` assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// 1-based line where the assignment starts.
    pub line: u32,
}

/// Parses `text` into its sections. `file` labels error messages.
///
/// As systemd: whitespace around keys and values is trimmed; lines whose first non-blank
/// character is `#` or `;` are comments, also in the middle of a continuation; a line
/// ending in an unescaped `\` continues on the next line, the `\` becoming a space;
/// `Key=` is kept as an empty value; `\r\n` line ends and a leading UTF-8 BOM are accepted.
///
/// Unlike systemd, these are errors: an assignment before any section, a line that is
/// neither header, comment nor assignment, a malformed header, an empty key, a NUL byte,
/// a file over [`FILE_SIZE_MAX_BYTES`], and a continuation still open at the end of the
/// file (systemd parses the partial line; it is almost always a truncated file).
pub fn parse(file: &str, text: &str) -> Result<Vec<Section>, UnitError> {
    let error = |line: Option<u32>, reason: String| UnitError {
        file: file.to_string(),
        line,
        reason,
    };
    if text.len() > FILE_SIZE_MAX_BYTES {
        return Err(error(
            None,
            format!(
                "file is {} bytes, larger than the {} bytes a unit file may have",
                text.len(),
                FILE_SIZE_MAX_BYTES
            ),
        ));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);

    let mut sections: Vec<Section> = Vec::new();
    // A continued line: where it started and what has been gathered so far.
    let mut pending: Option<(u32, String)> = None;
    let mut line_no: u32 = 0;
    for raw in text.lines() {
        line_no = line_no.saturating_add(1);
        if raw.contains('\0') {
            return Err(error(
                Some(line_no),
                "NUL byte in the file; a unit file is text".to_string(),
            ));
        }
        // systemd drops comment lines before it looks at continuations, so a comment
        // inside a continued value is skipped and a comment's own `\` continues nothing.
        if is_comment(raw) {
            continue;
        }
        let (start, mut joined) = match pending.take() {
            Some((start, mut acc)) => {
                acc.push_str(raw);
                (start, acc)
            }
            None => (line_no, raw.to_string()),
        };
        if ends_in_unescaped_backslash(&joined) {
            joined.pop();
            joined.push(' ');
            pending = Some((start, joined));
            continue;
        }
        parse_line(&joined, start, &mut sections).map_err(|reason| error(Some(start), reason))?;
    }
    if let Some((start, _)) = pending {
        return Err(error(
            Some(start),
            "line continuation '\\' runs into the end of the file; expected a line after it"
                .to_string(),
        ));
    }
    Ok(sections)
}

/// systemd's whitespace: `strstrip` trims only these, not every Unicode space.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn is_comment(line: &str) -> bool {
    matches!(
        line.trim_start_matches(is_blank).chars().next(),
        Some('#' | ';')
    )
}

/// A line continues when it ends in a `\` that is not itself escaped by a `\`.
fn ends_in_unescaped_backslash(line: &str) -> bool {
    let trailing = line.chars().rev().take_while(|&c| c == '\\').count();
    trailing % 2 == 1
}

fn parse_line(line: &str, line_no: u32, sections: &mut Vec<Section>) -> Result<(), String> {
    let line = line.trim_matches(is_blank);
    if line.is_empty() {
        return Ok(());
    }
    if let Some(rest) = line.strip_prefix('[') {
        let Some(name) = rest.strip_suffix(']') else {
            return Err(format!(
                "malformed section header {:?}: expected \"[NAME]\" alone on the line",
                quote(line)
            ));
        };
        if name.is_empty() {
            return Err("empty section name \"[]\": expected \"[NAME]\"".to_string());
        }
        if let Some(bad) = name
            .chars()
            .find(|&c| c == '[' || c == ']' || c.is_control())
        {
            return Err(format!(
                "malformed section header {:?}: character {bad:?} in a section name",
                quote(line)
            ));
        }
        sections.push(Section {
            name: name.to_string(),
            line: line_no,
            entries: Vec::new(),
        });
        return Ok(());
    }
    let Some((key, value)) = line.split_once('=') else {
        return Err(format!(
            "expected \"Key=Value\", a \"[Section]\" header or a comment; found {:?}",
            quote(line)
        ));
    };
    let Some(section) = sections.last_mut() else {
        return Err(format!(
            "assignment {:?} before any \"[Section]\" header",
            quote(line)
        ));
    };
    let key = key.trim_matches(is_blank);
    if key.is_empty() {
        return Err(format!("empty key before '=' in {:?}", quote(line)));
    }
    section.entries.push(Entry {
        key: key.to_string(),
        value: value.trim_matches(is_blank).to_string(),
        line: line_no,
    });
    Ok(())
}

/// A line as a message quotes it: cut short so one bad line cannot flood a terminal.
fn quote(line: &str) -> String {
    if line.chars().count() <= QUOTE_CHARS_MAX {
        return line.to_string();
    }
    let head: String = line.chars().take(QUOTE_CHARS_MAX).collect();
    format!("{head}...")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(text: &str) -> Vec<Section> {
        match parse("t.service", text) {
            Ok(s) => s,
            Err(e) => panic!("should parse: {e}\n{text}"),
        }
    }

    /// Asserts the error's label, line and a piece of its reason.
    fn fails(text: &str, line: Option<u32>, reason: &str) {
        match parse("t.service", text) {
            Ok(s) => panic!("should fail: {s:?}"),
            Err(e) => {
                assert_eq!(e.file, "t.service");
                assert_eq!(e.line, line, "{e}");
                assert!(e.reason.contains(reason), "{e} lacks {reason:?}");
            }
        }
    }

    fn kv(s: &Section) -> Vec<(&str, &str, u32)> {
        s.entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect()
    }

    #[test]
    fn sections_keys_values_and_lines_in_file_order() {
        let s = ok("[Unit]\nDescription = Example  \n\n  [X-Fleet]\nConflicts=a*\nConflicts=b*\n");
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].name.as_str(), s[0].line), ("Unit", 1));
        assert_eq!(kv(&s[0]), [("Description", "Example", 2)]);
        assert_eq!((s[1].name.as_str(), s[1].line), ("X-Fleet", 4));
        assert_eq!(kv(&s[1]), [("Conflicts", "a*", 5), ("Conflicts", "b*", 6)]);
    }

    #[test]
    fn comments_blank_lines_and_empty_assignments() {
        let s = ok("# top\n; also\n[S]\n  # indented\nA=\nB = x=y ; not a comment\n\n");
        assert_eq!(kv(&s[0]), [("A", "", 5), ("B", "x=y ; not a comment", 6)]);
    }

    #[test]
    fn crlf_and_bom_are_accepted() {
        let s = ok("\u{feff}[S]\r\nA=1\r\nB=2");
        assert_eq!(s[0].name, "S");
        assert_eq!(kv(&s[0]), [("A", "1", 2), ("B", "2", 3)]);
    }

    #[test]
    fn continuation_joins_lines_with_a_space_and_skips_comments() {
        let s = ok("[S]\nA=one \\\n# skipped\n  two\\\nthree\nB=x\n");
        assert_eq!(kv(&s[0]), [("A", "one    two three", 2), ("B", "x", 6)]);
    }

    #[test]
    fn an_escaped_backslash_does_not_continue() {
        let s = ok("[S]\nA=x\\\\\nB=y\n");
        assert_eq!(kv(&s[0]), [("A", "x\\\\", 2), ("B", "y", 3)]);
    }

    #[test]
    fn a_blank_line_ends_a_continuation() {
        let s = ok("[S]\nA=x\\\n\nB=y\n");
        assert_eq!(kv(&s[0]), [("A", "x", 2), ("B", "y", 4)]);
    }

    #[test]
    fn a_comment_ending_in_backslash_continues_nothing() {
        let s = ok("[S]\n# note \\\nA=1\n");
        assert_eq!(kv(&s[0]), [("A", "1", 3)]);
    }

    #[test]
    fn repeated_sections_are_kept_apart() {
        let s = ok("[X-Fleet]\nA=1\n[Unit]\n[X-Fleet]\nA=2\n");
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["X-Fleet", "Unit", "X-Fleet"]);
        assert_eq!(kv(&s[2]), [("A", "2", 5)]);
    }

    #[test]
    fn empty_text_has_no_sections() {
        assert!(ok("").is_empty());
        assert!(ok("\n# only a comment\n").is_empty());
    }

    #[test]
    fn every_syntax_error_names_file_line_and_reason() {
        fails(
            "A=1\n",
            Some(1),
            "assignment \"A=1\" before any \"[Section]\" header",
        );
        fails(
            "[S]\nA=1\nnonsense\n",
            Some(3),
            "expected \"Key=Value\", a \"[Section]\" header or a comment; found \"nonsense\"",
        );
        fails(
            "[S]\n[X-Fleet\nA=1",
            Some(2),
            "malformed section header \"[X-Fleet\"",
        );
        fails("[S] # c\n", Some(1), "malformed section header \"[S] # c\"");
        fails("[S]\n[]\n", Some(2), "empty section name");
        fails("[a]b]\n", Some(1), "character ']' in a section name");
        fails("[S]\n = x\n", Some(2), "empty key before '='");
        fails("[S]\nA=x\0y\n", Some(2), "NUL byte");
        fails(
            "[S]\nA=1\nB=x\\\n",
            Some(3),
            "line continuation '\\' runs into the end of the file",
        );
        fails(
            "[S]\nB=x\\\n# c\n",
            Some(2),
            "runs into the end of the file",
        );
        let big = format!("[S]\nA={}\n", "x".repeat(FILE_SIZE_MAX_BYTES));
        fails(&big, None, "larger than the 65536 bytes");
    }

    #[test]
    fn a_continued_error_names_the_first_line() {
        fails(
            "[S]\nno equals \\\nsign\n",
            Some(2),
            "found \"no equals  sign\"",
        );
    }

    #[test]
    fn long_lines_are_quoted_short() {
        let line = "y".repeat(500);
        let e = match parse("t", &format!("[S]\n{line}\n")) {
            Err(e) => e,
            Ok(_) => panic!("should fail"),
        };
        assert!(e.reason.len() < 200, "{}", e.reason);
        assert!(e.reason.contains("..."));
    }

    /// A valid file as a list of sections of (key, value) pairs, values without edge
    /// blanks or backslashes so they read back exactly.
    fn valid_file() -> impl Strategy<Value = Vec<(String, Vec<(String, String)>)>> {
        let key = "[A-Za-z][A-Za-z0-9_-]{0,12}";
        let value = "([!-~&&[^\\\\]]([ -~&&[^\\\\]]{0,20}[!-~&&[^\\\\]])?)?";
        let entries = proptest::collection::vec((key, value), 0..6);
        let section = ("[A-Za-z][A-Za-z0-9-]{0,10}", entries);
        proptest::collection::vec(section, 0..5)
    }

    /// Renders the sections with the decorations the syntax allows, and returns the
    /// text and the expected line of each header and entry.
    fn render(
        file: &[(String, Vec<(String, String)>)],
        crlf: bool,
        pad: bool,
    ) -> (String, Vec<(u32, Vec<u32>)>) {
        let nl = if crlf { "\r\n" } else { "\n" };
        let mut text = String::new();
        let mut lines = Vec::new();
        let mut line = 0;
        for (name, entries) in file {
            text.push_str(&format!("# section {name}{nl}"));
            line += 1;
            text.push_str(&format!("[{name}]{nl}"));
            line += 1;
            let header = line;
            let mut at = Vec::new();
            for (k, v) in entries {
                if pad {
                    text.push_str(&format!("  {k} =  {v}\t{nl}{nl}"));
                    line += 2;
                    at.push(line - 1);
                } else {
                    text.push_str(&format!("{k}={v}{nl}"));
                    line += 1;
                    at.push(line);
                }
            }
            lines.push((header, at));
        }
        (text, lines)
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in "(?s).{0,400}") {
            let _ = parse("p", &text);
        }

        #[test]
        fn never_panics_on_unit_like_text(
            text in "([\\[\\]=#;\\\\ \\r\\nA-Za-z\u{feff}\u{0}]{0,8}\n?){0,30}"
        ) {
            let _ = parse("p", &text);
        }

        #[test]
        fn valid_files_round_trip(file in valid_file(), crlf: bool, pad: bool) {
            let (text, lines) = render(&file, crlf, pad);
            let parsed = parse("p", &text);
            prop_assert!(parsed.is_ok(), "{:?}", parsed);
            let parsed = parsed.unwrap_or_default();
            prop_assert_eq!(parsed.len(), file.len());
            for ((section, (name, entries)), (header, at)) in parsed.iter().zip(&file).zip(&lines) {
                prop_assert_eq!(&section.name, name);
                prop_assert_eq!(section.line, *header);
                let got: Vec<(&str, &str, u32)> = kv(section);
                let want: Vec<(&str, &str, u32)> = entries
                    .iter()
                    .zip(at)
                    .map(|((k, v), l)| (k.as_str(), v.as_str(), *l))
                    .collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}
