//! The `[X-Fleet]` section: fleet's keys, their meaning and the combinations fleet rejects.
//!
//! Architecture invariant: only `[X-Fleet]` is read here; every other section is
//! systemd's business and passes through untouched. A value that fleet would have
//! silently ignored (a malformed pair, a bad glob, an unknown key) is an error naming
//! the file and line: an ignored constraint places a unit where its author said it must
//! not run.

use super::glob::Glob;
use super::syntax::{Entry, Section};
use super::value::{parse_boolean, split_words};
use super::{FleetOptions, UnitError, UnitName};

/// The section fleet reads. Section names are case-sensitive, as in systemd.
pub const SECTION: &str = "X-Fleet";

/// The keys of `[X-Fleet]`, in the order messages list them.
pub const KNOWN_KEYS: [&str; 6] = [
    "MachineID",
    "MachineOf",
    "MachineMetadata",
    "Conflicts",
    "Global",
    "Replaces",
];

/// fleet's spellings from before v0.8, still accepted (with a warning) as the modern key.
const DEPRECATED_KEYS: [(&str, Key); 4] = [
    ("X-ConditionMachineID", Key::MachineId),
    ("X-ConditionMachineOf", Key::MachineOf),
    ("X-Conflicts", Key::Conflicts),
    ("X-ConditionMachineMetadata", Key::MachineMetadata),
];

/// Keys fleet once knew but that cannot mean anything now: a boot ID changes at every
/// boot, and fleet itself stopped honouring it.
const UNSUPPORTED_KEYS: [&str; 2] = ["X-ConditionMachineBootID", "MachineBootID"];

/// The instance a template's section is checked with: any valid instance would do, as
/// specifiers only substitute text.
const TEMPLATE_PROBE_INSTANCE: &str = "0";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    MachineId,
    MachineOf,
    MachineMetadata,
    Conflicts,
    Global,
    Replaces,
}

impl Key {
    fn from_modern(key: &str) -> Option<Key> {
        Some(match key {
            "MachineID" => Key::MachineId,
            "MachineOf" => Key::MachineOf,
            "MachineMetadata" => Key::MachineMetadata,
            "Conflicts" => Key::Conflicts,
            "Global" => Key::Global,
            "Replaces" => Key::Replaces,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Key::MachineId => "MachineID",
            Key::MachineOf => "MachineOf",
            Key::MachineMetadata => "MachineMetadata",
            Key::Conflicts => "Conflicts",
            Key::Global => "Global",
            Key::Replaces => "Replaces",
        }
    }
}

/// The options being read, each value with the line it came from, so that later checks
/// can point at the line that made the unit invalid.
#[derive(Default)]
struct State {
    machine_id: Option<(String, u32)>,
    machine_of: Vec<(UnitName, u32)>,
    machine_metadata: Vec<(String, String, u32)>,
    conflicts: Vec<(Glob, u32)>,
    global: Option<(bool, u32)>,
    replaces: Vec<(Glob, u32)>,
}

impl State {
    /// The first line still in effect for `key`, if the key is in effect at all.
    /// `Global=false` is not in effect: it asks for nothing.
    fn line_of(&self, key: Key) -> Option<u32> {
        match key {
            Key::MachineId => self.machine_id.as_ref().map(|(_, l)| *l),
            Key::MachineOf => self.machine_of.first().map(|(_, l)| *l),
            Key::MachineMetadata => self.machine_metadata.first().map(|(_, _, l)| *l),
            Key::Conflicts => self.conflicts.first().map(|(_, l)| *l),
            Key::Global => match self.global {
                Some((true, l)) => Some(l),
                _ => None,
            },
            Key::Replaces => self.replaces.first().map(|(_, l)| *l),
        }
    }

    /// An empty assignment (`Conflicts=`) resets the key, as in systemd.
    fn reset(&mut self, key: Key) {
        match key {
            Key::MachineId => self.machine_id = None,
            Key::MachineOf => self.machine_of.clear(),
            Key::MachineMetadata => self.machine_metadata.clear(),
            Key::Conflicts => self.conflicts.clear(),
            Key::Global => self.global = None,
            Key::Replaces => self.replaces.clear(),
        }
    }

