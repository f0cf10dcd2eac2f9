//! One conversation with the agent: requests, answers, and a failed command's exit status.

use super::exit::EXIT_UNMET;
use crate::control::{Client, Endpoint, MachineInfo, Request, Response, UnitInfo};

/// A failed command: what to print and the exit status.
pub struct Fail(pub i32, pub String);

impl From<String> for Fail {
    fn from(s: String) -> Fail {
        Fail(EXIT_UNMET, s)
    }
}

pub struct Session {
    pub client: Client,
}

impl Session {
    pub fn open(endpoint: &Endpoint) -> Result<Session, Fail> {
        Ok(Session {
            client: Client::connect(endpoint)?,
        })
    }

    pub fn call(&mut self, req: &Request) -> Result<Response, Fail> {
        match self.client.call(req)? {
            Response::Error(e) => Err(Fail(EXIT_UNMET, e)),
            r => Ok(r),
        }
    }

    pub fn units(&mut self) -> Result<Vec<UnitInfo>, Fail> {
        match self.call(&Request::ListUnits)? {
            Response::Units(u) => Ok(u),
            other => Err(unexpected(&other)),
        }
    }

    pub fn machines(&mut self) -> Result<Vec<MachineInfo>, Fail> {
        match self.call(&Request::ListMachines)? {
            Response::Machines(m) => Ok(m),
            other => Err(unexpected(&other)),
        }
    }
}

pub fn unexpected(r: &Response) -> Fail {
    Fail(
        EXIT_UNMET,
        format!("unexpected answer from the agent: {r:?}"),
    )
}
