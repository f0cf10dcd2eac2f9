//! systemd's unit states as types, and the one rule for whether a unit counts as running.
//!
//! systemd reports a unit's `ActiveState` and `LoadState` as words. Every part of
//! shoal that judges them (placement's stickiness, the start guard, the executor's
//! poll rate, the client's tables) reads them through these types, so "running"
//! has one meaning: [`ActiveState::is_running`].
//!
//! Architecture invariants:
//! - Pure: words in, words out; imports nothing from the rest of shoal.
//! - A word from a newer systemd is kept as `Other`, never lost or guessed at.
//! - An [`ActiveState`] travels and is stored as its word: serde, equality, order
//!   and hash all go by [`ActiveState::as_str`], so the gossiped and persisted bytes
//!   (and the merge order of reports) are those of the plain string it replaced.

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// systemd's `ActiveState` of a unit (`systemctl show -p ActiveState`).
///
/// `SubState` stays a plain word (`running`, `exited`, `dead`, ...): it depends
/// on the unit type, there are dozens, and shoal only shows it.
#[derive(Clone, Debug)]
pub enum ActiveState {
    Active,
    Reloading,
    Inactive,
    Failed,
    Activating,
    Deactivating,
    /// A `systemctl clean` or similar job runs; the unit's processes do not.
    Maintenance,
    /// Active, refreshing its mount namespace (`systemctl bind`, systemd 248+).
    Refreshing,
    /// A word this version does not know. Built by [`ActiveState::parse`], so it
    /// never holds one of the words above.
    Other(String),
}

impl ActiveState {
    /// systemd's word; any word is accepted (unknown ones become `Other`).
    pub fn parse(word: &str) -> ActiveState {
        match word {
            "active" => ActiveState::Active,
            "reloading" => ActiveState::Reloading,
            "inactive" => ActiveState::Inactive,
            "failed" => ActiveState::Failed,
            "activating" => ActiveState::Activating,
            "deactivating" => ActiveState::Deactivating,
            "maintenance" => ActiveState::Maintenance,
            "refreshing" => ActiveState::Refreshing,
            other => ActiveState::Other(other.to_string()),
        }
    }

    /// systemd's word for this state.
    pub fn as_str(&self) -> &str {
        match self {
            ActiveState::Active => "active",
            ActiveState::Reloading => "reloading",
            ActiveState::Inactive => "inactive",
            ActiveState::Failed => "failed",
            ActiveState::Activating => "activating",
            ActiveState::Deactivating => "deactivating",
            ActiveState::Maintenance => "maintenance",
            ActiveState::Refreshing => "refreshing",
            ActiveState::Other(word) => word,
        }
    }

    /// Whether a unit in this state may be running a process: from the start job
    /// until it is fully down. This is what "running" means everywhere in shoal:
    /// the no-double-run start guard, placement's stickiness, which member holds a
    /// unit, and the client's `plan`/`why` and `start`/`stop` waits.
    ///
    /// `Refreshing` (systemd counts it as active) and `Maintenance` are not counted
    /// yet: every member judges the replicated reports with this rule and must agree,
    /// so widening it is a change of its own, made for the whole cluster at once. An
    /// unknown word is not running.
    pub fn is_running(&self) -> bool {
        matches!(
            self,
            ActiveState::Active
                | ActiveState::Activating
                | ActiveState::Deactivating
                | ActiveState::Reloading
        )
    }

    /// Whether systemd is moving the unit between states: a start, stop or reload
    /// job is under way. Differs from [`ActiveState::is_running`] by leaving out
    /// `Active`, the settled state: the executor polls fast while a unit
    /// transitions (start-to-active shows at once) and slowly once all settled.
    pub fn is_transitioning(&self) -> bool {
        matches!(
            self,
            ActiveState::Activating | ActiveState::Deactivating | ActiveState::Reloading
        )
    }