    fn into_options(self) -> FleetOptions {
        let mut options = FleetOptions {
            machine_id: self.machine_id.map(|(id, _)| id),
            machine_of: self
                .machine_of
                .into_iter()
                .map(|(n, _)| n.as_str().to_string())
                .collect(),
            global: matches!(self.global, Some((true, _))),
            conflicts: self.conflicts.into_iter().map(|(g, _)| g).collect(),
            replaces: self.replaces.into_iter().map(|(g, _)| g).collect(),
            ..FleetOptions::default()
        };
        for (key, value, _) in self.machine_metadata {
            options
                .machine_metadata
                .entry(key)
                .or_default()
                .insert(value);
        }
        options
    }
}

/// Reads `[X-Fleet]` of `sections` for the unit `name`; returns the options and warnings.
///
/// Repeated `[X-Fleet]` sections are read as one, in file order. Every value has its
/// specifiers (`%n %N %p %i %%`) expanded for `name` first. A template (`web@.service`)
/// never runs itself: its section is checked, and its options returned, as those of the
/// instance `web@0.service`, so that values built with `%i` are checked as an instance
/// will see them; callers place instances, read with their own names.
pub fn options(
    file: &str,
    name: &UnitName,
    sections: &[Section],
) -> Result<(FleetOptions, Vec<UnitError>), UnitError> {
    let probe;
    let name = if name.is_template() {
        probe = name
            .instantiate(TEMPLATE_PROBE_INSTANCE)
            .map_err(|reason| UnitError {
                file: file.to_string(),
                line: None,
                reason,
            })?;
        &probe
    } else {
        name
    };
    let mut reader = Reader {
        file,
        name,
        state: State::default(),
        warnings: Vec::new(),
    };
    for section in sections {
        if section.name == SECTION {
            for entry in &section.entries {
                reader.entry(entry)?;
            }
        } else if section.name.eq_ignore_ascii_case(SECTION) {
            return Err(reader.error(
                section.line,
                format!(
                    "section \"[{}]\" is not \"[{SECTION}]\": section names are case-sensitive, so its constraints would be ignored",
                    section.name
                ),
            ));
        }
    }
    reader.check_combinations()?;
    Ok((reader.state.into_options(), reader.warnings))
}

struct Reader<'a> {
    file: &'a str,
    name: &'a UnitName,
    state: State,
    warnings: Vec<UnitError>,
}

