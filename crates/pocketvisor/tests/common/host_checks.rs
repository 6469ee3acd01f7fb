//! What the host checks after a guest ran: its disk images (with
//! e2fsprogs) and its control socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A copy of `img` with its journal replayed (as a mount would): e2fsck -fy
/// must find nothing worse than what it fixes silently (exit < 4).
pub fn replayed_copy(img: &Path) -> PathBuf {
    let copy = img.with_extension("check.img");
    std::fs::copy(img, &copy).unwrap();
    let fsck = Command::new("e2fsck")
        .arg("-fy")
        .arg(&copy)
        .output()
        .unwrap();
    assert!(
        fsck.status.code().unwrap_or(8) < 4,
        "e2fsck found damage: {}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    copy
}

/// The contents of `file` in the ext4 image `img`, read with debugfs.
pub fn debugfs_cat(img: &Path, file: &str) -> Vec<u8> {
    Command::new("debugfs")
        .arg("-R")
        .arg(format!("cat {file}"))
        .arg(img)
        .stderr(Stdio::null())
        .output()
        .unwrap()
        .stdout
}

/// The md5 of `data` in hex, from md5sum.
pub fn md5_hex(data: &[u8]) -> String {
    let mut child = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// One request on a VM's control socket; its one-line answer.
pub fn api(sock: &Path, command: &str) -> String {
    let mut s = UnixStream::connect(sock).expect("connect to the --api socket");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    writeln!(s, "{command}").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line.trim().to_string()
}

/// Makes `img`, a 32 MiB ext4 image, filled from directory `from` if given.
pub fn make_ext4(img: &Path, from: Option<&Path>) {
    let mut cmd = Command::new("mke2fs");
    cmd.args(["-q", "-F", "-t", "ext4"]);
    if let Some(dir) = from {
        cmd.arg("-d").arg(dir);
    }
    let ok = cmd
        .arg(img)
        .arg("32M")
        .status()
        .expect("mke2fs (e2fsprogs) must be installed");
    assert!(ok.success());
}
