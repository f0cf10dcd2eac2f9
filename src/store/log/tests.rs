//! The log's framing, torn tails, damage before the end, and failed appends.

use super::*;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("shoal-log-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn base() -> LogBase {
    LogBase::of(b"the snapshot", 42)
}

fn records() -> Vec<Vec<u8>> {
    vec![
        b"one".to_vec(),
        Vec::new(),
        vec![7u8; 300],
        b"last record".to_vec(),
    ]
}

#[test]
fn appended_records_read_back_in_order_with_their_base() {
    let d = dir("roundtrip");
    let p = d.join("state.log");
    assert_eq!(read_log(&p).unwrap(), None);
    let mut w = LogWriter::create(&p, base()).unwrap();
    assert!(w.is_empty());
    let rs = records();
    let n = w.append(&rs[..2]).unwrap() + w.append(&rs[2..]).unwrap();
    assert_eq!(
        n as usize,
        rs.iter().map(|r| r.len() + RECORD_OVERHEAD).sum()
    );
    let back = read_log(&p).unwrap().unwrap();
    assert_eq!(back.base, base());
    assert_eq!(back.records, rs);
    assert_eq!(back.damage, None);
    assert_eq!(back.end, w.len());
    assert_eq!(fs::metadata(&p).unwrap().len(), w.len());
    // A new log replaces the old one whole.
    LogWriter::create(&p, LogBase::of(b"other", 1)).unwrap();
    let back = read_log(&p).unwrap().unwrap();
    assert!(back.records.is_empty());
    assert_ne!(back.base, base());
    let _ = fs::remove_dir_all(d);
}

#[test]
fn a_torn_last_record_is_dropped_at_every_cut_and_truncated() {
    let d = dir("torn");
    let p = d.join("state.log");
    let rs = records();
    let mut w = LogWriter::create(&p, base()).unwrap();
    w.append(&rs[..3]).unwrap();
    let whole = w.len();
    w.append(&rs[3..]).unwrap();
    let full = fs::read(&p).unwrap();
    // Every length from "the last record not begun" to "one byte short of whole".
    for cut in whole..full.len() as u64 {
        fs::write(&p, &full[..cut as usize]).unwrap();
        let back = read_log(&p).unwrap().unwrap();
        assert_eq!(back.records, rs[..3], "cut at {cut}");
        assert_eq!(back.end, whole);
        let want = (cut > whole).then_some(LogDamage::TornTail {
            offset: whole,
            bytes: cut - whole,
        });
        assert_eq!(back.damage, want, "cut at {cut}");
        truncate_log(&p, back.end).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().len(), whole);
        // Appending after the cut gives a whole log again.
        LogWriter::open(&p, whole)
            .unwrap()
            .append(&rs[3..])
            .unwrap();
        assert_eq!(read_log(&p).unwrap().unwrap().records, rs);
    }
    // A last record whose bytes are all there but one flipped: torn as well.
    let mut flipped = full.clone();
    let last = flipped.len() - 6;
    flipped[last] ^= 1;
    fs::write(&p, &flipped).unwrap();
    let back = read_log(&p).unwrap().unwrap();
    assert_eq!(back.records, rs[..3]);
    assert!(matches!(back.damage, Some(LogDamage::TornTail { .. })));
    let _ = fs::remove_dir_all(d);
}

#[test]
fn damage_before_the_end_is_corruption_and_later_records_are_kept_apart() {
    let d = dir("middle");
    let p = d.join("state.log");
    let rs = records();
    let mut w = LogWriter::create(&p, base()).unwrap();
    w.append(&rs[..1]).unwrap();
    let bad_at = w.len();
    w.append(&rs[1..]).unwrap();
    let mut bytes = fs::read(&p).unwrap();
    // Flip a byte of the second record's CRC: its frame still lines up.
    bytes[bad_at as usize + 4] ^= 0x10;
    fs::write(&p, &bytes).unwrap();
    let back = read_log(&p).unwrap().unwrap();
    assert_eq!(back.records, rs[..1]);
    assert_eq!(back.end, bad_at);
    assert_eq!(
        back.damage,
        Some(LogDamage::Corrupt {
            offset: bad_at,
            later: rs[2..].to_vec()
        })
    );
    // A length that cannot be: nothing after it can be found.
    bytes[bad_at as usize + 3] = 0xff;
    fs::write(&p, &bytes).unwrap();
    let back = read_log(&p).unwrap().unwrap();
    assert_eq!(
        back.damage,
        Some(LogDamage::Corrupt {
            offset: bad_at,
            later: vec![]
        })
    );
    let _ = fs::remove_dir_all(d);
}

#[test]
fn a_bad_header_is_an_error_naming_the_file() {
    let d = dir("header");
    let p = d.join("state.log");
    LogWriter::create(&p, base()).unwrap();
    let mut bytes = fs::read(&p).unwrap();
    bytes[20] ^= 1;
    fs::write(&p, &bytes).unwrap();
    let e = read_log(&p).unwrap_err();
    assert!(matches!(e.kind, StoreErrorKind::BadLog(_)), "{e:?}");
    assert!(e.to_string().contains("state.log"), "{e}");
    fs::write(&p, b"short").unwrap();
    assert!(read_log(&p).is_err());
    let _ = fs::remove_dir_all(d);
}

#[test]
fn a_failed_append_leaves_the_log_as_it_was() {
    let d = dir("full");
    let p = d.join("state.log");
    let rs = records();
    let mut w = LogWriter::create(&p, base()).unwrap();
    w.append(&rs[..1]).unwrap();
    let before = w.len();
    let e = w
        .append_with(&rs[1..], |f, b| {
            f.write_all(&b[..5])?;
            Err(io::Error::from_raw_os_error(28))
        })
        .unwrap_err();
    assert!(matches!(e.kind, StoreErrorKind::DiskFull(_)), "{e:?}");
    assert_eq!(w.len(), before);
    assert_eq!(fs::metadata(&p).unwrap().len(), before);
    w.append(&rs[1..]).unwrap();
    let back = read_log(&p).unwrap().unwrap();
    assert_eq!(back.records, rs);
    assert_eq!(back.damage, None);
    let _ = fs::remove_dir_all(d);
}
