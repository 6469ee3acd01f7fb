//! The host side of the vsock benchmark (bench/vsock.sh):
//!   vsock_peer send UDS PORT BYTES   connect to guest PORT through the VM's
//!                                    vsock socket and send BYTES
//!   vsock_peer recv PATH             accept one guest stream on PATH
//!                                    (the VM's `<uds>_<port>`) and count it
//! Prints one line with the bytes moved and the host-side MB/s.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

fn pattern_block(offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let i = offset + i as u64;
        *b = (i.wrapping_mul(131) + (i >> 9)) as u8;
    }
}

fn send(uds: &str, port: u32, bytes: u64) -> Result<(), String> {
    let start = Instant::now();
    let mut stream = loop {
        if start.elapsed() > Duration::from_secs(300) {
            return Err(format!("guest port {port} never accepted"));
        }
        if let Ok(mut s) = UnixStream::connect(uds) {
            s.write_all(format!("CONNECT {port}\n").as_bytes())
                .map_err(|e| e.to_string())?;
            let mut line = String::new();
            let mut r = BufReader::new(s.try_clone().map_err(|e| e.to_string())?);
            if r.read_line(&mut line).is_ok() && line.starts_with("OK ") {
                break s;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let t0 = Instant::now();
    let mut buf = vec![0u8; 1 << 16];
    let mut sent = 0u64;
    while sent < bytes {
        let n = (bytes - sent).min(buf.len() as u64) as usize;
        pattern_block(sent, &mut buf[..n]);
        stream.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        sent += n as u64;
    }
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| e.to_string())?;
    // The guest closes after reading everything.
    let _ = stream.read(&mut buf);
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "host-send {sent} bytes {:.1} MB/s",
        sent as f64 / secs / 1e6
    );
    Ok(())
}

fn recv(path: &str) -> Result<(), String> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).map_err(|e| format!("{path}: {e}"))?;
    let (mut s, _) = listener.accept().map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    let mut t0 = None;
    loop {
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        t0.get_or_insert_with(Instant::now);
        total += n as u64;
    }
    let secs = t0.map_or(1.0, |t| t.elapsed().as_secs_f64());
    drop(s);
    let _ = std::fs::remove_file(path);
    println!(
        "host-recv {total} bytes {:.1} MB/s",
        total as f64 / secs / 1e6
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["send", uds, port, bytes] => match (port.parse(), bytes.parse()) {
            (Ok(p), Ok(b)) => send(uds, p, b),
            _ => Err("PORT and BYTES must be numbers".into()),
        },
        ["recv", path] => recv(path),
        _ => Err("usage: vsock_peer send UDS PORT BYTES | recv PATH".into()),
    };
    if let Err(e) = result {
        eprintln!("vsock_peer: {e}");
        std::process::exit(1);
    }
}
