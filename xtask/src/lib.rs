//! The xtask's reusable parts: the test-host harness, also used by shoal's integration tests.

pub mod dist;
pub mod hosts;
pub mod sim;
