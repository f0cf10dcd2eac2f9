//! `shoal journal -f`: where to read a unit's journal from next, and journalctl's output made into pages and back.
//!
//! The client follows a unit by asking the member that holds it for one page at a
//! time, each from a [`Position`]: first the last N entries ([`Position::Tail`]), then
//! the entries after the cursor of the last entry it printed ([`Position::After`]), so
//! nothing is printed twice or skipped. Cursors name one member's journal: when the
//! unit turns up on another member, the client goes on from the wall-clock time of
//! the last entry it printed ([`Position::Since`]).
//!
//! The holder runs journalctl (`--show-cursor`) and [`make_page`] turns its output
//! into a page that fits one remote answer: the lines, then `-- error: ` lines when
//! journalctl failed, then `-- cursor: ` and the last entry's cursor. When the lines
//! would not fit, it asks for a run with fewer entries rather than drop some.
//! [`Follower`] is the client's bookkeeping.
//!
//! Architecture invariant: pure (text in, text and decisions out); running
//! journalctl and talking to the agent are the agent's and the client's business.

use serde::{Deserialize, Serialize};

/// Longest cursor accepted (journald's are about 150 bytes).
pub const MAX_CURSOR_BYTES: usize = 512;
/// Most entries one follow page asks journalctl for.
pub const PAGE_ENTRIES: u32 = 200;
/// Most bytes of journal lines in one page (a page with its trailer stays within one
/// remote answer, `node::MAX_OUTPUT_BYTES`).
pub const PAGE_BYTES: usize = 46 * 1024;
/// Most `-- error: ` lines in a page, and their length.
const MAX_ERROR_LINES: usize = 5;
const MAX_ERROR_BYTES: usize = 200;

const CURSOR: &str = "-- cursor: ";
const ERROR: &str = "-- error: ";

/// Where a follow page starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Position {
    /// The last `n` entries (the first page).
    Tail(u32),
    /// The entries after this journald cursor (of the same member's journal).
    After(String),
    /// The entries from this wall-clock time, in microseconds since the epoch (after a
    /// move to another member, whose journal the cursor does not name).
    Since(u64),
}

impl Position {
    /// Whether this is a position a member acts on (it reaches journalctl's arguments).
    pub fn is_valid(&self, max_lines: u32) -> bool {
        match self {
            Position::Tail(n) => *n <= max_lines,
            Position::After(c) => cursor_ok(c),
            Position::Since(_) => true,
        }
    }
}

/// A journald cursor's shape: `s=..;i=..;b=..;m=..;t=..;x=..`, hex and letters.
fn cursor_ok(c: &str) -> bool {
    !c.is_empty()
        && c.len() <= MAX_CURSOR_BYTES
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'=' || b == b';')
}

/// The wall-clock time (µs since the epoch) of the entry a cursor names: its `t=` field.
pub fn cursor_time(c: &str) -> Option<u64> {
    c.split(';')
        .find_map(|f| f.strip_prefix("t="))
        .and_then(|t| u64::from_str_radix(t, 16).ok())
}

/// How many entries the first journalctl run for `pos` asks for.
pub fn first_entries(pos: &Position) -> u32 {
    match pos {
        Position::Tail(n) => *n,
        _ => PAGE_ENTRIES,
    }
}

/// journalctl's arguments for at most `entries` entries of `unit` from `pos`.
pub fn journalctl_args(unit: &str, pos: &Position, entries: u32) -> Vec<String> {
    let mut args: Vec<String> = ["--no-pager", "--quiet", "--show-cursor", "--output=short"]
        .map(String::from)
        .to_vec();
    args.push(format!("--unit={unit}"));
    match pos {
        Position::Tail(_) => {}
        Position::After(c) => args.push(format!("--after-cursor={c}")),
        Position::Since(us) => {
            args.push(format!("--since=@{}.{:06}", us / 1_000_000, us % 1_000_000))
        }
    }
    // From a cursor or a time, journalctl shows the first `entries` after it.
    args.push(format!("--lines={entries}"));
    args
}

/// One journalctl run, as the holder read it.
#[derive(Clone, Debug, Default)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    /// Whether all of stdout was read (it is read up to a bound).
    pub complete: bool,
    /// When not: stdout's last line (where journalctl puts the cursor).
    pub last_line: String,
    pub stderr: String,
}

/// What the holder does with a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Made {
    /// The page to send back.
    Page(String),
    /// Too much: run again asking for this many entries.
    Fewer(u32),
}

