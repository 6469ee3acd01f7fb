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

/// Whether statistics are printed when the process ends.
pub fn printing_stats() -> bool {
    STATS.load(Ordering::Relaxed)
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
                    Outcome::Return(crate::safe_syscall::RESTART) => {
                        // Not made: the waiting signal first, then the call again.
                        t.cpu.set_xreg(0, arg0);
                    }
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
/// leaves the others running (the first thread's host thread ends too, so
/// the host process lives on in the others as Linux's does); the last
/// thread to end, `exit_group` and a fatal signal end the process.
pub fn run_to_end(mut t: Task, leader: bool) {
    let ended = run(&mut t);
    // No signal is taken for a thread on its way out.
    t.signals.detach();
    match ended {
        Ended::Thread(code) => {
            t.release_robust_on_exit();
            RETIRED_BY_ENDED.fetch_add(t.cpu.insns_retired, Ordering::Relaxed);
            // Counted out before a joiner can learn of the end (below).
            let last = t.process.thread_ended(leader, code);
            if let Some(status) = last {
                end_process(&t, Ended::Process(status), false);
            }
            t.clear_child_tid_on_exit();
            pass_on_caught_signals(&t);
            drop(t);
            if leader {
                // The main host thread ends alone (not the process), as a
                // guest's first thread does: what it held (a priority-
                // inheritance futex) is handed on by the host kernel.
                // SAFETY: ends the calling thread; nothing of it is used after.
                unsafe { libc::syscall(libc::SYS_exit, 0) };
            }
        }
        other => end_process(&t, other, true),
    }
}

/// Signals the ending thread caught for the guest but did not deliver go
/// back to the process, for another thread to take (as Linux retargets
/// them); those sent to this very thread go with it.
fn pass_on_caught_signals(t: &Task) {
    const SI_TKILL: i32 = -6;
    let mut left = t.signals.pending();
    while left != 0 {
        let sig = left.trailing_zeros() as i32 + 1;
        left &= left - 1;
        let info = t.signals.take_caught(sig as u64);
        let code = i32::from_le_bytes(info[8..12].try_into().expect("4 bytes"));
        if code == SI_TKILL {
            continue;
        }
        // SAFETY: a 128-byte siginfo to our own process; `kill` where the
        // kernel refuses to queue another sender's siginfo from a thread.
        unsafe {
            let pid = libc::getpid();
            if libc::syscall(libc::SYS_rt_sigqueueinfo, pid, sig, info.as_ptr()) != 0 {
                libc::kill(pid, sig);
            }
        }
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
        Ended::Thread(code) | Ended::Process(code) => {
            // SAFETY: ends every thread of the process at once, as the
            // guest's exit_group does (no other thread runs on meanwhile).
            unsafe { libc::syscall(libc::SYS_exit_group, code & 0xff) };
            unreachable!("exit_group returned")
        }
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
