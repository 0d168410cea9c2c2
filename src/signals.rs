//! Graceful stop on `SIGTERM` and `SIGINT`.
//!
//! The first signal asks the server to stop: no new connection is accepted,
//! the requests on those already accepted are answered, bodies still
//! arriving are read, and the process exits with status 0. A second signal
//! exits at once, with status 1, after stopping the reply programs still
//! running (they run in process groups of their own, and would outlive the
//! server). Handling the signals matters also when the server is PID 1 in
//! a container, where a signal without a handler is ignored.

use std::io;
use std::thread;

use log::{info, warn};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::http::server::Handle;

/// Stops the server behind `handle` on the first `SIGTERM` or `SIGINT`.
///
/// # Errors
///
/// Fails when the handlers or their thread cannot be set up.
pub fn stop_on_signals(handle: Handle) -> io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut stopping = false;
            for signal in signals.forever() {
                let name = if signal == SIGTERM {
                    "SIGTERM"
                } else {
                    "SIGINT"
                };
                if stopping {
                    warn!("second {name}: exiting now");
                    crate::program::stop_all();
                    crate::logging::flush();
                    std::process::exit(1);
                }
                info!("shutting down ({name})");
                // The watchdog, which writes out gathered lines, stops now.
                crate::logging::flush();
                stopping = true;
                handle.stop();
            }
        })?;
    Ok(())
}
