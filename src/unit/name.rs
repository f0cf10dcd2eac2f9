//! Unit names as fleet and systemd allow them, templates and instances, and `%n %N %p %i`.
//!
//! Architecture invariant: a [`UnitName`] is validated when built, so every accessor is
//! infallible and never panics: the name is ASCII, has exactly one known suffix and at
//! most one `@` before it.

use std::fmt;

/// The unit types systemd knows. fleet itself scheduled a subset, but every one of these
/// is a name systemd accepts, and refusing them would only push users to rename.
pub const SUFFIXES: [&str; 11] = [
    "service",
    "socket",
    "device",
    "mount",
    "automount",
    "swap",
    "target",
    "path",
    "timer",
    "slice",
    "scope",
];

/// systemd's `UNIT_NAME_MAX` is 256 including the terminating NUL, so a name of 256
/// characters is already refused by systemd (`unit_name_is_valid`): we refuse it here
/// rather than let a unit be accepted that systemd will not load.
pub const NAME_LEN_MAX: usize = 255;

/// Whether `name` is safe to use as a file name in the unit directory and as a
/// `systemctl` argument: a valid unit name (see [`UnitName::parse`]) that does not
/// start with a dot or a dash (no hidden files, no options). Pure, so that the node
/// checks remote questions with the same rule the systemd layer enforces.
pub fn is_safe_unit_name(name: &str) -> bool {
    UnitName::parse(name).is_ok() && !name.starts_with(['.', '-'])
}

/// A valid unit name such as `web.service`, `common@.service` or `common@1.service`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitName(String);

impl UnitName {
    /// Validates `name`: `[a-zA-Z0-9:_.@-]+` with a systemd unit suffix, at most one `@`
    /// before the suffix, a non-empty prefix, and at most [`NAME_LEN_MAX`] characters.
    pub fn parse(name: &str) -> Result<UnitName, String> {
        if name.is_empty() {
            return Err(
                "invalid unit name \"\": it is empty; expected NAME.TYPE such as web.service"
                    .into(),
            );
        }
        if name.len() > NAME_LEN_MAX {
            return Err(format!(
                "invalid unit name {:?}: it has {} characters, at most {} are allowed",
                shorten(name),
                name.chars().count(),
                NAME_LEN_MAX
            ));
        }
        if let Some(bad) = name.chars().find(|&c| !is_name_char(c)) {
            return Err(format!(
                "invalid unit name {name:?}: character {bad:?} is not allowed; expected only letters, digits and \":_.@-\""
            ));
        }
        let Some(dot) = name.rfind('.') else {
            return Err(format!(
                "invalid unit name {name:?}: it has no type suffix; expected NAME.TYPE, TYPE one of {}",
                SUFFIXES.join(", ")
            ));
        };
        let (stem, suffix) = (&name[..dot], &name[dot + 1..]);
        if !SUFFIXES.contains(&suffix) {
            return Err(format!(
                "invalid unit name {name:?}: unknown type suffix {:?}; expected one of {}",
                format!(".{suffix}"),
                SUFFIXES.join(", ")
            ));
        }
        if stem.is_empty() {
            return Err(format!(
                "invalid unit name {name:?}: the name before \".{suffix}\" is empty"
            ));
        }
        match stem.matches('@').count() {
            0 => {}
            1 => {
                if stem.starts_with('@') {
                    return Err(format!(
                        "invalid unit name {name:?}: the template prefix before \"@\" is empty"
                    ));
                }
            }
            _ => {
                return Err(format!(
                    "invalid unit name {name:?}: more than one \"@\"; expected PREFIX@INSTANCE.{suffix}"
                ))
            }
        }
        Ok(UnitName(name.to_string()))
    }

    /// The name as given, e.g. `common@1.service`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name without its type suffix, e.g. `common@1` (systemd's `%N`).
    pub fn stem(&self) -> &str {
        // Validated: there is a '.' before the suffix.
        match self.0.rfind('.') {
            Some(dot) => &self.0[..dot],
            None => &self.0,
        }
    }

    /// The type suffix without the dot, e.g. `service`.
    pub fn suffix(&self) -> &str {
        match self.0.rfind('.') {
            Some(dot) => &self.0[dot + 1..],
            None => "",
        }
    }

    /// The part before `@`, or the whole name without its suffix (systemd's `%p`).
    pub fn prefix(&self) -> &str {
        let stem = self.stem();
        match stem.find('@') {
            Some(at) => &stem[..at],
            None => stem,
        }
    }

    /// `true` for a template such as `common@.service` (an `@` and nothing after it).
    pub fn is_template(&self) -> bool {
        self.stem().ends_with('@')
    }

    /// `true` for an instance such as `common@1.service`.
    pub fn is_instance(&self) -> bool {
        self.instance().is_some()
    }

    /// The instance: `1` of `common@1.service`; `None` for templates and plain units.
    pub fn instance(&self) -> Option<&str> {
        let stem = self.stem();
        let at = stem.find('@')?;
        let instance = &stem[at + 1..];
        (!instance.is_empty()).then_some(instance)
    }

    /// The template an instance is made from: `common@.service` for `common@1.service`.
    /// `None` for a template itself and for plain units.
    pub fn template(&self) -> Option<UnitName> {
        self.instance()?;
        Some(UnitName(format!("{}@.{}", self.prefix(), self.suffix())))
    }