/// Splits journalctl's `--show-cursor` trailer off its output.
fn split_cursor(stdout: &str) -> (&str, Option<&str>) {
    let trimmed = stdout.strip_suffix('\n').unwrap_or(stdout);
    let (body, last) = match trimmed.rfind('\n') {
        Some(i) => (&stdout[..=i], &trimmed[i + 1..]),
        None => ("", trimmed),
    };
    match last.strip_prefix(CURSOR) {
        Some(c) => (body, Some(c.trim())),
        None => (stdout, None),
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Makes a page of one run of [`journalctl_args`]`(_, pos, entries)`.
pub fn make_page(pos: &Position, entries: u32, run: &Run) -> Made {
    let (body, cursor) = if run.complete {
        split_cursor(&run.stdout)
    } else {
        (run.stdout.as_str(), split_cursor(&run.last_line).1)
    };
    let cursor = cursor.filter(|c| cursor_ok(c));
    let fits = run.complete && body.len() <= PAGE_BYTES;
    let mut page = String::new();
    if fits {
        page.push_str(body);
    } else if entries > 1 && (!run.complete || !matches!(pos, Position::Tail(_))) {
        // Entries after a position are never dropped: fewer per page instead.
        return Made::Fewer((entries / 4).max(1));
    } else if let (Position::Tail(_), true) = (pos, run.complete) {
        // The first page: the newest whole lines that fit (older ones were not
        // shown yet and never will be; nothing after them is lost).
        let note = "[shoal: older lines left out: a page is at most 46 KiB]\n";
        let mut start = 0;
        while body.len() - start > PAGE_BYTES - note.len() {
            match body[start..].find('\n') {
                Some(i) => start += i + 1,
                None => start = body.len(),
            }
        }
        page.push_str(note);
        page.push_str(&body[start..]);
    } else {
        // One entry too long for a page: its beginning.
        page.push_str(cut(body, PAGE_BYTES));
        page.push_str("\n[shoal: entry cut: a page is at most 46 KiB]\n");
    }
    if !page.is_empty() && !page.ends_with('\n') {
        page.push('\n');
    }
    if run.code != 0 {
        for line in run
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(MAX_ERROR_LINES)
        {
            page.push_str(ERROR);
            page.push_str(cut(line, MAX_ERROR_BYTES));
            page.push('\n');
        }
    }
    page.push_str(CURSOR);
    page.push_str(cursor.unwrap_or(""));
    page.push('\n');
    Made::Page(page)
}

/// A page as the client reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// Journal lines, each ending in a newline.
    pub lines: String,
    /// journalctl's complaints, when it failed.
    pub errors: Vec<String>,
    /// The last entry's cursor; `None` when the page has no entry.
    pub cursor: Option<String>,
}

/// Reads a page made by [`make_page`]; `None` when `text` is not one.
pub fn parse_page(text: &str) -> Option<Page> {
    let (rest, cursor) = split_cursor(text);
    let cursor = cursor?;
    let cursor = match cursor {
        "" => None,
        c if cursor_ok(c) => Some(c.to_string()),
        _ => return None,
    };
    let mut lines: Vec<&str> = rest.split_inclusive('\n').collect();
    let mut errors = Vec::new();
    while let Some(e) = lines.last().and_then(|l| l.strip_prefix(ERROR)) {
        errors.push(e.trim_end().to_string());
        lines.pop();
    }
    errors.reverse();
    Some(Page {
        lines: lines.concat(),
        errors,
        cursor,
    })
}

/// What the client does after an answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Journal lines to print.
    pub print: String,
    /// One-line notices for the user (stderr).
    pub notes: Vec<String>,
    /// Ask again at once (more may be there already); else after a pause.
    pub at_once: bool,
    /// Stop with this exit status.
    pub exit: Option<i32>,
}

/// The client's side of `journal -f`: what to ask next, what to print.
#[derive(Clone, Debug)]
pub struct Follower {
    unit: String,
    /// `--lines`.
    lines: u32,
    pos: Position,
    /// Whether the lines of a `Tail` page are printed (not with `--lines 0`).
    print_tail: bool,
    /// The member the last answer came from.
    machine: Option<String>,
    /// The last notice given, so a lasting trouble is told once.
    last_note: Option<String>,
}

impl Follower {
    /// Following `unit`, first printing its last `lines` lines.
    pub fn new(unit: &str, lines: u32) -> Follower {
        Follower {
            unit: unit.to_string(),
            lines,
            // One entry at least, to learn where the journal ends.
            pos: Position::Tail(lines.max(1)),
            print_tail: lines > 0,
            machine: None,
            last_note: None,
        }
    }

