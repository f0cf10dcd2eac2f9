//! Round trips, rotation, and a fuzz-ish property: hostile datagrams never panic and are counted.

use super::*;
use proptest::prelude::*;

fn ring(byte: u8) -> KeyRing {
    KeyRing::new(Key::from_bytes([byte; 32]), vec![]).unwrap()
}

#[test]
fn a_sealed_body_opens_with_the_same_key() {
    let mut n = NonceSource::from_seed([7; 32]);
    let d = encode(&ring(1), &mut n, &("hello".to_string(), 42u64)).unwrap();
    let mut drops = DropCounters::default();
    let v: (String, u64) = decode(&ring(1), &d, &mut drops).unwrap();
    assert_eq!(v, ("hello".to_string(), 42));
    assert_eq!(drops.total(), 0);
}

#[test]
fn a_datagram_sealed_with_another_key_is_dropped_as_unauthenticated() {
    let mut n = NonceSource::from_seed([7; 32]);
    let d = encode(&ring(1), &mut n, &1u8).unwrap();
    let mut drops = DropCounters::default();
    assert_eq!(decode::<u8>(&ring(2), &d, &mut drops), None);
    assert_eq!(drops.unauthenticated, 1);
}

#[test]
fn during_rotation_both_keys_are_accepted_and_the_new_one_sends() {
    let old = Key::from_bytes([1; 32]);
    let new = Key::from_bytes([2; 32]);
    let rotating = KeyRing::new(new.clone(), vec![old.clone()]).unwrap();
    let mut n = NonceSource::from_seed([3; 32]);
    let mut drops = DropCounters::default();
    let from_old = encode(&ring(1), &mut n, &5u8).unwrap();
    assert_eq!(decode::<u8>(&rotating, &from_old, &mut drops), Some(5));
    let from_rotating = encode(&rotating, &mut n, &6u8).unwrap();
    assert_eq!(decode::<u8>(&ring(2), &from_rotating, &mut drops), Some(6));
    assert_eq!(decode::<u8>(&ring(1), &from_rotating, &mut drops), None);
    assert!(KeyRing::new(
        new,
        vec![
            old,
            Key::from_bytes([3; 32]),
            Key::from_bytes([4; 32]),
            Key::from_bytes([5; 32])
        ]
    )
    .is_err());
}

#[test]
fn nonces_differ_between_datagrams_and_repeat_for_the_same_seed() {
    let mut a = NonceSource::from_seed([9; 32]);
    let mut b = NonceSource::from_seed([9; 32]);
    let (a1, a2) = (a.next_nonce(), a.next_nonce());
    assert_ne!(a1, a2);
    assert_eq!(a1, b.next_nonce());
}

#[test]
fn oversized_bodies_are_refused_before_sealing() {
    let mut n = NonceSource::from_seed([0; 32]);
    assert!(matches!(
        seal(&ring(1), n.next_nonce(), &[0; MAX_BODY_BYTES + 1]),
        Err(SealError::TooBig(_))
    ));
    assert!(
        seal(&ring(1), n.next_nonce(), &[0; MAX_BODY_BYTES])
            .unwrap()
            .len()
            <= MAX_DATAGRAM_BYTES
    );
}

#[test]
fn key_hex_parses_and_debug_hides_it() {
    let k = Key::from_hex(&"ab".repeat(32)).unwrap();
    assert_eq!(k, Key::from_bytes([0xab; 32]));
    assert_eq!(format!("{k:?}"), "Key(..)");
    assert!(Key::from_hex("abc").is_err());
    assert!(Key::from_hex(&"zz".repeat(32)).is_err());
}

proptest! {
    #[test]
    fn random_bytes_never_panic_and_are_counted(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut drops = DropCounters::default();
        prop_assert_eq!(decode::<(String, u64)>(&ring(1), &bytes, &mut drops), None);
        prop_assert_eq!(drops.total(), 1);
    }

    #[test]
    fn truncated_or_bit_flipped_datagrams_are_dropped(cut in 0usize..200, flip in 0usize..4000, seed in any::<u8>()) {
        let mut n = NonceSource::from_seed([seed; 32]);
        let good = encode(&ring(1), &mut n, &vec![seed; 100]).unwrap();
        let mut drops = DropCounters::default();
        let truncated = &good[..good.len().saturating_sub(cut + 1)];
        prop_assert_eq!(decode::<Vec<u8>>(&ring(1), truncated, &mut drops), None);
        let mut flipped = good.clone();
        let bit = flip % (flipped.len() * 8);
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(decode::<Vec<u8>>(&ring(1), &flipped, &mut drops), None);
        prop_assert_eq!(drops.total(), 2);
    }

    #[test]
    fn authentic_garbage_bodies_are_counted_as_undecodable(body in proptest::collection::vec(any::<u8>(), 0..MAX_BODY_BYTES)) {
        let mut n = NonceSource::from_seed([1; 32]);
        let d = seal(&ring(1), n.next_nonce(), &body).unwrap();
        let mut drops = DropCounters::default();
        // Whatever the body decodes to, nothing panics, and a refusal is counted.
        if decode::<(u8, String, Vec<u64>)>(&ring(1), &d, &mut drops).is_none() {
            prop_assert_eq!(drops.undecodable, 1);
        }
    }
}
