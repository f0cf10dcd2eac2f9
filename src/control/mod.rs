//! The Unix control socket: a length-prefixed postcard request/response protocol and its client.
//!
//! Architecture invariant: [`protocol`] is values and framing only (no sockets); the
//! server side lives in the agent runtime, the blocking client in [`client`]. Every
//! frame is bounded and every client call has a timeout, so nothing hangs. Every
//! connection starts with the client's `Hello { version }`; versions that differ say
//! so in one line. `control` imports nothing from `agent` or `cli`.

pub mod client;
pub mod protocol;

pub use client::{Client, Endpoint};
pub use protocol::{
    MachineInfo, PlacementView, Request, Response, UnitInfo, UnitRun, Verb, ViewUnit,
    PROTOCOL_VERSION,
};
