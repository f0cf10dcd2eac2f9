//! The control socket's server side: owner-only Unix socket, one task per connection.
//!
//! Each request goes to the event loop with a reply channel; the connection waits
//! for the answer and writes it back. Bad frames close the connection (the client
//! sees why); nothing a client sends can panic or block the agent. Every connection
//! starts with the client's `Hello`: a first request of any other kind (a client from
//! before protocol version 3) is refused with one line saying so, and a `Hello` of
//! another version is answered with ours, then the connection is closed.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use super::rt;
use super::rt::channel::Sender;
use super::rt::io::{AsyncReadExt, AsyncWriteExt};
use super::rt::Async;

use super::driver::Input;
use crate::control::protocol::{self, FrameError, Request, Response, PROTOCOL_VERSION};

/// A connection idle this long between requests is closed.
const IDLE: Duration = Duration::from_secs(60);
/// Longest wait for the event loop's answer (status and journal of another member
/// included: its own timeout is shorter).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// Creates the socket's directory (0700) and the socket (0600): only root may drive
/// the agent, since a unit runs as root. A stale socket left by a crash is replaced;
/// a live one (another agent) is an error.
pub fn bind(path: &Path) -> Result<Async<UnixListener>, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(format!(
                "{}: another shoal agent is listening there",
                path.display()
            ));
        }
        std::fs::remove_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Async::new(listener).map_err(|e| format!("{}: {e}", path.display()))
}

/// Accepts connections until the loop's inbox closes.
pub async fn serve(listener: Async<UnixListener>, tx: Sender<Input>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let tx = tx.clone();
                rt::spawn(async move {
                    if let Err(e) = connection(stream, tx).await {
                        log::debug!("control connection: {e}");
                    }
                })
                .detach();
            }
            Err(e) => {
                log::warn!("control socket accept: {e}");
                rt::Timer::after(Duration::from_millis(100)).await;
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

async fn read_request(s: &mut Async<UnixStream>) -> Result<Request, FrameError> {
    let mut header = [0u8; 4];
    if s.read_exact(&mut header[..1]).await.is_err() {
        return Err(FrameError::Closed);
    }
    s.read_exact(&mut header[1..])
        .await
        .map_err(|_| FrameError::Truncated)?;
    let n = protocol::body_len(header)?;
    let mut body = vec![0u8; n];
    s.read_exact(&mut body)
        .await
        .map_err(|_| FrameError::Truncated)?;
    protocol::decode_body(&body)
}

async fn with_timeout<T>(d: Duration, f: impl std::future::Future<Output = T>) -> Option<T> {
    rt::future::or(async { Some(f.await) }, async {
        rt::Timer::after(d).await;
        None
    })
    .await
}

async fn connection(mut s: Async<UnixStream>, tx: Sender<Input>) -> Result<(), String> {
    let mut greeted = false;
    loop {
        let req = match with_timeout(IDLE, read_request(&mut s)).await {
            None | Some(Err(FrameError::Closed)) => return Ok(()),
            Some(Err(e)) => {
                let answer = Response::Error(format!("bad request: {e}"));
                if let Ok(frame) = protocol::encode(&answer) {
                    let _ = s.write_all(&frame).await;
                }
                return Err(e.to_string());
            }
            Some(Ok(r)) => r,
        };
        // Versions that differ end the connection once both sides know.
        let mut close = false;
        if !greeted {
            let Request::Hello { version } = req else {
                let answer = Response::Error(protocol::older_client());
                if let Ok(frame) = protocol::encode(&answer) {
                    let _ = s.write_all(&frame).await;
                }
                return Err("a request before hello".into());
            };
            greeted = true;
            close = version != PROTOCOL_VERSION;
        }
        let (reply_tx, reply_rx) = rt::channel::bounded(1);
        if tx.send(Input::Control(req, reply_tx)).await.is_err() {
            return Err("agent stopping".into());
        }
        let answer = match with_timeout(ANSWER_TIMEOUT, reply_rx.recv()).await {
            Some(Ok(a)) => a,
            Some(Err(_)) => Response::Error("the agent is stopping".into()),
            None => Response::Error("the agent did not answer in time".into()),
        };
        let frame = protocol::encode(&answer).unwrap_or_else(|e| {
            protocol::encode(&Response::Error(format!("answer: {e}"))).unwrap_or_default()
        });
        s.write_all(&frame).await.map_err(|e| e.to_string())?;
        if close {
            return Err("the client speaks another protocol version".into());
        }
    }
}