    /// The instance `instance` of this template: `common@1.service` for
    /// `common@.service` and `1`; an error when this is not a template or the instance
    /// makes the name invalid.
    pub fn instantiate(&self, instance: &str) -> Result<UnitName, String> {
        if !self.is_template() {
            return Err(format!(
                "{} is not a template (expected PREFIX@.TYPE)",
                self.0
            ));
        }
        UnitName::parse(&format!("{}@{}.{}", self.prefix(), instance, self.suffix()))
    }

    /// Replaces `%n` (full name), `%N` (name without suffix), `%p` (prefix), `%i`
    /// (instance, empty if none) and `%%` (a literal `%`) in `value`, in one pass so that
    /// a replacement is never itself re-expanded. Any other `%x`, and a trailing `%`, is
    /// left as written, as fleet left it.
    pub fn expand_specifiers(&self, value: &str) -> String {
        let mut out = String::with_capacity(value.len());
        let mut chars = value.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push_str(&self.0),
                Some('N') => out.push_str(self.stem()),
                Some('p') => out.push_str(self.prefix()),
                Some('i') => out.push_str(self.instance().unwrap_or("")),
                Some('%') => out.push('%'),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            }
        }
        out
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '.' | '@' | '-')
}

/// Keeps an over-long name readable in a message.
fn shorten(name: &str) -> String {
    let head: String = name.chars().take(40).collect();
    format!("{head}...")
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for UnitName {
    type Err = String;

    fn from_str(s: &str) -> Result<UnitName, String> {
        UnitName::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> UnitName {
        match UnitName::parse(s) {
            Ok(n) => n,
            Err(e) => panic!("{s} should be valid: {e}"),
        }
    }

    fn err(s: &str) -> String {
        match UnitName::parse(s) {
            Ok(n) => panic!("{n} should be invalid"),
            Err(e) => e,
        }
    }

    #[test]
    fn plain_template_and_instance_names_are_taken_apart() {
        let plain = name("example_02.service");
        assert_eq!(plain.prefix(), "example_02");
        assert_eq!(plain.stem(), "example_02");
        assert_eq!(plain.suffix(), "service");
        assert_eq!(plain.instance(), None);
        assert!(!plain.is_template());
        assert_eq!(plain.template(), None);

        let template = name("common@.service");
        assert!(template.is_template());
        assert!(!template.is_instance());
        assert_eq!(template.prefix(), "common");
        assert_eq!(template.instance(), None);
        assert_eq!(template.template(), None);

        let instance = name("common@1.service");
        assert!(!instance.is_template());
        assert_eq!(instance.instance(), Some("1"));
        assert_eq!(instance.prefix(), "common");
        assert_eq!(instance.suffix(), "service");
        assert_eq!(instance.template(), Some(template.clone()));
        assert_eq!(template.instantiate("1"), Ok(instance));
        assert!(plain.instantiate("1").is_err());
    }

    #[test]
    fn dots_in_the_name_leave_the_last_one_for_the_suffix() {
        let n = name("a.b@c.d.socket");
        assert_eq!(n.suffix(), "socket");
        assert_eq!(n.prefix(), "a.b");
        assert_eq!(n.instance(), Some("c.d"));
    }

    #[test]
    fn every_systemd_suffix_is_accepted() {
        for s in SUFFIXES {
            assert_eq!(name(&format!("x.{s}")).suffix(), s);
        }
    }

    #[test]
    fn bad_names_say_why() {
        assert!(err("").contains("it is empty"));
        assert!(err("web").contains("has no type suffix"));
        assert!(err("web.servce").contains("unknown type suffix \".servce\""));
        assert!(err(".service").contains("the name before \".service\" is empty"));
        assert!(err("@1.service").contains("template prefix before \"@\" is empty"));
        assert!(err("a@b@c.service").contains("more than one \"@\""));
        assert!(err("web app.service").contains("character ' ' is not allowed"));
        assert!(err("wéb.service").contains("character 'é' is not allowed"));
        assert!(err("web/x.service").contains("character '/'"));
        let long = format!("{}.service", "a".repeat(NAME_LEN_MAX));
        assert!(err(&long).contains("at most 255 are allowed"));
        let longest = format!("{}.service", "a".repeat(NAME_LEN_MAX - 8));
        assert_eq!(name(&longest).as_str().len(), NAME_LEN_MAX);
    }

    #[test]
    fn specifiers_expand_once_and_leave_unknown_ones() {
        let n = name("common@1.service");
        assert_eq!(n.expand_specifiers("%p@*.service"), "common@*.service");
        assert_eq!(
            n.expand_specifiers("%n|%N|%p|%i"),
            "common@1.service|common@1|common|1"
        );
        assert_eq!(n.expand_specifiers("100%% %i"), "100% 1");
        // `%%i` is a literal `%` then `i`, not the instance.
        assert_eq!(n.expand_specifiers("%%i"), "%i");
        assert_eq!(n.expand_specifiers("%H %x %"), "%H %x %");
        let plain = name("web.service");
        assert_eq!(plain.expand_specifiers("[%i]%p"), "[]web");
        let template = name("common@.service");
        assert_eq!(template.expand_specifiers("%N %i."), "common@ .");
    }

    #[test]
    fn names_order_and_display_as_strings() {
        let mut v = [name("b.service"), name("a@2.service"), name("a@10.service")];
        v.sort();
        let s: Vec<String> = v.iter().map(|n| n.to_string()).collect();
        assert_eq!(s, ["a@10.service", "a@2.service", "b.service"]);
    }
}
