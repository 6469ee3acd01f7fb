//! The run loop of one guest thread, and how threads and the process end.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use a64::Exit;

use crate::process::Task;
use crate::signal::Delivery;
use crate::syscall::Outcome;

/// Instructions run between checks of the run loop.
const SLICE: u64 = 1 << 22;

/// Whether to print statistics when the process ends (`--stats`).
static STATS: AtomicBool = AtomicBool::new(false);
/// When the guest started.
static STARTED: OnceLock<Instant> = OnceLock::new();
/// Instructions retired by threads that have ended.
static RETIRED_BY_ENDED: AtomicU64 = AtomicU64::new(0);

/// Starts the clock for `--stats` (`print`: report when the process ends).
pub fn start_stats(print: bool) {
    STATS.store(print, Ordering::Relaxed);
    let _ = STARTED.set(Instant::now());
}

/// How a guest thread's run ended.
pub enum Ended {
    /// The thread ended (`exit`).
    Thread(i32),
    /// The process exits (`exit_group`).
    Process(i32),
    /// The process dies of this signal.
    Signal(i32),
}

/// Runs guest thread `t` until it ends.
pub fn run(t: &mut Task) -> Ended {
    loop {
        let exit = t.cpu.run(&mut t.space, SLICE);
        let fault = match exit {
            Exit::Budget | Exit::Wfi | Exit::Stopped | Exit::ExceptionLoop => None,
            Exit::Svc(_) => {
                let (nr, arg0) = (t.cpu.xreg(8), t.cpu.xreg(0));
                match t.syscall() {
                    Outcome::Return(v) if v == -(libc::EINTR as i64) && t.restarts(nr) => {
                        // Run the handler, then the call again (PC stays on the SVC).
                        t.cpu.set_xreg(0, arg0);
                    }
                    Outcome::Return(v) => {
                        t.cpu.set_xreg(0, v as u64);
                        t.cpu.pc += 4;
                    }
                    Outcome::Replaced => {}
                    Outcome::ExitThread(code) => return Ended::Thread(code),
                    Outcome::ExitGroup(code) => return Ended::Process(code),
                    Outcome::Killed(sig) => return Ended::Signal(sig),
                }
                None
            }
            // si_code values: ILL_ILLOPC, TRAP_BRKPT, BUS_ADRALN = 1; SEGV_MAPERR 1, SEGV_ACCERR 2.
            Exit::Undefined(_) | Exit::Hvc(_) | Exit::Smc(_) | Exit::Hlt(_) => {
                Some((libc::SIGILL, 1, t.cpu.pc))
            }
            Exit::Brk(_) => Some((libc::SIGTRAP, 1, t.cpu.pc)),
            Exit::DataAbort { addr, .. } | Exit::InsnAbort { addr } => {
                let code = if t.space.overlaps(addr & !4095, 4096) {
                    2
                } else {
                    1
                };
                Some((libc::SIGSEGV, code, addr))
            }
            Exit::Alignment { addr } => Some((libc::SIGBUS, 1, addr)),
            Exit::PcAlignment => Some((libc::SIGBUS, 1, t.cpu.pc)),
            Exit::SpAlignment => Some((libc::SIGBUS, 1, t.cpu.sp)),
            // System-level exits (traps to EL1) never happen at EL0 under Linux rules.
            Exit::SysRegTrap(_) | Exit::FpTrap | Exit::WfxTrap { .. } | Exit::IllegalState => {
                Some((libc::SIGILL, 1, t.cpu.pc))
            }
        };
        if let Some((sig, code, addr)) = fault {
            if std::env::var_os("A64_RUN_DEBUG").is_some() {
                let mut word = [0u8; 4];
                let raw = t
                    .cpu
                    .read_bytes(&mut t.space, t.cpu.pc, &mut word)
                    .map(|_| u32::from_le_bytes(word));
                let name = raw.ok().and_then(a64::decode).map_or("?", |e| e.name);
                eprintln!("a64-run: {exit:?} at pc {:#x}: {raw:08x?} {name}", t.cpu.pc);
            }
            if let Delivery::Kill(sig) = t.deliver_fault(sig, code, addr) {
                return Ended::Signal(sig);
            }
        }
        if let Some(Delivery::Kill(sig)) = t.deliver_caught() {
            return Ended::Signal(sig);
        }
    }
}

/// Runs thread `t` to its end and carries that out: a thread that ends
/// leaves the others running (the first thread waits for them, as a
/// zombie group leader does); the last thread to end, `exit_group` and a
/// fatal signal end the process.
pub fn run_to_end(mut t: Task, leader: bool) {
    let ended = run(&mut t);
    // No signal is taken for a thread on its way out.
    t.signals.detach();
    match ended {
        Ended::Thread(code) => {
            t.release_on_exit();
            RETIRED_BY_ENDED.fetch_add(t.cpu.insns_retired, Ordering::Relaxed);
            let last = t.process.thread_ended(leader, code);
            if let Some(status) = last {
                end_process(&t, Ended::Process(status), false);
            }
            if leader {
                // The process lives on in its other threads; the last of
                // them ends it.
                drop(t);
                loop {
                    std::thread::park();
                }
            }
        }
        other => end_process(&t, other, true),
    }
}

/// Ends the process as `how` says, printing statistics if asked for
/// (`count_self`: `t`'s instructions are not yet counted in).
fn end_process(t: &Task, how: Ended, count_self: bool) -> ! {
    if STATS.load(Ordering::Relaxed) {
        let secs = STARTED.get().map_or(0.0, |s| s.elapsed().as_secs_f64());
        let own = if count_self { t.cpu.insns_retired } else { 0 };
        let n = RETIRED_BY_ENDED.load(Ordering::Relaxed) + own;
        eprintln!(
            "a64-run: {n} instructions in {secs:.3} s ({:.1} MIPS)",
            n as f64 / secs / 1e6
        );
    }
    match how {
        Ended::Thread(code) | Ended::Process(code) => std::process::exit(code & 0xff),
        Ended::Signal(sig) => die_by_signal(sig),
    }
}

/// Ends the runner the way the guest died, so the exit status matches (as qemu-aarch64 does).
fn die_by_signal(sig: i32) -> ! {
    crate::signal::install(sig, libc::SIG_DFL, 0);
    // SAFETY: unblocking and raising a signal at ourselves.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::syscall(libc::SYS_tgkill, libc::getpid(), libc::gettid(), sig);
    }
    std::process::exit(128 + sig)
}
