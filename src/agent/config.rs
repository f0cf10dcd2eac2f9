//! The agent's settings: flags over `SHOAL_*` environment over `/etc/shoal/shoal.conf` over defaults.
//!
//! Architecture invariant: parsing is pure (the environment and the file's text are
//! arguments), so precedence and every error message are unit-tested; only
//! [`Settings::load`] reads the file, the environment and the key and machine-id files.
//! Every error names where the bad value came from (flag, variable, or file and line).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::wire::{Key, KeyRing, MAX_KEYS};

/// The UDP port shoal gossips on unless told otherwise (fleet had none; 4774 is unassigned).
pub const DEFAULT_PORT: u16 = 4774;
pub const DEFAULT_BIND: &str = "0.0.0.0:4774";
pub const DEFAULT_CONFIG: &str = "/etc/shoal/shoal.conf";
pub const DEFAULT_KEY_FILE: &str = "/etc/shoal/cluster.key";
pub const DEFAULT_DATA_DIR: &str = "/var/lib/shoal";
pub use crate::control::client::DEFAULT_SOCKET;
pub const DEFAULT_MACHINE_ID_FILE: &str = "/etc/machine-id";

/// The keys the config file, the environment (`SHOAL_` + upper case) and the flags
/// (`--` + dashes) share. fleet's names where fleet had the setting.
const KEYS: [&str; 8] = [
    "bind",
    "peers",
    "metadata",
    "key_file",
    "data_dir",
    "public_ip",
    "machine_id_file",
    "socket",
];

/// Where one raw value came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    File(String, u32),
    Env(String),
    Flag(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::File(file, line) => write!(f, "{file}:{line}"),
            Source::Env(var) => write!(f, "environment variable {var}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// Raw settings by key, each with its source; later layers replace earlier ones.
pub type Raw = BTreeMap<&'static str, (String, Source)>;

/// Everything `shoal agent` runs with, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Where the UDP socket binds.
    pub bind: SocketAddr,
    /// The address other members reach this one at: `public_ip` with bind's port, or bind.
    pub advertise: SocketAddr,
    pub peers: Vec<SocketAddr>,
    pub metadata: String,
    pub key_file: PathBuf,
    pub data_dir: PathBuf,
    pub machine_id_file: PathBuf,
    pub socket: PathBuf,
}

/// Parses the config file's text: `key = value` or `key=value`, `#` comments, blank lines.
pub fn parse_file(file: &str, text: &str) -> Result<Raw, String> {
    let mut raw = Raw::new();
    for (i, line) in text.lines().enumerate() {
        let n = i as u32 + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "{file}:{n}: expected `key = value`, found {line:?}"
            ));
        };
        let key = key.trim();
        let Some(known) = KEYS.iter().find(|k| **k == key) else {
            return Err(format!(
                "{file}:{n}: unknown key {key:?}; known keys: {}",
                KEYS.join(", ")
            ));
        };
        let value = unquote(value.trim());
        raw.insert(
            known,
            (value.to_string(), Source::File(file.to_string(), n)),
        );
    }
    Ok(raw)
}

/// fleet's config accepted `key="value"`; so do we.
fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// Adds `SHOAL_<KEY>` variables from `env` over `raw`.
pub fn overlay_env(raw: &mut Raw, env: &BTreeMap<String, String>) {
    for key in KEYS {
        let var = format!("SHOAL_{}", key.to_ascii_uppercase());
        if let Some(v) = env.get(&var) {
            raw.insert(key, (v.clone(), Source::Env(var)));
        }
    }
}

/// The agent's command line: settings flags plus `--config`.
#[derive(Debug, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub raw: Raw,
    pub help: bool,
}

/// Parses `shoal agent`'s flags (`--key value` or `--key=value`; dashes for underscores).
pub fn parse_flags(args: Vec<OsString>) -> Result<Flags, String> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let mut flags = Flags::default();
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => flags.help = true,
            Long("config") => {
                flags.config = Some(parser.value().map_err(|e| e.to_string())?.into());
            }
            Long(name) => {
                let key = name.replace('-', "_");
                let Some(known) = KEYS.iter().find(|k| **k == key) else {
                    return Err(format!("unknown flag --{name}"));
                };
                let flag = format!("--{name}");
                let value = parser.value().map_err(|e| e.to_string())?;
                let value = value
                    .into_string()
                    .map_err(|_| format!("{flag}: not UTF-8"))?;
                flags.raw.insert(known, (value, Source::Flag(flag)));
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    Ok(flags)
}

fn bad(source: &Source, key: &str, value: &str, why: impl std::fmt::Display) -> String {
    format!("{source}: {key}={value:?}: {why}")
}

