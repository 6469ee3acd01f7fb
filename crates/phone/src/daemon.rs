//! A running phone: the supervisor and its management API in one process
//! (`pocketvisor phone supervise`, started in the background by `phone
//! up`). It owns `STATE_DIR/api.sock` and `STATE_DIR/phone.log`, serves
//! the API until `POST /phone/down` or SIGTERM/SIGINT/SIGHUP, then stops
//! every VM in order and removes its socket.

use std::os::unix::fs::DirBuilderExt;
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;

use crate::manifest::Manifest;
use crate::supervisor::{Supervisor, WorkerCommand, STOP_GRACE};

/// The API socket of a phone whose state directory is `dir`.
pub fn api_socket(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("api.sock")
}

/// The phone's log.
pub fn log_file(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("phone.log")
}

/// Creates the phone's state directory (mode 0700) if it is missing.
pub fn make_state_dir(manifest: &Manifest) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&manifest.state_dir)
        .map_err(|e| {
            format!(
                "cannot create the state directory '{}': {e}",
                manifest.state_dir.display()
            )
        })
}

/// Runs the phone until it is brought down; every VM is stopped when this
/// returns.
pub fn run(manifest: &Manifest, command: WorkerCommand) -> Result<(), String> {
    make_state_dir(manifest)?;
    let socket = api_socket(&manifest.state_dir);
    let (listener, socket_file) =
        hostio::socket::bind_listener(&socket).map_err(|e| format!("API socket: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("API socket: {e}"))?;
    let phone = Arc::new(Supervisor::start(
        manifest,
        command,
        Some(&log_file(&manifest.state_dir)),
    )?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the API: {e}"))?;
    let served = runtime.block_on(async {
        let listener =
            tokio::net::UnixListener::from_std(listener).map_err(|e| format!("API socket: {e}"))?;
        let shutdown = Arc::new(Notify::new());
        let mut signals = Vec::new();
        for kind in [
            SignalKind::terminate(),
            SignalKind::interrupt(),
            SignalKind::hangup(),
        ] {
            signals.push(signal(kind).map_err(|e| format!("signals: {e}"))?);
        }
        let on_signal = shutdown.clone();
        let log = phone.clone();
        tokio::spawn(async move {
            let [a, b, c] = &mut signals[..] else { return };
            tokio::select! {
                _ = a.recv() => {}
                _ = b.recv() => {}
                _ = c.recv() => {}
            }
            log.log("stopping on a signal");
            on_signal.notify_one();
        });
        crate::api::serve(listener, phone.clone(), shutdown).await;
        Ok::<(), String>(())
    });
    drop(runtime);
    // No more API: nobody may start a VM while the phone goes down.
    drop(socket_file);
    phone.stop_all(STOP_GRACE);
    phone.log("phone down");
    served
}
