//! The control socket (`--api PATH`): a unix stream socket taking one
//! command per line and answering one line each.
//!
//! * `balloon SIZE` — set the balloon target (e.g. `balloon 128M`) → `ok`
//! * `balloon` — `target=… actual=… inflated=… reported=…` in bytes
//! * `stats` — the guest's memory statistics as `tag=value` pairs

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use vmm::board_types::Board;
use vmm::{parse_size, BalloonControl};

/// What the commands act on (replaced when the VM reboots).
type Target = Arc<Mutex<Option<(Arc<Board>, Option<BalloonControl>)>>>;

/// A listening control socket.
pub struct Api {
    target: Target,
    path: PathBuf,
}

impl Api {
    /// Listens on `path` (replacing a stale socket file).
    pub fn bind(path: &Path) -> std::io::Result<Self> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        let target: Target = Arc::new(Mutex::new(None));
        let t = target.clone();
        std::thread::Builder::new()
            .name("api".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let t = t.clone();
                    std::thread::spawn(move || serve_client(stream, &t));
                }
            })?;
        Ok(Api {
            target,
            path: path.to_path_buf(),
        })
    }

    /// Directs commands at this VM.
    pub fn serve(&self, board: Arc<Board>, balloon: Option<BalloonControl>) {
        *self.target.lock().unwrap_or_else(|e| e.into_inner()) = Some((board, balloon));
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve_client(stream: UnixStream, target: &Target) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        let reply = command(line.trim(), target);
        if writeln!(out, "{reply}").is_err() {
            return;
        }
    }
}

fn command(line: &str, target: &Target) -> String {
    let Some((board, balloon)) = target.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
        return "error: no VM running".into();
    };
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("balloon"), size, None) => {
            let Some(b) = balloon else {
                return "error: the VM has no balloon (start it with --balloon)".into();
            };
            if let Some(size) = size {
                match parse_size(size) {
                    Ok(bytes) => {
                        b.set_target(bytes);
                        board.poll_devices();
                        return "ok".into();
                    }
                    Err(e) => return format!("error: {e}"),
                }
            }
            let (inflated, reported) = b.returned_bytes();
            format!(
                "target={} actual={} inflated={inflated} reported={reported}",
                b.target_bytes(),
                b.actual_bytes()
            )
        }
        (Some("stats"), None, None) => match balloon {
            Some(b) => b
                .stats()
                .iter()
                .map(|(tag, v)| format!("{tag}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            None => "error: the VM has no balloon (start it with --balloon)".into(),
        },
        _ => format!("error: unknown command '{line}' (balloon [SIZE], stats)"),
    }
}
