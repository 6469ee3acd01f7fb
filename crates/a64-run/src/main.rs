//! `a64-run`: runs a static aarch64 Linux program on Pocketvisor's CPU.
//!
//! A developer tool that proves the CPU on real programs and measures it; see
//! the crate's modules for the loader, the address space and the system calls.

mod loader;
mod process;
mod signal;
mod space;
mod syscall;

use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;
use std::time::Instant;

use a64::Exit;

use process::Process;
use signal::Delivery;
use syscall::Outcome;

const USAGE: &str = "usage: a64-run [--stats] PROGRAM [ARGS...]
Runs a static aarch64 Linux executable on Pocketvisor's CPU.
  --stats   print instructions retired, time and MIPS to stderr at exit";

/// Instructions run between checks of the run loop.
const SLICE: u64 = 1 << 22;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE at startup; a guest expects the default action (death on a broken pipe).
    // SAFETY: restoring a default disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let mut stats = false;
    while let Some(first) = args.first() {
        match first.to_str() {
            Some("--stats") => stats = true,
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
    if args.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let argv: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    let envp: Vec<Vec<u8>> = std::env::vars_os()
        .map(|(k, v)| {
            let mut e = k.as_bytes().to_vec();
            e.push(b'=');
            e.extend_from_slice(v.as_bytes());
            e
        })
        .collect();
    let program = &argv[0];
    let self_exe = std::env::current_exe().unwrap_or_default();
    let (exe, img, argv) =
        match syscall::resolve_program_explained(&self_exe, program, argv.clone(), 0) {
            Ok(r) => r,
            Err((_, why)) => {
                eprintln!("a64-run: {}: {why}", String::from_utf8_lossy(program));
                return ExitCode::from(127);
            }
        };
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    let mut p = match Process::new(exe, &img, &argv, &envp) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("a64-run: {e}");
            return ExitCode::from(127);
        }
    };
    let started = Instant::now();
    let status = run(&mut p);
    if stats {
        let secs = started.elapsed().as_secs_f64();
        let n = p.cpu.insns_retired;
        eprintln!(
            "a64-run: {n} instructions in {secs:.3} s ({:.1} MIPS)",
            n as f64 / secs / 1e6
        );
    }
    match status {
        Ended::Exit(code) => ExitCode::from(code as u8),
        Ended::Signal(sig) => die_by_signal(sig),
    }
}

/// How the guest ended.
enum Ended {
    Exit(i32),
    Signal(i32),
}

fn run(p: &mut Process) -> Ended {
    loop {
        let exit = p.cpu.run(&mut p.space, SLICE);
        let fault = match exit {
            Exit::Budget | Exit::Wfi | Exit::Stopped | Exit::ExceptionLoop => None,
            Exit::Svc(_) => {
                let (nr, arg0) = (p.cpu.xreg(8), p.cpu.xreg(0));
                match p.syscall() {
                    Outcome::Return(v) if v == -(libc::EINTR as i64) && p.restarts(nr) => {
                        // Run the handler, then the call again (PC stays on the SVC).
                        p.cpu.set_xreg(0, arg0);
                    }
                    Outcome::Return(v) => {
                        p.cpu.set_xreg(0, v as u64);
                        p.cpu.pc += 4;
                    }
                    Outcome::Replaced => {}
                    Outcome::Exit(code) => return Ended::Exit(code),
                    Outcome::Killed(sig) => return Ended::Signal(sig),
                }
                None
            }
            // si_code values: ILL_ILLOPC, TRAP_BRKPT, BUS_ADRALN = 1; SEGV_MAPERR 1, SEGV_ACCERR 2.
            Exit::Undefined(_) | Exit::Hvc(_) | Exit::Smc(_) | Exit::Hlt(_) => {
                Some((libc::SIGILL, 1, p.cpu.pc))
            }
            Exit::Brk(_) => Some((libc::SIGTRAP, 1, p.cpu.pc)),
            Exit::DataAbort { addr, .. } | Exit::InsnAbort { addr } => {
                let code = if p.space.overlaps(addr & !4095, 4096) {
                    2
                } else {
                    1
                };
                Some((libc::SIGSEGV, code, addr))
            }
            Exit::Alignment { addr } => Some((libc::SIGBUS, 1, addr)),
            Exit::PcAlignment => Some((libc::SIGBUS, 1, p.cpu.pc)),
            Exit::SpAlignment => Some((libc::SIGBUS, 1, p.cpu.sp)),
            // System-level exits (traps to EL1) never happen at EL0 under Linux rules.
            Exit::SysRegTrap(_) | Exit::FpTrap | Exit::WfxTrap { .. } | Exit::IllegalState => {
                Some((libc::SIGILL, 1, p.cpu.pc))
            }
        };
        if let Some((sig, code, addr)) = fault {
            if std::env::var_os("A64_RUN_DEBUG").is_some() {
                let mut word = [0u8; 4];
                let raw = p
                    .cpu
                    .read_bytes(&mut p.space, p.cpu.pc, &mut word)
                    .map(|_| u32::from_le_bytes(word));
                let name = raw.ok().and_then(a64::decode).map_or("?", |e| e.name);
                eprintln!("a64-run: {exit:?} at pc {:#x}: {raw:08x?} {name}", p.cpu.pc);
            }
            if let Delivery::Kill(sig) = p.deliver_fault(sig, code, addr) {
                return Ended::Signal(sig);
            }
        }
        if let Some(Delivery::Kill(sig)) = p.deliver_caught() {
            return Ended::Signal(sig);
        }
    }
}

/// Ends the runner the way the guest died, so the exit status matches (as qemu-aarch64 does).
fn die_by_signal(sig: i32) -> ExitCode {
    // SAFETY: restoring the default action and raising a signal at ourselves.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
    }
    ExitCode::from(128 + sig as u8)
}
