//! Console echo latency of a running phone's VM (bench/phone.sh): types
//! one character into the VM's console stream and times how long its shell
//! takes to echo it back, then erases it (DEL) so the shell's line stays
//! empty; SAMPLES times. Only the typed byte's echo is timed.
//!
//! Usage: console_echo STATE_DIR VM [SAMPLES]
//! Prints `CONSOLE-ECHO p50 X us p99 Y us (N samples, max Z us)`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use phone::client::Client;

/// The typed character: the shell echoes it as it is.
const KEY: u8 = b'a';
/// Backspace as a terminal sends it.
const DEL: u8 = 0x7f;
/// Output stops this long: the shell has finished answering.
const QUIET: Duration = Duration::from_millis(30);
/// Longest wait for one echo.
const LIMIT: Duration = Duration::from_secs(10);
/// Samples typed first and not counted.
const WARMUP: usize = 5;

/// Reads until nothing has arrived for `QUIET` (or `limit` passed).
fn drain(stream: &mut UnixStream, limit: Duration) -> Result<(), String> {
    stream
        .set_read_timeout(Some(QUIET))
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => return Err("the console stream closed".into()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(())
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Types `KEY` and waits for it to come back: the round trip.
fn one_echo(stream: &mut UnixStream) -> Result<Duration, String> {
    stream
        .set_read_timeout(Some(LIMIT))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    stream.write_all(&[KEY]).map_err(|e| e.to_string())?;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Err("the console stream closed".into()),
            Ok(n) if buf[..n].contains(&KEY) => return Ok(start.elapsed()),
            Ok(_) => {}
            Err(e) => return Err(format!("no echo within {} s: {e}", LIMIT.as_secs())),
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, vm) = match (args.first(), args.get(1)) {
        (Some(d), Some(v)) => (PathBuf::from(d), v.clone()),
        _ => return Err("usage: console_echo STATE_DIR VM [SAMPLES]".into()),
    };
    let samples: usize = match args.get(2) {
        Some(s) => s
            .parse()
            .map_err(|_| format!("SAMPLES: {s:?} is not a number"))?,
        None => 200,
    }
    .max(1);
    let client = Client::for_phone(&dir);
    let (mut stream, _recent) = client.console(&format!("/vms/{vm}/console"))?;
    // The stream starts with the VM's recent output: let it pass.
    drain(&mut stream, Duration::from_secs(5))?;
    let mut us = Vec::with_capacity(samples);
    for i in 0..WARMUP + samples {
        let t = one_echo(&mut stream)?;
        if i >= WARMUP {
            us.push(t.as_secs_f64() * 1e6);
        }
        stream.write_all(&[DEL]).map_err(|e| e.to_string())?;
        drain(&mut stream, LIMIT)?;
    }
    us.sort_by(f64::total_cmp);
    let at = |q: usize| us[(us.len() * q).div_ceil(100).max(1) - 1];
    println!(
        "CONSOLE-ECHO p50 {:.0} us p99 {:.0} us ({} samples, max {:.0} us)",
        at(50),
        at(99),
        us.len(),
        us[us.len() - 1]
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("console_echo: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
