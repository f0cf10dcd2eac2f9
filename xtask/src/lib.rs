//! The xtask's reusable parts: the test-host harness, also used by shoal's integration tests.

pub mod agents;
pub mod bench;
pub mod demo;
pub mod dist;
pub mod hosts;
pub mod sim;
