//! Control messages and their framing: `[length: u32 big-endian][postcard body]`.
//!
//! A connection carries any number of request/response pairs, one at a time. A frame
//! longer than [`MAX_FRAME_BYTES`], a truncated frame or an undecodable body is an
//! error for that connection, never a panic.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::catalog::Target;
use crate::journal::Position;
use crate::states::ActiveState;

/// The largest frame either side sends or accepts: a full `list-units` of a large
/// cluster, or a journal excerpt, fits well within it.
pub const MAX_FRAME_BYTES: usize = 8 << 20;
/// Protocol version: a client and agent that disagree say so instead of misreading.
///
/// 1: the first. 2: `Follow` (`journal -f`). 3: the client's `Hello` carries its
/// version and comes first on every connection; `PlacementView` (`why`, `plan`).
/// 4: `Batch`, so a multi-unit command is one request and one catalog change (the
/// client sends it for every `submit`/`load`/`start`/`stop`/`unload`/`destroy`, which a
/// version-3 agent could not read).
pub const PROTOCOL_VERSION: u32 = 4;

/// The byte budget of one `Batch` request the client builds: far under
/// [`MAX_FRAME_BYTES`] even with a unit of the largest text, so a command of
/// thousands of files goes as several frames rather than one refused one.
pub const BATCH_BUDGET_BYTES: usize = 1 << 20;

/// What a client asks the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// The first request on every connection: the client's protocol version. The agent
    /// answers with its own (and its machine id) and, if they differ, closes. Stays
    /// the first variant with this one field, so every version can read it.
    Hello {
        version: u32,
    },
    Submit {
        name: String,
        text: String,
    },
    Load {
        name: String,
    },
    Start {
        name: String,
    },
    Stop {
        name: String,
    },
    Unload {
        name: String,
    },
    Destroy {
        name: String,
    },
    ListUnits,
    ListMachines,
    /// The unit's file text as submitted.
    Cat {
        name: String,
    },
    /// `systemctl status UNIT` on the member that holds the unit.
    Status {
        name: String,
    },
    /// `journalctl -u UNIT -n LINES` on the member that holds the unit.
    Journal {
        name: String,
        lines: u32,
    },
    /// One page of `journal -f` from the member that holds the unit: answered with
    /// `Output`, whose text is a page (see [`crate::journal`]). Added last, so the
    /// other requests keep their encoding.
    Follow {
        name: String,
        from: Position,
    },
    /// What this member places with: its members, who runs what (reports of the
    /// members' current boots only) and the units to place. Answered with `View`.
    PlacementView,
    /// A multi-unit command as one catalog change: every `submit` in order, then `verb`
    /// (if any) on every name in order. Applied in that order up to the first refusal,
    /// which stops the batch (as the client's one request per unit did before version
    /// 4). Answered with `Batch`. Added last, so the other requests keep their encoding.
    Batch {
        submit: Vec<(String, String)>,
        verb: Option<Verb>,
        names: Vec<String>,
    },
}

/// What a [`Request::Batch`] asks of each of its names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verb {
    Load,
    Start,
    Stop,
    Unload,
    Destroy,
}

/// The agent's answer to one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Hello {
        version: u32,
        machine: String,
    },
    Ok,
    /// The request was refused or failed; the text says why.
    Error(String),
    Units(Vec<UnitInfo>),
    Machines(Vec<MachineInfo>),
    Text(String),
    /// A command's output on `machine`, and its exit code.
    Output {
        machine: String,
        text: String,
        code: i32,
    },
    View(PlacementView),
    /// The answer to a [`Request::Batch`]: how many of its steps (submits first, then
    /// names) were applied, and why the next one was refused, if one was (the steps
    /// after it were not tried).
    Batch {
        applied: u32,
        error: Option<String>,
    },
}

/// The inputs of the agent's own placement, so that `why` explains exactly what the
/// member decided from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementView {
    /// (machine id, metadata) of every member placement considers, by id.
    pub members: Vec<(String, String)>,
    /// Unit -> the members that run it, as placement counts them.
    pub running: Vec<(String, Vec<String>)>,
    /// The units to place (desired state loaded or launched), by name.
    pub units: Vec<ViewUnit>,
}

/// One unit the agent places.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewUnit {
    pub name: String,
    /// Start order.
    pub seq: u64,
    /// The unit's file; `None` while it has not reached this member.
    pub text: Option<String>,
}

