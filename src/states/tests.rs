//! The state words: one meaning of running, and the same bytes, order and hash as strings.

use super::*;

const KNOWN: &[&str] = &[
    "active",
    "reloading",
    "inactive",
    "failed",
    "activating",
    "deactivating",
    "maintenance",
    "refreshing",
];

fn words() -> Vec<&'static str> {
    let mut all = KNOWN.to_vec();
    all.extend(["", "a", "zzz", "active2", "busy-from-a-newer-systemd"]);
    all
}

#[test]
fn every_word_reads_back_as_itself_and_unknown_words_are_kept() {
    for w in words() {
        let s = ActiveState::parse(w);
        assert_eq!(s.as_str(), w);
        assert_eq!(s.to_string(), w);
        assert_eq!(String::from(s.clone()), w);
        assert_eq!(s, w);
        assert_eq!(
            matches!(s, ActiveState::Other(_)),
            !KNOWN.contains(&w),
            "{w}"
        );
    }
}

#[test]
fn running_is_from_the_start_job_until_fully_down() {
    let running: Vec<&str> = words()
        .into_iter()
        .filter(|w| ActiveState::parse(w).is_running())
        .collect();
    let mut sorted = running.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["activating", "active", "deactivating", "reloading"]
    );
}

#[test]
fn transitioning_is_running_but_not_settled() {
    for w in words() {
        let s = ActiveState::parse(w);
        let want = matches!(w, "activating" | "deactivating" | "reloading");
        assert_eq!(s.is_transitioning(), want, "{w}");
        assert_eq!(
            s.is_transitioning(),
            s.is_running() && s != ActiveState::Active,
            "{w}"
        );
    }
}

#[test]
fn states_order_as_their_words_did() {
    for a in words() {
        for b in words() {
            let (sa, sb) = (ActiveState::parse(a), ActiveState::parse(b));
            assert_eq!(sa.cmp(&sb), a.cmp(b), "{a} vs {b}");
            assert_eq!(sa == sb, a == b, "{a} vs {b}");
        }
    }
}

/// Records what a value feeds a hasher.
#[derive(Default)]
struct Bytes(Vec<u8>);

impl Hasher for Bytes {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
}

#[test]
fn states_hash_as_their_words() {
    for w in words() {
        let (mut mine, mut theirs) = (Bytes::default(), Bytes::default());
        ActiveState::parse(w).hash(&mut mine);
        w.to_string().hash(&mut theirs);
        assert_eq!(mine.0, theirs.0, "{w}");
    }
}

#[test]
fn states_travel_as_the_bytes_of_their_words() {
    for w in words() {
        let bytes = postcard::to_allocvec(&w.to_string()).unwrap();
        assert_eq!(
            postcard::to_allocvec(&ActiveState::parse(w)).unwrap(),
            bytes
        );
        let back: ActiveState = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, ActiveState::parse(w));
    }
}

#[test]
fn truncating_cuts_only_unknown_words_and_reads_the_cut_again() {
    let mut s = ActiveState::parse("active");
    s.truncate(3);
    assert_eq!(s, ActiveState::Active, "known words are never cut");
    let mut s = ActiveState::parse("inactivexyz");
    s.truncate(8);
    assert!(matches!(s, ActiveState::Inactive), "{s:?}");
    let mut s = ActiveState::parse("aé");
    s.truncate(2);
    assert_eq!(s, "a", "cut at a character boundary");
}

#[test]
fn load_states_read_back_as_themselves() {
    for w in [
        "loaded",
        "not-found",
        "bad-setting",
        "error",
        "masked",
        "stub",
        "merged",
        "new",
    ] {
        let s = LoadState::parse(w);
        assert_eq!(s.as_str(), w);
        assert_eq!(s, w);
        assert_eq!(matches!(s, LoadState::Other(_)), w == "new");
    }
    assert_eq!(LoadState::parse("not-found"), LoadState::NotFound);
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Typed {
    #[serde(with = "word")]
    n: u32,
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Plain {
    n: String,
}

#[test]
fn a_field_carried_as_its_word_has_the_bytes_of_a_string_field() {
    let bytes = postcard::to_allocvec(&Plain { n: "42".into() }).unwrap();
    assert_eq!(postcard::to_allocvec(&Typed { n: 42 }).unwrap(), bytes);
    assert_eq!(
        postcard::from_bytes::<Typed>(&bytes).unwrap(),
        Typed { n: 42 }
    );
    let bad = postcard::to_allocvec(&Plain { n: "x".into() }).unwrap();
    assert!(postcard::from_bytes::<Typed>(&bad).is_err());
}