impl Reader<'_> {
    fn error(&self, line: u32, reason: String) -> UnitError {
        UnitError {
            file: self.file.to_string(),
            line: Some(line),
            reason,
        }
    }

    fn entry(&mut self, entry: &Entry) -> Result<(), UnitError> {
        let line = entry.line;
        let key = self.key(entry)?;
        if entry.value.is_empty() {
            self.state.reset(key);
            return Ok(());
        }
        let value = self.name.expand_specifiers(&entry.value);
        let split_unquoted = matches!(key, Key::Conflicts | Key::Replaces);
        let words = split_words(&value, split_unquoted)
            .map_err(|why| self.error(line, format!("{}={value:?}: {why}", key.name())))?;
        if words.is_empty() {
            return Err(self.error(
                line,
                format!(
                    "{}={:?} is empty once specifiers are expanded; expected a value",
                    key.name(),
                    entry.value
                ),
            ));
        }
        match key {
            Key::MachineId => self.machine_id(line, &words),
            Key::MachineOf => self.machine_of(line, &words),
            Key::MachineMetadata => self.machine_metadata(line, &value, &words),
            Key::Conflicts | Key::Replaces => self.globs(key, line, &words),
            Key::Global => self.global(line, &words),
        }
    }

    /// Resolves the key of `entry`: a modern key, a deprecated spelling (warned about),
    /// or an error for an unsupported or unknown key.
    fn key(&mut self, entry: &Entry) -> Result<Key, UnitError> {
        let line = entry.line;
        let key = entry.key.as_str();
        if let Some(k) = Key::from_modern(key) {
            return Ok(k);
        }
        if let Some(&(old, modern)) = DEPRECATED_KEYS.iter().find(|(old, _)| *old == key) {
            let new = modern.name();
            self.warnings.push(self.error(
                line,
                format!("deprecated key \"{old}\" in [{SECTION}]; read as \"{new}\", write \"{new}\" instead"),
            ));
            return Ok(modern);
        }
        if UNSUPPORTED_KEYS.contains(&key) {
            return Err(self.error(
                line,
                format!(
                    "unsupported key \"{key}\" in [{SECTION}]: a boot ID changes at every boot and fleet stopped honouring it; use MachineID"
                ),
            ));
        }
        let hint = match suggest(key) {
            Some(s) => format!(" (did you mean \"{s}\"?)"),
            None => String::new(),
        };
        Err(self.error(
            line,
            format!(
                "unknown key \"{key}\" in [{SECTION}]{hint}; known keys: {}",
                KNOWN_KEYS.join(", ")
            ),
        ))
    }

    fn machine_id(&mut self, line: u32, words: &[String]) -> Result<(), UnitError> {
        let id = single(words).map_err(|why| self.error(line, format!("MachineID {why}")))?;
        // fleet took any string here; real ids are 32 hex characters, but members of a
        // test cluster or a `plan` file may have readable ids, so the member-id charset
        // is accepted. A value naming no member leaves the unit waiting, and `why` says so.
        super::MachineId::parse(id).map_err(|why| {
            self.error(line, format!("MachineID {id:?} is not a machine id: {why}"))
        })?;
        if let Some((_, earlier)) = &self.state.machine_id {
            let earlier = *earlier;
            self.warnings.push(self.error(
                line,
                format!("MachineID is set again (first on line {earlier}); the last one wins"),
            ));
        }
        // Kept as written; placement compares ids case-insensitively.
        self.state.machine_id = Some((id.to_string(), line));
        Ok(())
    }

    fn machine_of(&mut self, line: u32, words: &[String]) -> Result<(), UnitError> {
        for word in words {
            let target = UnitName::parse(word)
                .map_err(|why| self.error(line, format!("MachineOf: {why}")))?;
            if target == *self.name {
                return Err(self.error(
                    line,
                    format!("MachineOf={target} names this unit itself; expected another unit"),
                ));
            }
            if target.is_template() {
                return Err(self.error(
                    line,
                    format!(
                        "MachineOf={target} names a template, which never runs; expected a unit or an instance such as {}",
                        target.instantiate("1").map(|n| n.to_string()).unwrap_or_default()
                    ),
                ));
            }
            if !self.state.machine_of.iter().any(|(n, _)| *n == target) {
                self.state.machine_of.push((target, line));
            }
        }
        Ok(())
    }

    fn machine_metadata(
        &mut self,
        line: u32,
        value: &str,
        words: &[String],
    ) -> Result<(), UnitError> {
        for word in words {
            let (key, val) = match word.split_once('=') {
                None => return Err(self.bad_pair(line, word, "it has no '='")),
                Some((_, v)) if v.contains('=') => {
                    let why = if words.len() == 1 && value.contains(char::is_whitespace) {
                        "it has more than one '='; to give several pairs, quote each: \"a=b\" \"c=d\""
                    } else {
                        "it has more than one '='"
                    };
                    return Err(self.bad_pair(line, word, why));
                }
                Some((k, v)) => (k, v),
            };
            if key.is_empty() {
                return Err(self.bad_pair(line, word, "the key before '=' is empty"));
            }
            if val.is_empty() {
                return Err(self.bad_pair(line, word, "the value after '=' is empty"));
            }
            self.state
                .machine_metadata
                .push((key.to_string(), val.to_string(), line));
        }
        Ok(())
    }

    fn bad_pair(&self, line: u32, pair: &str, why: &str) -> UnitError {
        self.error(
            line,
            format!("malformed MachineMetadata pair {pair:?}: {why}; expected key=value"),
        )
    }

    fn globs(&mut self, key: Key, line: u32, words: &[String]) -> Result<(), UnitError> {
        for word in words {
            let glob = Glob::new(word).map_err(|why| {
                self.error(line, format!("bad glob {word:?} in {}: {why}", key.name()))
            })?;
            let list = match key {
                Key::Replaces => &mut self.state.replaces,
                _ => &mut self.state.conflicts,
            };
            if !list.iter().any(|(g, _)| *g == glob) {
                list.push((glob, line));
            }
        }
        Ok(())
    }

    fn global(&mut self, line: u32, words: &[String]) -> Result<(), UnitError> {
        let word = single(words).map_err(|why| self.error(line, format!("Global {why}")))?;
        let value = parse_boolean(word).ok_or_else(|| {
            self.error(
                line,
                format!(
                    "Global={word:?} is not a boolean: expected true, yes, on, 1 or false, no, off, 0"
                ),
            )
        })?;
        self.state.global = Some((value, line));
        Ok(())
    }

    /// The combinations fleet refuses, and a `MachineOf` its own unit's globs rule out.
    /// When several apply, the one that appears first in the file is reported.
    fn check_combinations(&self) -> Result<(), UnitError> {
        let state = &self.state;
        let mut found: Vec<(u32, String)> = Vec::new();
        let pairs = [
            (Key::MachineId, Key::MachineOf),
            (Key::MachineId, Key::Conflicts),
            (Key::MachineId, Key::Global),
            (Key::MachineId, Key::Replaces),
            (Key::Global, Key::MachineOf),
            (Key::Global, Key::Replaces),
            (Key::Conflicts, Key::Replaces),
        ];
        for (a, b) in pairs {
            let (Some(la), Some(lb)) = (state.line_of(a), state.line_of(b)) else {
                continue;
            };
            let why = match a {
                Key::MachineId => "MachineID pins the unit to one machine",
                Key::Global => "Global=true runs the unit on every machine",
                _ => "fleet cannot both keep a unit away from others and make it take their place",
            };
            let (a, b) = (describe(a), describe(b));
            let reason = if la <= lb {
                format!("{b} cannot be combined with {a} (line {la}): {why}")
            } else {
                format!("{a} cannot be combined with {b} (line {lb}): {why}")
            };
            found.push((la.max(lb), reason));
        }
        for (target, lt) in &state.machine_of {
            for (key, list) in [
                ("Conflicts", &state.conflicts),
                ("Replaces", &state.replaces),
            ] {
                if let Some((glob, lg)) = list.iter().find(|(g, _)| g.matches(target.as_str())) {
                    found.push((
                        *lt.max(lg),
                        format!(
                            "MachineOf={target} (line {lt}) is matched by this unit's own {key}={glob} (line {lg}): the unit could never be placed"
                        ),
                    ));
                }
            }
        }
        match found.into_iter().min_by_key(|(line, _)| *line) {
            Some((line, reason)) => Err(self.error(line, reason)),
            None => Ok(()),
        }
    }
}

