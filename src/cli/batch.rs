//! A multi-unit command as `Batch` requests: one for an ordinary command, several
//! under the frame limit for thousands of files.
//!
//! Architecture invariant: order is kept across requests (every submit before any
//! verb, names in the order given), each step is sent exactly once, and a refusal
//! stops the command there, as one request per unit did.

use super::exit::EXIT_UNMET;
use super::session::{unexpected, Fail, Session};
use crate::control::protocol::BATCH_BUDGET_BYTES;
use crate::control::{Request, Response, Verb};

/// What a string costs in a request at most: postcard's length varint and the bytes.
fn cost(s: &str) -> usize {
    s.len() + 5
}

/// The requests that carry `submit` then `verb` on `names`, each estimated at no more
/// than `budget` bytes (a single step larger than the budget goes alone).
pub fn requests(
    submit: &[(String, String)],
    verb: Option<Verb>,
    names: &[String],
    budget: usize,
) -> Vec<Request> {
    let empty = || Request::Batch {
        submit: Vec::new(),
        verb,
        names: Vec::new(),
    };
    let (mut out, mut cur, mut used) = (Vec::new(), empty(), 16);
    let steps = submit
        .iter()
        .map(|(n, t)| (cost(n) + cost(t), Some((n, t)), None))
        .chain(names.iter().map(|n| (cost(n), None, Some(n))));
    for (size, sub, name) in steps {
        if used + size > budget && cur != empty() {
            out.push(std::mem::replace(&mut cur, empty()));
            used = 16;
        }
        used += size;
        if let Request::Batch { submit, names, .. } = &mut cur {
            if let Some((n, t)) = sub {
                submit.push((n.clone(), t.clone()));
            }
            if let Some(n) = name {
                names.push(n.clone());
            }
        }
    }
    if cur != empty() {
        out.push(cur);
    }
    out
}

/// Sends `submit` then `verb` on `names`. Returns how many steps were applied and,
/// if the command stopped early, why.
pub fn send(
    s: &mut Session,
    submit: &[(String, String)],
    verb: Option<Verb>,
    names: &[String],
) -> (usize, Option<Fail>) {
    let mut done = 0;
    for req in requests(submit, verb, names, BATCH_BUDGET_BYTES) {
        match s.call(&req) {
            Ok(Response::Batch { applied, error }) => {
                done += applied as usize;
                if let Some(e) = error {
                    return (done, Some(Fail(EXIT_UNMET, e)));
                }
            }
            Ok(other) => return (done, Some(unexpected(&other))),
            Err(f) => return (done, Some(f)),
        }
    }
    (done, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::protocol::{encode, MAX_FRAME_BYTES};

    fn unpack(reqs: &[Request]) -> (Vec<(String, String)>, Vec<String>) {
        let (mut subs, mut names) = (Vec::new(), Vec::new());
        for r in reqs {
            let Request::Batch {
                submit, names: n, ..
            } = r
            else {
                panic!("{r:?}");
            };
            subs.extend(submit.iter().cloned());
            names.extend(n.iter().cloned());
        }
        (subs, names)
    }

    #[test]
    fn ten_thousand_units_go_in_frames_under_the_cap_each_once_in_order() {
        let text = format!("[Service]\nExecStart=/bin/sleep {}\n", "9".repeat(200));
        let submit: Vec<(String, String)> = (0..10_000)
            .map(|i| (format!("u{i}.service"), text.clone()))
            .collect();
        let names: Vec<String> = submit.iter().map(|(n, _)| n.clone()).collect();
        let reqs = requests(&submit, Some(Verb::Start), &names, BATCH_BUDGET_BYTES);
        assert!(reqs.len() > 1, "2.4 MB of files is more than one request");
        for r in &reqs {
            let frame = encode(r).expect("under the cap");
            assert!(frame.len() <= BATCH_BUDGET_BYTES, "{}", frame.len());
            assert!(frame.len() < MAX_FRAME_BYTES);
        }
        assert_eq!(unpack(&reqs), (submit, names));
    }

    #[test]
    fn a_small_command_is_one_request_and_a_huge_step_goes_alone() {
        let names = vec!["a.service".to_string(), "b.service".to_string()];
        let reqs = requests(&[], Some(Verb::Stop), &names, BATCH_BUDGET_BYTES);
        assert_eq!(
            reqs,
            vec![Request::Batch {
                submit: vec![],
                verb: Some(Verb::Stop),
                names: names.clone()
            }]
        );
        // `start` of fifty new units: their submits and starts in one request.
        let fifty: Vec<(String, String)> = (0..50)
            .map(|i| {
                (
                    format!("u{i}.service"),
                    "[Service]\nExecStart=/bin/true\n".into(),
                )
            })
            .collect();
        let fifty_names: Vec<String> = fifty.iter().map(|(n, _)| n.clone()).collect();
        let reqs = requests(&fifty, Some(Verb::Start), &fifty_names, BATCH_BUDGET_BYTES);
        assert_eq!(reqs.len(), 1);
        assert_eq!(unpack(&reqs), (fifty, fifty_names));
        let big = vec![("a.service".to_string(), "x".repeat(100))];
        let reqs = requests(&big, Some(Verb::Load), &names, 50);
        assert_eq!(reqs.len(), 2, "the big submit alone, then both names");
        assert_eq!(unpack(&reqs[..1]), (big.clone(), vec![]));
        assert_eq!(unpack(&reqs), (big, names));
        assert!(requests(&[], None, &[], 50).is_empty());
    }
}
