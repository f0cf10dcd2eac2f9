//! Client commands (fleetctl's verbs) as edits of the replicated catalog.

use super::Node;
use crate::catalog::{self, text_digest, Desired, Target, UnitEntry};

/// fleetctl's verbs, plus leaving the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Make a unit known (target `inactive`). Submitting the same text again changes nothing.
    Submit { name: String, text: String },
    /// Target `loaded`: placed and installed, not started.
    Load { name: String },
    /// Target `launched`: placed, installed and started.
    Start { name: String },
    /// Back to `loaded` (stopped, still placed).
    Stop { name: String },
    /// Back to `inactive` (not placed).
    Unload { name: String },
    /// Forget the unit everywhere (stopped and removed first where it runs).
    Destroy { name: String },
    /// Stop this member's units, then announce that it leaves, so they move at once.
    Leave,
}

/// Why a command was refused. Doesn't affect any state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    UnknownUnit(String),
    /// The unit exists with another text: destroy it first (as fleet requires).
    DifferentText(String),
    TooLarge(String),
    /// This member takes no commands (refused or left).
    NotMember(String),
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandError::UnknownUnit(n) => write!(f, "unit {n} is not known; submit it first"),
            CommandError::DifferentText(n) => {
                write!(
                    f,
                    "unit {n} already exists with a different text; destroy it first"
                )
            }
            CommandError::TooLarge(what) => write!(f, "{what} is over its limit"),
            CommandError::NotMember(why) => write!(f, "this member is not in the cluster: {why}"),
        }
    }
}

impl std::error::Error for CommandError {}

impl Node {
    /// Applies a client command at `now`; the change spreads from here.
    pub fn handle_command(
        &mut self,
        now: crate::time::Millis,
        cmd: Command,
    ) -> Result<(), CommandError> {
        self.now = now.max(self.now);
        if let Some(why) = &self.refused {
            return Err(CommandError::NotMember(why.clone()));
        }
        if self.left || self.leaving_since.is_some() {
            return Err(CommandError::NotMember("leaving".into()));
        }
        let result = self.command(cmd);
        self.after_input();
        result
    }

    /// Applies `cmds` in order as one input: the edits, then one reconcile and one
    /// rumour flush for all of them. Stops at the first refusal, leaving the commands
    /// before it applied and the ones after it untried (as sending them one by one and
    /// stopping at the first error would). Returns how many were applied, and the
    /// refusal if there was one.
    pub fn handle_commands(
        &mut self,
        now: crate::time::Millis,
        cmds: Vec<Command>,
    ) -> (usize, Result<(), CommandError>) {
        self.now = now.max(self.now);
        if let Some(why) = &self.refused {
            return (0, Err(CommandError::NotMember(why.clone())));
        }
        if self.left || self.leaving_since.is_some() {
            return (0, Err(CommandError::NotMember("leaving".into())));
        }
        let mut applied = 0;
        let mut result = Ok(());
        for cmd in cmds {
            if let Err(e) = self.command(cmd) {
                result = Err(e);
                break;
            }
            applied += 1;
        }
        self.after_input();
        (applied, result)
    }

    fn command(&mut self, cmd: Command) -> Result<(), CommandError> {
        let (name, target) = match cmd {
            Command::Leave => {
                self.leaving_since = Some(self.now);
                self.dirty = true;
                return Ok(());
            }
            Command::Submit { name, text } => return self.submit(name, text),
            Command::Destroy { name } => {
                self.known(&name)?;
                let version = self.catalog.next_version(&self.cfg.machine_id);
                return self.write(
                    &name,
                    UnitEntry {
                        version,
                        state: Desired::Destroyed,
                    },
                    None,
                );
            }
            Command::Load { name } | Command::Stop { name } => (name, Target::Loaded),
            Command::Start { name } => (name, Target::Launched),
            Command::Unload { name } => (name, Target::Inactive),
        };
        let (old_target, old_seq, digest, len) = self.known(&name)?;
        if old_target == target {
            return Ok(());
        }
        let version = self.catalog.next_version(&self.cfg.machine_id);
        // The start sequence orders placement by when units were started; it is kept while
        // a unit stays placed (loaded <-> launched) and renewed when it is placed again.
        let seq = if old_target == Target::Inactive {
            version.counter
        } else {
            old_seq
        };
        self.write(
            &name,
            UnitEntry {
                version,
                state: Desired::Live {
                    target,
                    seq,
                    digest,
                    len,
                },
            },
            None,
        )
    }

    fn known(&self, name: &str) -> Result<(Target, u64, catalog::Digest, u32), CommandError> {
        match self.catalog.unit(name).map(|e| &e.state) {
            Some(Desired::Live {
                target,
                seq,
                digest,
                len,
            }) => Ok((*target, *seq, *digest, *len)),
            _ => Err(CommandError::UnknownUnit(name.to_string())),
        }
    }

    fn submit(&mut self, name: String, text: String) -> Result<(), CommandError> {
        if text.len() > catalog::MAX_TEXT_BYTES {
            return Err(CommandError::TooLarge(format!(
                "unit {name} ({} bytes)",
                text.len()
            )));
        }
        let digest = text_digest(&text);
        if let Ok((_, _, have, _)) = self.known(&name) {
            return if have == digest {
                Ok(())
            } else {
                Err(CommandError::DifferentText(name))
            };
        }
        let version = self.catalog.next_version(&self.cfg.machine_id);
        let state = Desired::Live {
            target: Target::Inactive,
            seq: 0,
            digest,
            len: text.len() as u32,
        };
        self.write(&name, UnitEntry { version, state }, Some(text))
    }

    fn write(
        &mut self,
        name: &str,
        entry: UnitEntry,
        text: Option<String>,
    ) -> Result<(), CommandError> {
        let text = text.or_else(|| match &entry.state {
            Desired::Live { digest, .. } => self.catalog.text(digest).map(str::to_string),
            Desired::Destroyed => None,
        });
        match self.catalog.write_unit(self.now, name, entry, text) {
            Ok(w) => {
                self.sync.rumour(w);
                self.dirty = true;
                Ok(())
            }
            Err(e) => Err(CommandError::TooLarge(format!("unit {name}: {e}"))),
        }
    }
}
