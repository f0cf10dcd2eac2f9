//! The blocking control-socket client used by `shoal COMMAND`: every call has a timeout.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use super::protocol::{self, Request, Response};

/// How long one request may take before the client gives up (status and journal run
/// commands on another member, hence not shorter).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the agent listens unless told otherwise (the agent's `socket` setting and
/// the client's `--endpoint` both default to it).
pub const DEFAULT_SOCKET: &str = "/run/shoal/shoal.sock";

/// Where the agent listens: `unix:///run/shoal/shoal.sock` or a bare path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint(pub PathBuf);

impl Endpoint {
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        if let Some(path) = text.strip_prefix("unix://") {
            if path.starts_with('/') {
                return Ok(Endpoint(PathBuf::from(path)));
            }
        } else if text.starts_with('/') {
            return Ok(Endpoint(PathBuf::from(text)));
        }
        Err(format!(
            "endpoint {text:?}: expected unix:///path/to/shoal.sock"
        ))
    }
}

impl Default for Endpoint {
    fn default() -> Endpoint {
        Endpoint(PathBuf::from(DEFAULT_SOCKET))
    }
}

/// One connection to an agent.
pub struct Client {
    stream: UnixStream,
    endpoint: Endpoint,
}

impl Client {
    pub fn connect(endpoint: &Endpoint) -> Result<Client, String> {
        let stream = UnixStream::connect(&endpoint.0).map_err(|e| {
            format!(
                "cannot reach the shoal agent at unix://{}: {e} (is `shoal agent` running? \
                 is this the right --endpoint? the socket is root-only)",
                endpoint.0.display()
            )
        })?;
        let mut client = Client {
            stream,
            endpoint: endpoint.clone(),
        };
        client.set_timeout(CALL_TIMEOUT)?;
        client.hello()?;
        Ok(client)
    }

    /// The handshake every connection starts with: our version for the agent's. A
    /// mismatch either way is one line that says so, not a misread answer later.
    fn hello(&mut self) -> Result<(), String> {
        let agent = self.url();
        let version = protocol::PROTOCOL_VERSION;
        match self.call(&Request::Hello { version })? {
            Response::Hello { version: v, .. } if v == version => Ok(()),
            Response::Hello { version: v, .. } => Err(protocol::version_mismatch(&agent, v)),
            // An agent from before version 3 cannot read a `Hello` with a version.
            Response::Error(e) if e.starts_with("bad request") => {
                Err(protocol::older_agent(&agent))
            }
            Response::Error(e) => Err(format!("{agent}: {e}")),
            other => Err(format!("{agent}: unexpected answer to hello: {other:?}")),
        }
    }

    fn url(&self) -> String {
        format!("unix://{}", self.endpoint.0.display())
    }

    /// Changes how long each following call may take.
    pub fn set_timeout(&self, t: Duration) -> Result<(), String> {
        self.stream
            .set_read_timeout(Some(t))
            .and_then(|()| self.stream.set_write_timeout(Some(t)))
            .map_err(|e| format!("control socket: {e}"))
    }

    /// Sends `req` and waits for the answer.
    pub fn call(&mut self, req: &Request) -> Result<Response, String> {
        let where_ = self.url();
        let frame = protocol::encode(req).map_err(|e| format!("request: {e}"))?;
        self.stream
            .write_all(&frame)
            .map_err(|e| format!("{where_}: {e}"))?;
        protocol::read_frame::<Response>(&mut self.stream).map_err(|e| match e {
            Ok(f) => format!("{where_}: {f}"),
            Err(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                format!("{where_}: the agent did not answer in time")
            }
            Err(io) => format!("{where_}: {io}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_unix_urls_or_absolute_paths() {
        assert_eq!(
            Endpoint::parse("unix:///run/shoal/shoal.sock").unwrap().0,
            PathBuf::from("/run/shoal/shoal.sock")
        );
        assert_eq!(
            Endpoint::parse("/tmp/s").unwrap().0,
            PathBuf::from("/tmp/s")
        );
        assert!(Endpoint::parse("http://x").is_err());
        assert!(Endpoint::parse("unix://rel").is_err());
    }

    /// A one-connection agent on a socket in a fresh directory that answers every
    /// request with `answer`.
    fn fake_agent(answer: Response) -> (Endpoint, std::thread::JoinHandle<Option<Request>>) {
        let dir = std::env::temp_dir().join(format!(
            "shoal-client-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let serve = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().ok()?;
            let req = protocol::read_frame::<Request>(&mut s).ok();
            let _ = s.write_all(&protocol::encode(&answer).unwrap());
            req
        });
        (Endpoint(path), serve)
    }

    #[test]
    fn a_client_names_both_versions_when_the_agent_speaks_another() {
        let (endpoint, agent) = fake_agent(Response::Hello {
            version: protocol::PROTOCOL_VERSION + 1,
            machine: "m".into(),
        });
        let e = Client::connect(&endpoint).err().unwrap();
        assert_eq!(
            agent.join().unwrap(),
            Some(Request::Hello {
                version: protocol::PROTOCOL_VERSION
            })
        );
        assert!(!e.contains('\n'), "{e}");
        assert!(
            e.contains(&format!(
                "speaks control protocol version {}",
                protocol::PROTOCOL_VERSION
            )) && e.contains(&format!(
                "speaks version {}",
                protocol::PROTOCOL_VERSION + 1
            )),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(endpoint.0.parent().unwrap());
    }

    #[test]
    fn a_client_says_so_when_an_older_agent_cannot_read_its_hello() {
        // What a version-1 agent answers a `Hello` that carries a version.
        let (endpoint, agent) = fake_agent(Response::Error(
            "bad request: undecodable message: trailing bytes".into(),
        ));
        let e = Client::connect(&endpoint).err().unwrap();
        agent.join().unwrap();
        assert!(!e.contains('\n'), "{e}");
        assert!(e.contains("speaks an older control protocol"), "{e}");
        let _ = std::fs::remove_dir_all(endpoint.0.parent().unwrap());
    }
}