/// `Global` in messages reads `Global=true`, the only value that combines badly.
fn describe(key: Key) -> &'static str {
    match key {
        Key::Global => "Global=true",
        other => other.name(),
    }
}

fn single(words: &[String]) -> Result<&str, String> {
    match words {
        [one] => Ok(one),
        _ => Err(format!("takes one value, found {}: {words:?}", words.len())),
    }
}

/// The known key (or old spelling) closest to `key`: the same word in another case, or
/// within two edits of it.
fn suggest(key: &str) -> Option<&'static str> {
    // An old spelling suggests its modern key: that is what the user should write.
    let candidates = KNOWN_KEYS
        .iter()
        .map(|k| (*k, *k))
        .chain(DEPRECATED_KEYS.iter().map(|(old, new)| (*old, new.name())));
    let lower = key.to_ascii_lowercase();
    let mut best: Option<(usize, &'static str)> = None;
    for (spelling, modern) in candidates {
        let distance = edit_distance(&lower, &spelling.to_ascii_lowercase());
        let better = match best {
            Some((d, _)) => distance < d,
            None => true,
        };
        if distance <= 2 && better {
            best = Some((distance, modern));
        }
    }
    best.map(|(_, modern)| modern)
}

/// Levenshtein distance over chars; keys are short, so the quadratic cost is nothing.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(value: &str, split: bool) -> Vec<String> {
        match split_words(value, split) {
            Ok(w) => w,
            Err(e) => panic!("{value:?}: {e}"),
        }
    }

    #[test]
    fn unquoted_values_are_one_word_unless_split() {
        assert_eq!(words("a b", false), ["a b"]);
        assert_eq!(words("a  b\tc", true), ["a", "b", "c"]);
        assert_eq!(words("x\"y\" z", false), ["x\"y\" z"]);
    }

    #[test]
    fn quoted_values_split_and_keep_quoted_spaces() {
        assert_eq!(words("\"a=b\" \"c=d\"", false), ["a=b", "c=d"]);
        assert_eq!(words("'a b' c", false), ["a b", "c"]);
        assert_eq!(words("\"a\"b \"'\"", false), ["ab", "'"]);
        assert_eq!(words("a\\* \"b\\?\"", true), ["a\\*", "b\\?"]);
        assert!(split_words("\"a", false).is_err());
        assert!(split_words("\"\"", false).is_err());
    }

    #[test]
    fn booleans_are_systemds() {
        assert_eq!(parse_boolean("YES"), Some(true));
        assert_eq!(parse_boolean("Off"), Some(false));
        assert_eq!(parse_boolean("2"), None);
        assert_eq!(parse_boolean(""), None);
    }

    #[test]
    fn suggestions_fix_case_and_small_typos_only() {
        assert_eq!(suggest("machineid"), Some("MachineID"));
        assert_eq!(suggest("MachineMetaData"), Some("MachineMetadata"));
        assert_eq!(suggest("Replace"), Some("Replaces"));
        assert_eq!(suggest("X-ConditionMachineOF"), Some("MachineOf"));
        assert_eq!(suggest("Weight"), None);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn every_known_and_deprecated_key_resolves() {
        for key in KNOWN_KEYS {
            assert_eq!(Key::from_modern(key).map(Key::name), Some(key));
        }
        for (old, new) in DEPRECATED_KEYS {
            assert_eq!(Key::from_modern(new.name()), Some(new), "{old}");
        }
    }
}
