//! The async runtime: smol's pieces without smol's facade.
//!
//! `smol::spawn`'s global executor also starts `async-process`'s child reaper,
//! and the facade links `async-fs` and `async-net`; the agent uses none of them
//! (systemd runs on its own thread with `std::process`). This is the same global
//! executor minus the reaper: `SMOL_THREADS` threads (default 1) named `smol-N`,
//! started on first use, each running the executor forever.

use std::future::Future;
use std::sync::OnceLock;

pub use async_channel as channel;
pub use async_executor::Task;
pub use async_io::{block_on, Async, Timer};
pub use blocking::unblock;
pub use futures_lite::{future, io, stream};

/// Spawns a task on the global executor (see the module comment).
pub fn spawn<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> Task<T> {
    global().spawn(future)
}

fn global() -> &'static async_executor::Executor<'static> {
    static GLOBAL: OnceLock<async_executor::Executor<'static>> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let threads = std::env::var("SMOL_THREADS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        for n in 1..=threads {
            let spawned = std::thread::Builder::new()
                .name(format!("smol-{n}"))
                .spawn(|| loop {
                    let _ = std::panic::catch_unwind(|| {
                        block_on(global().run(future::pending::<()>()))
                    });
                });
            if let Err(e) = spawned {
                // smol panics here; the tasks would never run.
                log::error!("cannot spawn executor thread: {e}");
                std::process::abort();
            }
        }
        async_executor::Executor::new()
    })
}
