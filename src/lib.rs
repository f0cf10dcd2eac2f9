//! shoal: fleet's unit-file scheduling without etcd and without a leader.
//!
//! The library holds every pure decision (parsing, placement, ...); the binary
//! in `main.rs` is the command line around it. See ARCHITECTURE.md for the map.

pub mod agent;
pub mod btree;
pub mod catalog;
pub mod cli;
pub mod control;
pub mod journal;
pub mod membership;
pub mod node;
pub mod schedule;
pub mod sort;
pub mod states;
pub mod store;
pub mod systemd;
pub mod time;
pub mod unit;
pub mod wire;