    /// Whether an answer came yet.
    pub fn started(&self) -> bool {
        self.machine.is_some()
    }

    /// Where the next page must start.
    pub fn position(&self) -> Position {
        self.pos.clone()
    }

    fn note(&mut self, note: String, step: &mut Step) {
        if self.last_note.as_ref() != Some(&note) {
            step.notes.push(note.clone());
        }
        self.last_note = Some(note);
    }

    /// An answer: `text` from the member `machine`.
    pub fn page(&mut self, machine: &str, text: &str) -> Step {
        let mut step = Step::default();
        match &self.machine {
            None => self.machine = Some(machine.to_string()),
            Some(m) if m != machine => {
                // This page was read from our position in another member's journal:
                // drop it and ask again from where we are, in this member's terms.
                // Without a time to go on from (nothing shown yet, or the unit had
                // no entry there), start there as `-f` starts: never with the whole
                // of that member's history of the unit.
                let since = match &self.pos {
                    Position::After(c) => cursor_time(c),
                    Position::Since(t) if *t > 0 => Some(*t),
                    _ => None,
                };
                self.pos = match since {
                    Some(t) => Position::Since(t),
                    None => Position::Tail(self.lines.max(1)),
                };
                self.machine = Some(machine.to_string());
                let short = crate::schedule::MachineId(machine.to_string()).short();
                let note = format!("-- {} is now on {short}; following it there", self.unit);
                self.note(note, &mut step);
                step.at_once = true;
                return step;
            }
            Some(_) => {}
        }
        let Some(page) = parse_page(text) else {
            let note = format!("-- unexpected answer from {machine}; trying again");
            self.note(note, &mut step);
            return step;
        };
        let tail = matches!(self.pos, Position::Tail(_));
        if !tail || self.print_tail {
            step.print = page.lines.clone();
        }
        if page.errors.is_empty() {
            self.last_note = None;
        } else {
            self.note(
                format!("-- journalctl: {}", page.errors.join("; ")),
                &mut step,
            );
        }
        match page.cursor {
            Some(c) => self.pos = Position::After(c),
            // The unit has no entry at all there yet: everything to come is new.
            None if tail && page.errors.is_empty() => self.pos = Position::Since(0),
            None => {}
        }
        step.at_once = !page.lines.is_empty();
        step
    }

