//! What the VM tests share: a console the test can read, the Linux guest
//! parts, and running a host tool.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// A console kept for the test to read.
#[derive(Clone, Default)]
pub struct Console(pub Arc<Mutex<Vec<u8>>>);

impl Write for Console {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Console {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The Debian kernel and test initramfs (fetched and built on first use).
pub fn linux_guest() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ok = Command::new(root.join("guests/fetch-linux-guests.sh"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("run guests/fetch-linux-guests.sh");
    assert!(ok.success());
    root.join("guests/cache/linux")
}

/// Runs a host tool (e2fsprogs, md5sum) with no input.
pub fn run(cmd: &mut Command) -> std::process::Output {
    cmd.stdin(Stdio::null())
        .output()
        .expect("e2fsprogs must be installed")
}
