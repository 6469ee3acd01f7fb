//! `a64-run`: runs a static aarch64 Linux program on Pocketvisor's CPU.
//!
//! A developer tool that proves the CPU on real programs and measures it; see
//! the crate's modules for the loader, the address space and the system calls.

mod loader;
mod process;
mod run;
mod safe_syscall;
mod signal;
mod space;
mod syscall;
mod thread;

use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use process::Task;

const USAGE: &str = "usage: a64-run [--stats] PROGRAM [ARGS...]
Runs a static aarch64 Linux executable on Pocketvisor's CPU.
  --stats   print instructions retired, time and MIPS to stderr at exit";

fn main() -> ExitCode {
    // Rust ignores SIGPIPE at startup; a guest expects the default action (death on a broken pipe).
    // SAFETY: restoring a default disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let mut stats = false;
    // Set when a multi-threaded guest's execve started this runner afresh
    // (`syscall::proc::reexec`): the program to load (its argv[0] comes
    // separately), the guest's environment and the signals it ignores.
    let mut exec: Option<std::ffi::OsString> = None;
    let mut exec_env: Vec<Vec<u8>> = Vec::new();
    let mut ignored = 0u64;
    while let Some(first) = args.first() {
        match first.to_str() {
            Some("--stats") => stats = true,
            Some("--exec") if args.len() > 1 => exec = Some(args.remove(1)),
            Some("--env") if args.len() > 1 => exec_env.push(args.remove(1).as_bytes().to_vec()),
            Some("--ignore-signals") if args.len() > 1 => {
                ignored = u64::from_str_radix(&args.remove(1).to_string_lossy(), 16).unwrap_or(0);
            }
            Some("-h") | Some("--help") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Some("--") => {
                args.remove(0);
                break;
            }
            Some(s) if s.starts_with('-') => {
                eprintln!("a64-run: unknown option {s}\n{USAGE}");
                return ExitCode::from(2);
            }
            _ => break,
        }
        args.remove(0);
    }
    if args.is_empty() && exec.is_none() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let argv: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    let envp: Vec<Vec<u8>> = if exec.is_some() {
        exec_env
    } else {
        runner_environment()
    };
    let program = exec.map_or_else(|| argv[0].clone(), |e| e.as_bytes().to_vec());
    let self_exe = std::env::current_exe().unwrap_or_default();
    let (exe, img, argv) = match syscall::resolve_program_explained(&self_exe, &program, argv, 0) {
        Ok(r) => r,
        Err((_, why)) => {
            eprintln!("a64-run: {}: {why}", String::from_utf8_lossy(&program));
            return ExitCode::from(127);
        }
    };
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    let task = match Task::new(exe, &img, &argv, &envp) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("a64-run: {e}");
            return ExitCode::from(127);
        }
    };
    for sig in (1..=64u64).filter(|s| ignored >> (s - 1) & 1 != 0) {
        task.process.set_sigaction(sig, [1, 0, 0, 0]);
    }
    task.signals.attach();
    run::start_stats(stats);
    run::run_to_end(task, true);
    unreachable!("the first thread's end ends the process or waits for the others")
}

/// The runner's own environment as `NAME=value` strings (the guest's first
/// environment, and what a re-executed runner keeps).
pub fn runner_environment() -> Vec<Vec<u8>> {
    std::env::vars_os()
        .map(|(k, v)| {
            let mut e = k.as_bytes().to_vec();
            e.push(b'=');
            e.extend_from_slice(v.as_bytes());
            e
        })
        .collect()
}