    /// The agent refused: `error`; `known`: whether the cluster still knows the unit.
    pub fn failed(&mut self, error: &str, known: bool) -> Step {
        let mut step = Step::default();
        if self.machine.is_none() {
            step.notes.push(error.to_string());
            step.exit = Some(1);
        } else if !known {
            step.notes.push(format!("-- {} was destroyed", self.unit));
            step.exit = Some(1);
        } else {
            self.note(format!("-- {error}; waiting"), &mut step);
        }
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C1: &str = "s=4f0d;i=3c;b=0a02;m=241c;t=66143b020a443;x=3c1a";
    const C2: &str = "s=4f0d;i=3d;b=0a02;m=241d;t=66143b020b000;x=3c1b";

    fn run(stdout: &str) -> Run {
        Run {
            code: 0,
            stdout: stdout.into(),
            complete: true,
            last_line: String::new(),
            stderr: String::new(),
        }
    }

    fn page_of(pos: &Position, r: &Run) -> String {
        match make_page(pos, first_entries(pos), r) {
            Made::Page(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn journalctl_is_asked_from_the_tail_a_cursor_or_a_time() {
        let a = journalctl_args("web.service", &Position::Tail(10), 10);
        assert_eq!(
            a,
            [
                "--no-pager",
                "--quiet",
                "--show-cursor",
                "--output=short",
                "--unit=web.service",
                "--lines=10"
            ]
        );
        let a = journalctl_args("web.service", &Position::After(C1.into()), 200);
        assert_eq!(
            a[5..],
            [format!("--after-cursor={C1}"), "--lines=200".into()]
        );
        let a = journalctl_args("web.service", &Position::Since(1_700_000_000_000_042), 5);
        assert_eq!(a[5..], ["--since=@1700000000.000042", "--lines=5"]);
    }

    #[test]
    fn positions_from_the_wire_are_checked() {
        assert!(Position::Tail(10).is_valid(10_000));
        assert!(!Position::Tail(10_001).is_valid(10_000));
        assert!(Position::After(C1.into()).is_valid(10));
        for bad in ["", "s=1 --all", "s=1\n", "-x", &"a".repeat(600)] {
            assert!(!Position::After(bad.into()).is_valid(10), "{bad:?}");
        }
        assert_eq!(cursor_time(C1), Some(0x66143b020a443));
        assert_eq!(cursor_time("s=1;i=2"), None);
    }

    #[test]
    fn a_page_carries_the_lines_and_the_last_cursor_and_reads_back() {
        let out = format!("Jan 01 h1 sh[1]: one\nJan 01 h1 sh[1]: two\n-- cursor: {C1}\n");
        let p = page_of(&Position::After(C2.into()), &run(&out));
        assert_eq!(p, out);
        let back = parse_page(&p).unwrap();
        assert_eq!(back.lines, "Jan 01 h1 sh[1]: one\nJan 01 h1 sh[1]: two\n");
        assert_eq!(back.cursor.as_deref(), Some(C1));
        assert!(back.errors.is_empty());
        // Nothing new: journalctl prints nothing (or only the cursor it started from).
        let empty = parse_page(&page_of(&Position::Since(0), &run(""))).unwrap();
        assert_eq!((empty.lines.as_str(), empty.cursor), ("", None));
        // Not a page at all.
        assert_eq!(parse_page("Jan 01 h1 sh[1]: one\n"), None);
        assert_eq!(parse_page("-- cursor: bad cursor\n"), None);
    }

    #[test]
    fn a_failed_run_passes_its_complaint_on_and_keeps_no_cursor() {
        let r = Run {
            code: 1,
            stdout: String::new(),
            complete: true,
            last_line: String::new(),
            stderr: "Failed to seek to cursor: Invalid argument\n".into(),
        };
        let p = parse_page(&page_of(&Position::After(C1.into()), &r)).unwrap();
        assert_eq!(p.errors, ["Failed to seek to cursor: Invalid argument"]);
        assert_eq!((p.lines.as_str(), p.cursor), ("", None));
        // journalctl exits 1 with no entries and says nothing: no complaint.
        let r = Run { code: 1, ..run("") };
        assert!(parse_page(&page_of(&Position::Tail(10), &r))
            .unwrap()
            .errors
            .is_empty());
    }

    #[test]
    fn too_much_after_a_cursor_asks_for_fewer_entries_never_drops_any() {
        let line = format!("Jan 01 h1 sh[1]: {}\n", "x".repeat(500));
        let big = format!("{}-- cursor: {C1}\n", line.repeat(200));
        let pos = Position::After(C2.into());
        assert_eq!(make_page(&pos, 200, &run(&big)), Made::Fewer(50));
        let cut_short = Run {
            complete: false,
            ..run(&line.repeat(100))
        };
        assert_eq!(make_page(&pos, 4, &cut_short), Made::Fewer(1));
        // One entry bigger than a page: its beginning, and the cursor past it.
        let huge = format!("Jan 01 h1 sh[1]: {}\n-- cursor: {C1}\n", "y".repeat(60_000));
        let Made::Page(p) = make_page(&pos, 1, &run(&huge)) else {
            panic!()
        };
        assert!(p.len() < crate::node::MAX_OUTPUT_BYTES);
        let back = parse_page(&p).unwrap();
        assert_eq!(back.cursor.as_deref(), Some(C1));
        assert!(back
            .lines
            .ends_with("[shoal: entry cut: a page is at most 46 KiB]\n"));
        // Even when the holder could not read it all: the cursor comes from the end.
        let unread = Run {
            complete: false,
            last_line: format!("-- cursor: {C1}\n"),
            ..run(&huge[..50_000])
        };
        let Made::Page(p) = make_page(&pos, 1, &unread) else {
            panic!()
        };
        assert_eq!(parse_page(&p).unwrap().cursor.as_deref(), Some(C1));
    }

    #[test]
    fn a_first_page_too_big_keeps_the_newest_whole_lines() {
        let body: String = (0..2000)
            .map(|i| format!("Jan 01 h1 sh[1]: line {i:05} {}\n", "z".repeat(40)))
            .collect();
        let pos = Position::Tail(2000);
        let Made::Page(p) = make_page(&pos, 2000, &run(&format!("{body}-- cursor: {C1}\n"))) else {
            panic!()
        };
        assert!(p.len() <= PAGE_BYTES + 200, "{}", p.len());
        let back = parse_page(&p).unwrap();
        assert_eq!(back.cursor.as_deref(), Some(C1));
        let lines: Vec<&str> = back.lines.lines().collect();
        assert!(lines[0].starts_with("[shoal: older lines left out"));
        assert!(
            lines[1].starts_with("Jan 01 h1 sh[1]: line "),
            "{}",
            lines[1]
        );
        assert!(lines.last().unwrap().contains("line 01999"));
        assert!(body.ends_with(&back.lines[lines[0].len() + 1..]));
    }

    fn page(lines: &[&str], cursor: Option<&str>) -> String {
        let mut p: String = lines.iter().map(|l| format!("{l}\n")).collect();
        p.push_str(&format!("-- cursor: {}\n", cursor.unwrap_or("")));
        p
    }

    #[test]
    fn following_prints_each_line_once_and_moves_on_from_the_last_cursor() {
        let mut f = Follower::new("web.service", 2);
        assert_eq!(f.position(), Position::Tail(2));
        let s = f.page("m1", &page(&["a", "b"], Some(C1)));
        assert_eq!(s.print, "a\nb\n");
        assert!(s.at_once && s.notes.is_empty() && s.exit.is_none());
        assert_eq!(f.position(), Position::After(C1.into()));
        let s = f.page("m1", &page(&[], None));
        assert_eq!((s.print.as_str(), s.at_once), ("", false));
        assert_eq!(f.position(), Position::After(C1.into()), "kept");
        let s = f.page("m1", &page(&["c"], Some(C2)));
        assert_eq!(s.print, "c\n");
        assert_eq!(f.position(), Position::After(C2.into()));
    }

    #[test]
    fn lines_zero_prints_nothing_old_and_an_empty_journal_is_read_from_its_start() {
        let mut f = Follower::new("web.service", 0);
        assert_eq!(f.position(), Position::Tail(1), "one entry, for its cursor");
        let s = f.page("m1", &page(&["old"], Some(C1)));
        assert_eq!(s.print, "");
        assert_eq!(f.position(), Position::After(C1.into()));

        let mut f = Follower::new("new.service", 10);
        f.page("m1", &page(&[], None));
        assert_eq!(f.position(), Position::Since(0));
        let s = f.page("m1", &page(&["first"], Some(C1)));
        assert_eq!(s.print, "first\n");
    }

    #[test]
    fn a_unit_that_moves_is_followed_from_the_time_of_the_last_line_shown() {
        let mut f = Follower::new("web.service", 10);
        f.page("aaaaaaaaaaaa1", &page(&["a"], Some(C1)));
        // Asked with the old member's cursor, answered by the new member: dropped.
        let s = f.page("bbbbbbbbbbbb2", &page(&["from a wrong place"], Some(C2)));
        assert_eq!(s.print, "");
        assert_eq!(
            s.notes,
            ["-- web.service is now on bbbbbbbb...; following it there"]
        );
        assert!(s.at_once && s.exit.is_none());
        assert_eq!(f.position(), Position::Since(0x66143b020a443));
        let s = f.page("bbbbbbbbbbbb2", &page(&["b"], Some(C2)));
        assert_eq!(s.print, "b\n");
        assert!(s.notes.is_empty());
        assert_eq!(f.position(), Position::After(C2.into()));
    }

    #[test]
    fn a_unit_that_moves_before_anything_was_shown_starts_there_from_its_last_lines() {
        let mut f = Follower::new("web.service", 3);
        f.page("m1", &page(&[], None));
        assert_eq!(f.position(), Position::Since(0));
        f.page("m2", &page(&["all of m2's history"], Some(C1)));
        assert_eq!(f.position(), Position::Tail(3));
        let s = f.page("m2", &page(&["x", "y", "z"], Some(C1)));
        assert_eq!(s.print, "x\ny\nz\n");
    }

    #[test]
    fn trouble_is_told_once_and_a_destroyed_unit_ends_the_follow() {
        let mut f = Follower::new("web.service", 10);
        let s = f.failed("unit web.service runs nowhere", false);
        assert_eq!(s.exit, Some(1), "nothing to follow from the start");

        let mut f = Follower::new("web.service", 10);
        f.page("m1", &page(&["a"], Some(C1)));
        let s = f.failed("member m1 did not answer in time", true);
        assert_eq!(s.notes, ["-- member m1 did not answer in time; waiting"]);
        assert_eq!(s.exit, None);
        let s = f.failed("member m1 did not answer in time", true);
        assert!(s.notes.is_empty(), "told once");
        let s = f.page("m1", &page(&["b"], Some(C2)));
        assert_eq!(s.print, "b\n");
        let s = f.failed("unit web.service runs nowhere", false);
        assert_eq!(s.notes, ["-- web.service was destroyed"]);
        assert_eq!(s.exit, Some(1));
    }
}