/// One desired unit as this agent sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitInfo {
    pub name: String,
    /// The text's content address, hex.
    pub hash: String,
    /// The desired state (sent as its word: `inactive`, `loaded` or `launched`).
    #[serde(with = "crate::states::word")]
    pub dstate: Target,
    /// Start order (placement gives earlier starts their pick first).
    pub seq: u64,
    /// Machine ids placement gives the unit (several for a global unit).
    pub machines: Vec<String>,
    /// Why the unit is not placed (only when it is loaded or launched and waits).
    pub reason: Option<String>,
    /// What live members' systemd reports for the unit.
    pub runs: Vec<UnitRun>,
}

/// One member's systemd state of one unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitRun {
    pub machine: String,
    /// systemd's ActiveState (sent as its word).
    pub active: ActiveState,
    pub sub: String,
}

/// One live member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineInfo {
    pub id: String,
    pub ip: String,
    pub metadata: String,
}

/// What an agent answers a connection's first request when it is not `Hello`: a
/// client from before version 3, which never sends one.
pub fn older_client() -> String {
    format!(
        "this shoal client speaks an older control protocol than the agent (version \
         {PROTOCOL_VERSION}): use the same shoal version for the client and the agent"
    )
}

/// What a client says when the agent at `agent` answered its `Hello` with `version`.
pub fn version_mismatch(agent: &str, version: u32) -> String {
    format!(
        "this shoal speaks control protocol version {PROTOCOL_VERSION}, the agent at \
         {agent} speaks version {version}: use the same shoal version for the client and the agent"
    )
}

/// What a client says when the agent could not read its `Hello` (an agent from before
/// version 3 refuses its trailing version as a bad request).
pub fn older_agent(agent: &str) -> String {
    format!(
        "the agent at {agent} speaks an older control protocol than this shoal (version \
         {PROTOCOL_VERSION}): use the same shoal version for the client and the agent"
    )
}

/// Why a frame could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix announces more than [`MAX_FRAME_BYTES`].
    TooLarge(usize),
    /// The stream ended inside a frame.
    Truncated,
    /// The body is not a message of the expected type (or has trailing bytes).
    Undecodable(String),
    /// The stream ended cleanly between frames.
    Closed,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge(n) => {
                write!(f, "frame of {n} bytes exceeds {MAX_FRAME_BYTES} bytes")
            }
            FrameError::Truncated => write!(f, "connection closed inside a frame"),
            FrameError::Undecodable(e) => write!(f, "undecodable message: {e}"),
            FrameError::Closed => write!(f, "connection closed"),
        }
    }
}

impl std::error::Error for FrameError {}

/// `value` framed for the wire. Refuses (rather than sends) an oversize frame.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, FrameError> {
    let body = postcard::to_allocvec(value).map_err(|e| FrameError::Undecodable(e.to_string()))?;
    if body.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(body.len()));
    }
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// The body length a frame header announces, checked against the limit.
pub fn body_len(header: [u8; 4]) -> Result<usize, FrameError> {
    let n = u32::from_be_bytes(header) as usize;
    if n > MAX_FRAME_BYTES {
        Err(FrameError::TooLarge(n))
    } else {
        Ok(n)
    }
}

/// Decodes a whole body; trailing bytes are an error.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    match postcard::take_from_bytes::<T>(body) {
        Ok((v, [])) => Ok(v),
        Ok(_) => Err(FrameError::Undecodable("trailing bytes".into())),
        Err(e) => Err(FrameError::Undecodable(e.to_string())),
    }
}

