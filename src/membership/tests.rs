//! A few members over a perfect in-memory network with a jumping clock.

use super::*;

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 4700))
}

fn id(i: u8, machine: &str, boot: u64) -> Identity {
    Identity {
        machine: machine.into(),
        addr: addr(i),
        boot,
        metadata: format!("n={i}"),
    }
}

struct Net {
    now: Millis,
    members: Vec<(Membership, bool)>,
}

impl Net {
    fn new(ids: Vec<Identity>) -> Net {
        let members = ids
            .into_iter()
            .enumerate()
            .map(|(i, me)| {
                (
                    Membership::new(Millis(0), me, &Timing::default(), 5, i as u64 + 1),
                    true,
                )
            })
            .collect();
        Net {
            now: Millis(0),
            members,
        }
    }

    fn join_all(&mut self) {
        let peers: Vec<SocketAddr> = self
            .members
            .iter()
            .map(|(m, _)| m.identity().addr)
            .collect();
        let now = self.now;
        for (m, _) in &mut self.members {
            m.announce(now, &peers);
        }
    }

    /// Runs until `until`, delivering every datagram instantly, 1 ms steps between timers.
    fn run(&mut self, until: Millis) -> Vec<(usize, Event)> {
        let mut events = Vec::new();
        loop {
            let mut moved = true;
            while moved {
                moved = false;
                for i in 0..self.members.len() {
                    while let Some((to, bytes)) = self.members[i].0.poll_send() {
                        moved = true;
                        let now = self.now;
                        if !self.members[i].1 {
                            continue;
                        }
                        if let Some((m, true)) = self
                            .members
                            .iter_mut()
                            .find(|(m, _)| m.identity().addr == to)
                        {
                            let _ = m.handle_data(now, &bytes);
                        }
                    }
                    while let Some(e) = self.members[i].0.poll_event() {
                        events.push((i, e));
                    }
                }
            }
            let next = self
                .members
                .iter()
                .filter(|(_, up)| *up)
                .filter_map(|(m, _)| m.poll_timeout())
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = t.max(self.now);
                    let now = self.now;
                    for (m, up) in &mut self.members {
                        if *up {
                            m.handle_timeout(now);
                        }
                    }
                }
                _ => break,
            }
        }
        self.now = until;
        events
    }
}

#[test]
fn members_joined_through_a_static_list_see_each_other() {
    let mut net = Net::new(vec![id(1, "a", 0), id(2, "b", 0), id(3, "c", 0)]);
    net.join_all();
    net.run(Millis(2_000));
    for (m, _) in &net.members {
        assert_eq!(m.live().len(), 2, "{:?}", m.identity());
    }
}

#[test]
fn a_silent_member_is_declared_down_within_a_few_seconds() {
    let mut net = Net::new(vec![id(1, "a", 0), id(2, "b", 0), id(3, "c", 0)]);
    net.join_all();
    net.run(Millis(2_000));
    net.members[2].1 = false;
    let events = net.run(Millis(6_000));
    let down_at_0 = events
        .iter()
        .any(|(i, e)| *i == 0 && matches!(e, Event::MemberDown(x) if x.machine == "c"));
    assert!(down_at_0, "{events:?}");
    assert_eq!(net.members[0].0.live().len(), 1);
}

#[test]
fn a_member_that_leaves_is_down_everywhere_at_once() {
    let mut net = Net::new(vec![id(1, "a", 0), id(2, "b", 0), id(3, "c", 0)]);
    net.join_all();
    net.run(Millis(2_000));
    let now = net.now;
    net.members[2].0.leave(now);
    net.run(Millis(2_300));
    assert_eq!(net.members[0].0.live().len(), 1);
    assert_eq!(net.members[1].0.live().len(), 1);
}

#[test]
fn a_second_member_claiming_a_machine_id_from_another_address_is_reported() {
    let mut net = Net::new(vec![id(1, "a", 0), id(2, "b", 0), id(3, "a", 0)]);
    net.join_all();
    net.run(Millis(2_000));
    let dups = net.members[1].0.duplicate_machine_ids();
    assert_eq!(dups.get("a"), Some(&vec![addr(1), addr(3)]));
}

#[test]
fn a_restarted_member_with_a_higher_boot_replaces_its_old_self() {
    let mut net = Net::new(vec![id(1, "a", 0), id(2, "b", 0)]);
    net.join_all();
    net.run(Millis(2_000));
    net.members[1] = (
        Membership::new(net.now, id(2, "b", 1), &Timing::default(), 5, 99),
        true,
    );
    net.join_all();
    let events = net.run(Millis(3_000));
    assert!(
        events
            .iter()
            .any(|(i, e)| *i == 0 && matches!(e, Event::Renamed(_, n) if n.boot == 1)),
        "{events:?}"
    );
    assert_eq!(net.members[0].0.live(), vec![id(2, "b", 1)]);
}