/// `IP:PORT`, or a bare IP with the default port.
fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Ok(a);
    }
    text.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, DEFAULT_PORT))
        .map_err(|_| "expected IP:PORT (such as 10.0.0.1:4774)".to_string())
}

impl Settings {
    /// Validates the layered raw settings.
    pub fn from_raw(raw: &Raw) -> Result<Settings, String> {
        let get = |key: &'static str, default: &str| -> (String, Source) {
            raw.get(key)
                .cloned()
                .unwrap_or((default.to_string(), Source::Default))
        };
        let (v, src) = get("bind", DEFAULT_BIND);
        let bind = parse_addr(&v).map_err(|e| bad(&src, "bind", &v, e))?;
        let (v, src) = get("peers", "");
        let mut peers = Vec::new();
        for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            peers.push(parse_addr(p).map_err(|e| bad(&src, "peers", p, e))?);
        }
        let (metadata, src) = get("metadata", "");
        let metadata = metadata.trim().to_string();
        crate::schedule::Metadata::parse(&metadata)
            .map_err(|e| bad(&src, "metadata", &metadata, e))?;
        if metadata.len() > crate::membership::MAX_METADATA_BYTES {
            return Err(bad(
                &src,
                "metadata",
                &metadata,
                format!(
                    "longer than {} bytes",
                    crate::membership::MAX_METADATA_BYTES
                ),
            ));
        }
        let (v, src) = get("public_ip", "");
        let advertise = if v.trim().is_empty() {
            if bind.ip().is_unspecified() {
                return Err(format!(
                    "bind address {bind} ({src_bind}) is not an address other members can reach: \
                     set public_ip (this member's real IP) or bind to it",
                    src_bind = get("bind", DEFAULT_BIND).1
                ));
            }
            bind
        } else {
            let ip: IpAddr = v
                .trim()
                .parse()
                .map_err(|_| bad(&src, "public_ip", &v, "expected an IP address"))?;
            if ip.is_unspecified() {
                return Err(bad(&src, "public_ip", &v, "must be this member's real IP"));
            }
            SocketAddr::new(ip, bind.port())
        };
        let path = |key: &'static str, default: &str| PathBuf::from(get(key, default).0.trim());
        Ok(Settings {
            bind,
            advertise,
            peers,
            metadata,
            key_file: path("key_file", DEFAULT_KEY_FILE),
            data_dir: path("data_dir", DEFAULT_DATA_DIR),
            machine_id_file: path("machine_id_file", DEFAULT_MACHINE_ID_FILE),
            socket: path("socket", DEFAULT_SOCKET),
        })
    }

    /// Reads the config file (`--config`, else the default one if it exists), the
    /// environment and the flags, in rising precedence.
    pub fn load(flags: &Flags, env: &BTreeMap<String, String>) -> Result<Settings, String> {
        let mut raw = Raw::new();
        let (path, required) = match &flags.config {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_CONFIG), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => raw = parse_file(&path.display().to_string(), &text)?,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
        }
        overlay_env(&mut raw, env);
        for (k, v) in &flags.raw {
            raw.insert(k, v.clone());
        }
        Settings::from_raw(&raw)
    }
}

/// Reads the machine id (`/etc/machine-id`): one line, a valid id.
pub fn read_machine_id(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read the machine id: {e}", path.display()))?;
    let id = text.trim();
    crate::schedule::MachineId::parse(id)
        .map(|m| m.0)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses a key file: one key a line (base64 of 32 bytes, or 64 hex digits), `#`
/// comments; the first key seals, all are accepted (rotation).
pub fn parse_keys(file: &str, text: &str) -> Result<KeyRing, String> {
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = parse_key(line).map_err(|e| format!("{file}:{}: {e}", i + 1))?;
        keys.push(key);
    }
    let mut keys = keys.into_iter();
    let Some(sending) = keys.next() else {
        return Err(format!(
            "{file}: no key in the file; create one with `shoal keygen > {file}`"
        ));
    };
    let rest: Vec<Key> = keys.collect();
    if rest.len() >= MAX_KEYS {
        return Err(format!("{file}: more than {MAX_KEYS} keys"));
    }
    KeyRing::new(sending, rest).map_err(|e| format!("{file}: {e}"))
}

fn parse_key(text: &str) -> Result<Key, String> {
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Key::from_hex(text);
    }
    let bytes = super::base64::decode(text)
        .ok_or("a cluster key is base64 of 32 bytes (see `shoal keygen`)")?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
        format!("a cluster key is 32 bytes; this one is {} bytes", b.len())
    })?;
    Ok(Key::from_bytes(bytes))
}