/// Reads one frame from a blocking reader. I/O errors (timeouts included) come back as
/// `Err(Err(io))`, protocol errors as `Err(Ok(frame))`.
pub fn read_frame<T: DeserializeOwned>(
    r: &mut impl std::io::Read,
) -> Result<T, Result<FrameError, std::io::Error>> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Err(Ok(FrameError::Closed)),
            Ok(0) => return Err(Ok(FrameError::Truncated)),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Err(e)),
        }
    }
    let n = body_len(header).map_err(Ok)?;
    let mut body = vec![0u8; n];
    r.read_exact(&mut body).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Ok(FrameError::Truncated)
        } else {
            Err(e)
        }
    })?;
    decode_body(&body).map_err(Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
        read_frame(&mut &bytes[..]).map_err(|e| e.expect("no io error from a slice"))
    }

    #[test]
    fn requests_and_responses_round_trip() {
        let reqs = [
            Request::Hello {
                version: PROTOCOL_VERSION,
            },
            Request::PlacementView,
            Request::Submit {
                name: "a.service".into(),
                text: "[Service]\nExecStart=/bin/true\n".into(),
            },
            Request::Journal {
                name: "a.service".into(),
                lines: 10,
            },
            Request::Follow {
                name: "a.service".into(),
                from: Position::After("s=1;i=2;t=3".into()),
            },
            Request::Batch {
                submit: vec![("a.service".into(), "[Service]\n".into())],
                verb: Some(Verb::Start),
                names: vec!["a.service".into(), "b.service".into()],
            },
        ];
        for r in reqs {
            assert_eq!(read::<Request>(&encode(&r).unwrap()).unwrap(), r);
        }
        let resp = Response::Units(vec![UnitInfo {
            name: "a.service".into(),
            hash: "00ff".into(),
            dstate: Target::Launched,
            seq: 3,
            machines: vec!["m1".into()],
            reason: None,
            runs: vec![UnitRun {
                machine: "m1".into(),
                active: "active".into(),
                sub: "running".into(),
            }],
        }]);
        assert_eq!(read::<Response>(&encode(&resp).unwrap()).unwrap(), resp);
        let view = Response::View(PlacementView {
            members: vec![("m1".into(), "disk=ssd".into())],
            running: vec![("a.service".into(), vec!["m1".into()])],
            units: vec![ViewUnit {
                name: "a.service".into(),
                seq: 3,
                text: None,
            }],
        });
        assert_eq!(read::<Response>(&encode(&view).unwrap()).unwrap(), view);
        let batch = Response::Batch {
            applied: 2,
            error: Some("unit c.service is not known; submit it first".into()),
        };
        assert_eq!(read::<Response>(&encode(&batch).unwrap()).unwrap(), batch);
    }

    /// Every version reads a `Hello` the same way: the first variant, then the version.
    #[test]
    fn hello_keeps_its_encoding_across_versions() {
        let frame = encode(&Request::Hello { version: 7 }).unwrap();
        assert_eq!(frame, [0, 0, 0, 2, 0, 7]);
        let frame = encode(&Response::Hello {
            version: 7,
            machine: "m".into(),
        })
        .unwrap();
        assert_eq!(frame, [0, 0, 0, 4, 0, 7, 1, b'm']);
        // A version-1 client's requests keep their encoding: only `Hello` grew.
        assert_eq!(encode(&Request::ListUnits).unwrap(), [0, 0, 0, 1, 7]);
    }

    #[test]
    fn mismatch_messages_are_one_line_and_name_both_versions() {
        let agent = "unix:///run/shoal/shoal.sock";
        for m in [
            version_mismatch(agent, 2),
            older_agent(agent),
            older_client(),
        ] {
            assert!(!m.contains('\n'), "{m}");
            assert!(m.contains(&PROTOCOL_VERSION.to_string()), "{m}");
            assert!(m.contains("use the same shoal version"), "{m}");
        }
        assert!(version_mismatch(agent, 2).contains("speaks version 2"));
    }

    #[test]
    fn oversize_truncated_and_garbage_frames_are_errors() {
        let huge = ((MAX_FRAME_BYTES + 1) as u32).to_be_bytes();
        assert_eq!(
            read::<Request>(&huge),
            Err(FrameError::TooLarge(MAX_FRAME_BYTES + 1))
        );
        assert_eq!(read::<Request>(&[]), Err(FrameError::Closed));
        assert_eq!(read::<Request>(&[0, 0]), Err(FrameError::Truncated));
        let mut frame = encode(&Request::ListUnits).unwrap();
        frame.extend_from_slice(&[0, 0, 0, 9, 1]);
        let mut r = &frame[..];
        assert_eq!(read_frame::<Request>(&mut r).unwrap(), Request::ListUnits);
        assert!(matches!(
            read_frame::<Request>(&mut r),
            Err(Ok(FrameError::Truncated))
        ));
        assert!(matches!(
            read::<Request>(&[0, 0, 0, 2, 0xff, 0xff]),
            Err(FrameError::Undecodable(_))
        ));
        // Trailing bytes inside a frame.
        let mut body = postcard::to_allocvec(&Request::ListUnits).unwrap();
        body.push(0);
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend(body);
        assert!(matches!(
            read::<Request>(&frame),
            Err(FrameError::Undecodable(_))
        ));
    }

    #[test]
    fn any_bytes_give_a_value_or_an_error_never_a_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..400usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let mut framed = (len as u32).to_be_bytes().to_vec();
            framed.extend(&bytes);
            let _ = read::<Request>(&framed);
            let _ = read::<Response>(&framed);
            let _ = read::<Response>(&bytes);
        }
    }
}
