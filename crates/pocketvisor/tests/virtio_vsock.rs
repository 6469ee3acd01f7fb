//! virtio-vsock under the Debian kernel, both directions: a host program
//! connects to a guest listener through the CONNECT handshake and gets its
//! 1 MiB echoed, then a guest program connects to a host listener and gets
//! its 1 MiB echoed.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{spawn_linux, wait_with_limit};

const MIB: usize = 1 << 20;

/// The byte pattern guests/c/vsock-tool.c sends and checks.
fn pattern(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(131) + (i >> 9)) as u8)
        .collect()
}

/// Connects to guest port `port` through the device's socket, retrying
/// while the guest is not listening yet (the stream is closed unanswered).
fn connect_to_guest(uds: &Path, port: u32, limit: Duration) -> (UnixStream, String) {
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < limit, "guest port {port} never accepted");
        if let Ok(mut s) = UnixStream::connect(uds) {
            s.write_all(format!("CONNECT {port}\n").as_bytes()).unwrap();
            let mut line = String::new();
            let mut reader = BufReader::new(s.try_clone().unwrap());
            if reader.read_line(&mut line).is_ok() && line.starts_with("OK ") {
                assert!(reader.buffer().is_empty(), "no data before the guest sends");
                return (s, line);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Writes `data` and reads the echo at the same time; returns the echo.
fn exchange(stream: UnixStream, data: Vec<u8>) -> Vec<u8> {
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        writer.write_all(&data).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut echo = Vec::new();
    let mut reader = stream;
    reader.read_to_end(&mut echo).unwrap();
    sender.join().unwrap();
    echo
}

#[test]
fn host_and_guest_streams_both_ways() {
    let dir = std::env::temp_dir().join(format!("pv-vsock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let uds = dir.join("v.sock");
    // The host's echo service for the guest's connection to port 6000.
    let listener = UnixListener::bind(dir.join("v.sock_6000")).unwrap();
    let host_echo = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut total = 0;
        let mut buf = vec![0u8; 65536];
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).unwrap();
            total += n;
        }
        total
    });
    let vm = spawn_linux(
        "console=ttyAMA0 quiet cryptomgr.notests pv.run=vsock",
        &["--vsock", &format!("cid=3,uds={}", uds.display())],
    );
    let guest = std::thread::spawn(move || wait_with_limit(vm, Duration::from_secs(600)));

    let (stream, ok) = connect_to_guest(&uds, 5000, Duration::from_secs(300));
    let port: u32 = ok.trim()["OK ".len()..].parse().expect("OK <port>");
    assert!(port >= 1024, "{ok}");
    let sent = pattern(MIB);
    let echo = exchange(stream, sent.clone());
    assert_eq!(echo.len(), MIB, "host → guest → host");
    assert!(echo == sent, "echo differs from what was sent");

    let (code, out, err) = guest.join().unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("CHECK vsock-dev ok"), "{out}");
    assert!(out.contains(&format!("VSOCK-ECHOED {MIB}")), "{out}");
    assert!(
        out.contains(&format!("VSOCK-PING ok {MIB}/{MIB} bytes back, 0 wrong")),
        "{out}"
    );
    assert!(!out.contains("FAIL"), "{out}");
    assert_eq!(host_echo.join().unwrap(), MIB, "guest → host → guest");
    assert!(!uds.exists(), "the VMM removes its socket when the VM ends");
    let _ = std::fs::remove_dir_all(&dir);
}
