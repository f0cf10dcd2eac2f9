//! `status`, `journal` and `journal -f`: output of a tool run on the member that holds
//! each unit (the agent finds it).

use std::io::Write;
use std::time::Duration;

use super::exit::{EXIT_OK, EXIT_UNMET};
use super::session::{unexpected, Fail, Session};
use crate::control::{Endpoint, Request, Response};
use crate::journal::Follower;

/// `journal -f` asks for new lines this often while there are none.
const FOLLOW_POLL: Duration = Duration::from_millis(400);

/// `journal -f`: pages from the member that holds the unit, until interrupted (or the
/// reader of our output goes away, or the unit is destroyed).
pub fn follow(
    s: &mut Session,
    name: &str,
    lines: u32,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, Fail> {
    let mut f = Follower::new(name, lines);
    loop {
        let req = Request::Follow {
            name: name.to_string(),
            from: f.position(),
        };
        let step = match s.client.call(&req)? {
            Response::Output { machine, text, .. } => f.page(&machine, &text),
            Response::Error(e) if !f.started() => return Err(Fail(EXIT_UNMET, e)),
            Response::Error(e) => {
                let known = s.units()?.iter().any(|u| u.name == name);
                f.failed(&e, known)
            }
            other => return Err(unexpected(&other)),
        };
        if !step.print.is_empty()
            && out
                .write_all(step.print.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
        {
            // Whoever reads our output is gone (`| head`): done.
            return Ok(EXIT_OK);
        }
        for n in &step.notes {
            let _ = writeln!(err, "{n}");
        }
        if let Some(code) = step.exit {
            return Ok(code);
        }
        if !step.at_once {
            std::thread::sleep(FOLLOW_POLL);
        }
    }
}

/// `status UNIT...` (`journal` false) or `journal [-n LINES] UNIT...`: each unit's
/// output in turn, a blank line between; a tool's non-zero exit status is passed on.
pub fn status_or_journal(
    endpoint: &Endpoint,
    names: &[String],
    journal: Option<u32>,
    out: &mut dyn Write,
) -> Result<i32, Fail> {
    let mut s = Session::open(endpoint)?;
    let mut code = EXIT_OK;
    for (i, name) in names.iter().enumerate() {
        let name = name.clone();
        let req = match journal {
            None => Request::Status { name },
            Some(lines) => Request::Journal { name, lines },
        };
        match s.call(&req)? {
            Response::Output { text, code: c, .. } => {
                if i > 0 {
                    let _ = writeln!(out);
                }
                let _ = write!(out, "{text}");
                // systemctl status exits 3 for a stopped unit: fleetctl passes it on.
                if c != 0 {
                    code = c;
                }
            }
            other => return Err(unexpected(&other)),
        }
    }
    Ok(code)
}