#[test]
fn member_lists_that_differ_are_repaired_through_bucket_fingerprints() {
    // a knows b and c; d knows only b (it missed the rumours of a and c).
    let mk = |i: u8| {
        Membership::new(
            Millis(0),
            id(i, &format!("m{i}"), 1),
            &Timing::default(),
            4,
            u64::from(i),
        )
    };
    let (mut a, mut d) = (mk(1), mk(4));
    a.apply_alive(
        Millis(0),
        vec![Member::alive(id(2, "m2", 1)), Member::alive(id(3, "m3", 1))],
    );
    d.apply_alive(Millis(0), vec![Member::alive(id(2, "m2", 1))]);
    assert_ne!(a.member_buckets(), d.member_buckets());
    // One exchange each way, as anti-entropy does.
    let for_d = a.members_in_other_buckets(&d.member_buckets(), 100);
    let for_a = d.members_in_other_buckets(&a.member_buckets(), 100);
    let (mine, theirs) = (a.member_buckets(), d.member_buckets());
    assert!(
        for_d.iter().all(|m| {
            let (b, _) = fingerprint(m.id());
            mine[b] != theirs[b]
        }),
        "only differing buckets travel: {for_d:?}"
    );
    d.apply_alive(Millis(1), for_d);
    a.apply_alive(Millis(1), for_a);
    let names =
        |m: &Membership| -> Vec<String> { m.live().into_iter().map(|i| i.machine).collect() };
    assert_eq!(names(&d), vec!["m1", "m2", "m3"]);
    assert_eq!(names(&a), vec!["m2", "m3", "m4"]);
    assert_eq!(a.member_buckets(), d.member_buckets(), "in agreement now");
    // Nothing but alive members is taken from a list.
    d.apply_alive(Millis(2), vec![Member::down(id(2, "m2", 1))]);
    assert_eq!(names(&d), vec!["m1", "m2", "m3"]);
    assert!(
        a.members_in_other_buckets(&[1, 2, 3], 100).is_empty(),
        "malformed"
    );
}

#[test]
fn member_fingerprints_are_fixed_bytes_not_hash_impls() {
    // Members compare these over the wire: a change here is a wire change.
    let m = Membership::new(Millis(0), id(1, "m1", 7), &Timing::default(), 1, 1);
    let buckets = m.member_buckets();
    let set: Vec<(usize, u64)> = buckets
        .iter()
        .enumerate()
        .filter(|(_, v)| **v != 0)
        .map(|(i, v)| (i, *v))
        .collect();
    assert_eq!(set.len(), 1, "one member, one bucket: {buckets:?}");
    assert_eq!(set, vec![(3, 11436328640784613497)]);
}

#[test]
fn a_hex_machine_id_travels_as_16_bytes_and_comes_back_the_same() {
    let hex = "0123456789abcdef0123456789abcdef";
    for machine in [hex, "m1", "0123456789ABCDEF0123456789ABCDEF", ""] {
        let me = id(1, machine, 7);
        let bytes = postcard::to_allocvec(&me).expect("encodes");
        let back: Identity = postcard::from_bytes(&bytes).expect("decodes");
        assert_eq!(back, me, "{machine:?}");
    }
    let long = postcard::to_allocvec(&id(1, &hex.to_uppercase(), 7)).expect("encodes");
    let short = postcard::to_allocvec(&id(1, hex, 7)).expect("encodes");
    // 32 hex digits with their length byte, against 16 bytes.
    assert_eq!(long.len() - short.len(), 17);
}

#[test]
fn a_message_for_an_earlier_boot_of_a_member_is_not_taken_by_it() {
    use foca::{Codec, Header, Message};
    let (old, new) = (id(2, "m2", 1), id(2, "m2", 2));
    let (mut codec, _me) = codec::SwimCodec::new(new.clone());
    let header = |dst: &Identity| Header {
        src: id(1, "m1", 1),
        src_incarnation: 0,
        dst: dst.clone(),
        message: Message::<Identity>::Ping(1),
    };
    let mut buf = Vec::new();
    codec
        .encode_header(&header(&new), &mut buf)
        .expect("encodes");
    assert_eq!(codec.decode_header(&buf[..]).expect("decodes").dst, new);
    let mut buf = Vec::new();
    codec
        .encode_header(&header(&old), &mut buf)
        .expect("encodes");
    let got = codec.decode_header(&buf[..]).expect("decodes").dst;
    assert_ne!(got, new, "a stand-in, not us");
    assert_eq!(
        got.addr, new.addr,
        "at our address: an Announce to it is ours"
    );
}