/// Reads the key file.
pub fn read_keys(path: &Path) -> Result<KeyRing, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read the cluster key file: {e}", path.display()))?;
    parse_keys(&path.display().to_string(), &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn flags(args: &[&str]) -> Flags {
        parse_flags(args.iter().map(OsString::from).collect()).unwrap()
    }

    #[test]
    fn a_flag_beats_the_environment_which_beats_the_file() {
        let mut raw = parse_file(
            "shoal.conf",
            "# comment\nbind = 10.0.0.1:4774\npeers=10.0.0.2:4774\nmetadata=\"disk=ssd\"\n",
        )
        .unwrap();
        overlay_env(
            &mut raw,
            &env(&[("SHOAL_BIND", "10.0.0.5:5000"), ("SHOAL_METADATA", "r=1")]),
        );
        for (k, v) in flags(&["--bind", "10.0.0.9:6000"]).raw {
            raw.insert(k, v);
        }
        let s = Settings::from_raw(&raw).unwrap();
        assert_eq!(s.bind, "10.0.0.9:6000".parse().unwrap());
        assert_eq!(s.advertise, s.bind);
        assert_eq!(s.metadata, "r=1");
        assert_eq!(s.peers, vec!["10.0.0.2:4774".parse().unwrap()]);
        assert_eq!(s.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(s.socket, PathBuf::from(DEFAULT_SOCKET));
    }

    #[test]
    fn unknown_keys_and_malformed_lines_name_file_and_line() {
        let e =
            parse_file("/etc/shoal/shoal.conf", "bind=1.2.3.4:1\netcd_servers=x\n").unwrap_err();
        assert!(
            e.starts_with("/etc/shoal/shoal.conf:2: unknown key \"etcd_servers\""),
            "{e}"
        );
        let e = parse_file("c", "\n\nbind 1.2.3.4\n").unwrap_err();
        assert_eq!(e, "c:3: expected `key = value`, found \"bind 1.2.3.4\"");
        let raw = parse_file("c", "metadata=foo=\n").unwrap();
        let e = Settings::from_raw(&raw).unwrap_err();
        assert!(e.starts_with("c:1: metadata=\"foo=\": "), "{e}");
        let raw = parse_file("c", "bind=1.2.3.4:1\npeers=10.0.0.1:1, nope\n").unwrap();
        let e = Settings::from_raw(&raw).unwrap_err();
        assert!(e.starts_with("c:2: peers=\"nope\""), "{e}");
        assert_eq!(
            parse_flags(vec!["--nope".into(), "x".into()]).unwrap_err(),
            "unknown flag --nope"
        );
    }

    #[test]
    fn an_unspecified_bind_needs_public_ip_and_public_ip_keeps_the_port() {
        let e = Settings::from_raw(&Raw::new()).unwrap_err();
        assert!(e.contains("set public_ip"), "{e}");
        let mut raw = Raw::new();
        raw.insert("public_ip", ("10.77.0.3".into(), Source::Default));
        let s = Settings::from_raw(&raw).unwrap();
        assert_eq!(s.bind, "0.0.0.0:4774".parse().unwrap());
        assert_eq!(s.advertise, "10.77.0.3:4774".parse().unwrap());
        let f = flags(&["--bind=10.0.0.1", "--peers", "10.0.0.1,10.0.0.2:9"]);
        let s = Settings::from_raw(&f.raw).unwrap();
        assert_eq!(s.bind.port(), DEFAULT_PORT);
        assert_eq!(s.peers.len(), 2);
    }

    #[test]
    fn the_shipped_config_example_is_valid() {
        let text = include_str!("../../deploy/shoal.conf.example");
        let raw = parse_file("shoal.conf.example", text).unwrap();
        let s = Settings::from_raw(&raw).unwrap();
        assert_eq!(s.advertise, "10.77.0.1:4774".parse().unwrap());
        assert_eq!(s.peers.len(), 2);
        assert_eq!(s.key_file, PathBuf::from(DEFAULT_KEY_FILE));
    }

    #[test]
    fn key_files_hold_base64_or_hex_keys_first_one_sends() {
        let a = super::super::base64::encode(&[7u8; 32]);
        let text = format!("# rotated 2026-11\n{a}\n\n{}\n", "ab".repeat(32));
        let ring = parse_keys("k", &text).unwrap();
        assert_eq!(ring.sending(), &Key::from_bytes([7u8; 32]));
        assert_eq!(ring.accepted().count(), 2);
        let e = parse_keys("k", "# nothing\n").unwrap_err();
        assert!(e.starts_with("k: no key"), "{e}");
        let e = parse_keys("k", "\nc2hvcnQ=\n").unwrap_err();
        assert_eq!(e, "k:2: a cluster key is 32 bytes; this one is 5 bytes");
        let e = parse_keys("k", "!!!\n").unwrap_err();
        assert!(e.starts_with("k:1: a cluster key is base64"), "{e}");
    }
}