    /// Cuts the word to at most `max_bytes` (at a character boundary), as
    /// `String::truncate` did when this was a string: reports are bounded before
    /// they are gossiped. Every known word is shorter than any bound in use, so
    /// only an `Other` word can be cut; the cut word is read again, so the
    /// no-known-word-in-`Other` rule holds.
    pub fn truncate(&mut self, max_bytes: usize) {
        if let ActiveState::Other(word) = self {
            if word.len() > max_bytes {
                let mut end = max_bytes;
                while !word.is_char_boundary(end) {
                    end -= 1;
                }
                *self = ActiveState::parse(&word[..end]);
            }
        }
    }
}

impl From<&str> for ActiveState {
    fn from(word: &str) -> ActiveState {
        ActiveState::parse(word)
    }
}

impl From<ActiveState> for String {
    fn from(s: ActiveState) -> String {
        match s {
            ActiveState::Other(word) => word,
            known => known.as_str().to_string(),
        }
    }
}

impl std::str::FromStr for ActiveState {
    type Err = std::convert::Infallible;
    fn from_str(word: &str) -> Result<ActiveState, Self::Err> {
        Ok(ActiveState::parse(word))
    }
}

impl fmt::Display for ActiveState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for ActiveState {
    fn eq(&self, other: &ActiveState) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ActiveState {}

impl PartialEq<str> for ActiveState {
    fn eq(&self, word: &str) -> bool {
        self.as_str() == word
    }
}

impl PartialEq<&str> for ActiveState {
    fn eq(&self, word: &&str) -> bool {
        self.as_str() == *word
    }
}

/// By the word, as the string it replaced: a report's status breaks ties in the
/// catalog's merge, and members of two versions must order reports alike.
impl Ord for ActiveState {
    fn cmp(&self, other: &ActiveState) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for ActiveState {
    fn partial_cmp(&self, other: &ActiveState) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Hash for ActiveState {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.as_str().hash(h);
    }
}

/// As the word, exactly as a `String` serializes (postcard: length, then bytes).
impl Serialize for ActiveState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ActiveState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ActiveState, D::Error> {
        struct Word;
        impl serde::de::Visitor<'_> for Word {
            type Value = ActiveState;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a systemd ActiveState word")
            }
            fn visit_str<E: serde::de::Error>(self, word: &str) -> Result<ActiveState, E> {
                Ok(ActiveState::parse(word))
            }
        }
        d.deserialize_str(Word)
    }
}

/// systemd's `LoadState` of a unit: whether its file was found and read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadState {
    Loaded,
    /// No such unit (or its file was removed and systemd reloaded).
    NotFound,
    BadSetting,
    Error,
    Masked,
    Stub,
    Merged,
    /// A word this version does not know. Built by [`LoadState::parse`].
    Other(String),
}

impl LoadState {
    /// systemd's word; any word is accepted (unknown ones become `Other`).
    pub fn parse(word: &str) -> LoadState {
        match word {
            "loaded" => LoadState::Loaded,
            "not-found" => LoadState::NotFound,
            "bad-setting" => LoadState::BadSetting,
            "error" => LoadState::Error,
            "masked" => LoadState::Masked,
            "stub" => LoadState::Stub,
            "merged" => LoadState::Merged,
            other => LoadState::Other(other.to_string()),
        }
    }

    /// systemd's word for this state.
    pub fn as_str(&self) -> &str {
        match self {
            LoadState::Loaded => "loaded",
            LoadState::NotFound => "not-found",
            LoadState::BadSetting => "bad-setting",
            LoadState::Error => "error",
            LoadState::Masked => "masked",
            LoadState::Stub => "stub",
            LoadState::Merged => "merged",
            LoadState::Other(word) => word,
        }
    }
}

impl From<&str> for LoadState {
    fn from(word: &str) -> LoadState {
        LoadState::parse(word)
    }
}

impl fmt::Display for LoadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for LoadState {
    fn eq(&self, word: &&str) -> bool {
        self.as_str() == *word
    }
}

/// A serde adapter (`#[serde(with = "crate::states::word")]`) that carries a value
/// as its word (`Display` out, `FromStr` in): postcard's bytes are then those of
/// the `String` field it replaces, so a field can be typed without a format change.
pub mod word {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_string())
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let w = std::borrow::Cow::<'de, str>::deserialize(d)?;
        w.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests;
