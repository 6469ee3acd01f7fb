//! POSIX signals for the guest, delivered the way Linux on arm64 does it.
//!
//! Guest signal numbers, flags and the 128-byte siginfo are the same on
//! aarch64 and x86-64 Linux, so the host kernel does the bookkeeping: the
//! guest's signal mask is the host's (less the fault signals the runner
//! needs), and a signal the guest handles is caught on the host by
//! [`on_host_signal`], which records it and asks the CPU to stop at the next
//! block. The run loop then builds Linux's `rt_sigframe` on the guest stack
//! (siginfo, ucontext with the registers and an FP/SIMD record) and enters
//! the handler; `rt_sigreturn` undoes it. Faults of the guest's own
//! instructions (SIGSEGV, SIGBUS, SIGILL, SIGTRAP) are delivered the same way.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use a64::Signals;

use crate::process::Task;
use crate::space::{Space, PROT_EXEC, PROT_READ};

/// `sa_flags` bits (the same on both architectures).
pub const SA_SIGINFO: u64 = 4;
/// Run the handler on the alternate signal stack.
pub const SA_ONSTACK: u64 = 0x0800_0000;
/// Restart an interrupted system call after the handler.
pub const SA_RESTART: u64 = 0x1000_0000;
const SA_NODEFER: u64 = 0x4000_0000;
/// Reset the handler to the default once it is entered.
pub const SA_RESETHAND: u64 = 0x8000_0000;
const SA_RESTORER: u64 = 0x0400_0000;

/// `ss_flags`: the thread is running on the alternate stack.
pub const SS_ONSTACK: i32 = 1;
/// `ss_flags`: no alternate stack.
pub const SS_DISABLE: i32 = 2;

/// Size of Linux's arm64 `struct rt_sigframe` (siginfo + ucontext).
const FRAME: u64 = 4688;
const INFO: u64 = 0;
const UC: u64 = 128;
const UC_STACK: u64 = UC + 16;
const UC_SIGMASK: u64 = UC + 40;
const MCONTEXT: u64 = UC + 176;
const MC_REGS: u64 = MCONTEXT + 8;
const MC_SP: u64 = MCONTEXT + 256;
const MC_PC: u64 = MCONTEXT + 264;
const MC_PSTATE: u64 = MCONTEXT + 272;
const MC_RESERVED: u64 = MCONTEXT + 288;
const RESERVED_LEN: u64 = 4096;
const FPSIMD_MAGIC: u32 = 0x4650_8001;
const FPSIMD_SIZE: u32 = 528;
const ESR_MAGIC: u32 = 0x4553_5201;

/// What the host signal handler records for one guest thread: the signals
/// it caught for the guest, their siginfo, and the thread's CPU to stop.
pub struct ThreadSignals {
    /// Caught signals the guest has not seen yet (bit n-1 = signal n).
    pending: AtomicU64,
    /// The siginfo of the last catch of each signal, as 16 words.
    info: [[AtomicU64; 16]; 64],
    /// The thread's CPU's lines.
    lines: Arc<Signals>,
    /// Set by the handler: a signal came since the run loop last looked
    /// (a blocking call then fails with EINTR; see `crate::safe_syscall`).
    interrupted: AtomicU32,
}

/// The flag of threads that run no guest code: never set.
static NEVER_INTERRUPTED: AtomicU32 = AtomicU32::new(0);

/// The calling thread's "interrupted" flag (see `crate::safe_syscall`).
pub fn interrupt_flag() -> *const AtomicU32 {
    let current = CURRENT.with(Cell::get);
    if current.is_null() {
        &NEVER_INTERRUPTED
    } else {
        // SAFETY: the record is attached to this thread, so alive.
        unsafe { &(*current).interrupted }
    }
}

thread_local! {
    /// The running guest thread's record (null on threads that run no guest code).
    static CURRENT: Cell<*const ThreadSignals> = const { Cell::new(std::ptr::null()) };
}

/// The host handler for signals the guest handles: remember, and stop the
/// CPU of the thread the host delivered the signal to.
extern "C" fn on_host_signal(
    sig: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    let Some(bit) = sig_bit(sig as u64) else {
        return;
    };
    let current = CURRENT.with(Cell::get);
    if current.is_null() {
        return;
    }
    // SAFETY: published by `ThreadSignals::attach` for this thread and
    // unpublished (with every signal blocked) before it goes away.
    let me = unsafe { &*current };
    if !info.is_null() {
        let words = info as *const u64;
        for (i, slot) in me.info[sig as usize - 1].iter().enumerate() {
            // SAFETY: the kernel passes a full 128-byte siginfo.
            slot.store(unsafe { words.add(i).read() }, Ordering::Relaxed);
        }
    }
    me.pending.fetch_or(bit, Ordering::SeqCst);
    me.interrupted.store(1, Ordering::SeqCst);
    // SAFETY: the context the kernel passed this handler.
    unsafe { crate::safe_syscall::rewind(context) };
    me.lines.request_stop();
}

impl ThreadSignals {
    /// A record for the thread whose CPU has `lines`.
    pub fn new(lines: &Arc<Signals>) -> ThreadSignals {
        ThreadSignals {
            pending: AtomicU64::new(0),
            info: [const { [const { AtomicU64::new(0) }; 16] }; 64],
            lines: lines.clone(),
            interrupted: AtomicU32::new(0),
        }
    }

    /// Makes this the record the host handler fills for the calling thread.
    pub fn attach(&self) {
        CURRENT.with(|c| c.set(self));
    }

    /// Blocks every host signal on the calling thread and stops filling
    /// this record (a thread about to end).
    pub fn detach(&self) {
        block_all();
        CURRENT.with(|c| c.set(std::ptr::null()));
    }
}

impl Drop for ThreadSignals {
    /// A record dropped while still attached (a thread unwinding from a
    /// panic) is detached first, so the handler never reaches freed memory.
    fn drop(&mut self) {
        if std::ptr::eq(CURRENT.with(Cell::get), self) {
            self.detach();
        }
    }
}

impl ThreadSignals {
    /// Caught signals the guest has not seen yet.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::SeqCst)
    }

    /// Forgets caught signals (a forked child starts with none).
    pub fn forget_pending(&self) {
        self.pending.store(0, Ordering::SeqCst);
    }

    /// Takes signal `sig` out of the caught set, returning its siginfo bytes.
    pub fn take_caught(&self, sig: u64) -> [u8; 128] {
        let bit = sig_bit(sig).unwrap_or(0);
        self.pending.fetch_and(!bit, Ordering::SeqCst);
        let mut info = [0u8; 128];
        for (i, slot) in self.info[sig as usize - 1].iter().enumerate() {
            info[i * 8..i * 8 + 8].copy_from_slice(&slot.load(Ordering::Relaxed).to_le_bytes());
        }
        info
    }
}

/// Blocks every host signal on the calling thread; returns the mask before.
pub fn block_all() -> u64 {
    let all = !0u64;
    let mut old = 0u64;
    // SAFETY: the kernel's sigset is 8 bytes; both pointers are our locals.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &all as *const u64,
            &mut old as *mut u64,
            8,
        )
    };
    old
}

/// The mask bit of signal `sig` (1..=64).
pub fn sig_bit(sig: u64) -> Option<u64> {
    (1..=64).contains(&sig).then(|| 1u64 << (sig - 1))
}

/// The guest's own instructions' faults: the runner turns them into signals
/// itself, so the guest may never block or catch them on the host.
const FAULT_SIGNALS: u64 = 1 << (libc::SIGSEGV - 1)
    | 1 << (libc::SIGBUS - 1)
    | 1 << (libc::SIGILL - 1)
    | 1 << (libc::SIGTRAP - 1)
    | 1 << (libc::SIGFPE - 1);

/// Signals no mask can block and no action can catch.
pub const UNBLOCKABLE: u64 = 1 << (libc::SIGKILL - 1) | 1 << (libc::SIGSTOP - 1);

/// Signals whose host disposition the runner keeps for itself.
fn runner_owned(sig: u64) -> bool {
    sig_bit(sig).is_some_and(|bit| (FAULT_SIGNALS | UNBLOCKABLE) & bit != 0)
}

/// Sets the host disposition for guest signal `sig` whose guest handler is
/// `handler` (0 default, 1 ignore, else a guest function).
pub fn set_host_action(sig: u64, handler: u64) {
    if runner_owned(sig) {
        return;
    }
    match handler {
        0 => install(sig as i32, libc::SIG_DFL, 0),
        1 => install(sig as i32, libc::SIG_IGN, 0),
        // No SA_RESTART: a blocking host call returns EINTR and the run
        // loop restarts it for the guest if the guest asked for that.
        _ => install(
            sig as i32,
            on_host_signal as *const () as usize,
            libc::SA_SIGINFO as u64,
        ),
    }
}

/// The kernel's `struct sigaction` (x86-64 and arm64 alike).
#[repr(C)]
#[derive(Default)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Installs a host disposition. The C library refuses the two signals it
/// keeps for its own threads (32 and 33, which a guest's C library uses
/// just the same); those go to the kernel directly, with the C library's
/// return trampoline copied from a disposition it installed.
pub fn install(sig: i32, handler: usize, flags: u64) {
    // SAFETY: a zeroed sigaction is valid; we fill the fields we use.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler;
    sa.sa_flags = flags as i32;
    // SAFETY: installs a disposition for a signal number.
    if unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) } == 0 {
        return;
    }
    let raw = |sig: i32, new: Option<&KernelSigaction>, old: Option<&mut KernelSigaction>| {
        // SAFETY: kernel sigaction structures of ours (or null) and an 8-byte mask.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                new.map_or(std::ptr::null(), |n| n as *const KernelSigaction),
                old.map_or(std::ptr::null_mut(), |o| o as *mut KernelSigaction),
                8,
            )
        }
    };
    // SIGPIPE's disposition was installed through the C library at start-up.
    let mut model = KernelSigaction::default();
    raw(libc::SIGPIPE, None, Some(&mut model));
    let restorer_flag = model.flags & SA_RESTORER;
    let action = KernelSigaction {
        handler,
        flags: flags | restorer_flag,
        restorer: if restorer_flag != 0 {
            model.restorer
        } else {
            0
        },
        mask: 0,
    };
    raw(sig, Some(&action), None);
}

/// Applies the guest mask `mask` to the calling thread on the host (the
/// fault signals stay unblocked).
pub fn set_host_mask(mask: u64) {
    set_host_mask_raw(host_mask(mask));
}

/// Sets the calling thread's host mask to exactly `mask` (as [`block_all`] returned it).
pub fn set_host_mask_raw(mask: u64) {
    // SAFETY: the kernel's sigset is 8 bytes; both pointers are valid or null.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask as *const u64,
            std::ptr::null_mut::<u64>(),
            8,
        )
    };
}

/// The host-side mask for guest mask `mask`, for calls that take one (sigsuspend, ppoll).
pub fn host_mask(mask: u64) -> u64 {
    mask & !FAULT_SIGNALS
}

/// The mask the runner itself was started with (the guest's first mask).
pub fn current_host_mask() -> u64 {
    let mut mask = 0u64;
    // SAFETY: queries the kernel's 8-byte sigset into our local.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            std::ptr::null::<u64>(),
            &mut mask as *mut u64,
            8,
        )
    };
    mask
}

/// A siginfo for a fault of the guest's own code.
pub fn fault_info(sig: i32, code: i32, addr: u64) -> [u8; 128] {
    let mut info = [0u8; 128];
    info[0..4].copy_from_slice(&sig.to_le_bytes());
    info[8..12].copy_from_slice(&code.to_le_bytes());
    info[16..24].copy_from_slice(&addr.to_le_bytes());
    info
}

/// Whether a signal with default action ends the process (as opposed to being ignored).
fn default_kills(sig: u64) -> bool {
    !matches!(
        sig as i32,
        libc::SIGCHLD
            | libc::SIGCONT
            | libc::SIGURG
            | libc::SIGWINCH
            | libc::SIGSTOP
            | libc::SIGTSTP
            | libc::SIGTTIN
            | libc::SIGTTOU
    )
}

/// What became of a signal the run loop tried to deliver.
pub enum Delivery {
    /// The guest handler was entered (or the signal was ignored).
    Done,
    /// The process dies of this signal.
    Kill(i32),
}

/// Maps the page holding the sigreturn trampoline (`mov x8, #139; svc #0`)
/// that handlers return to when the guest gave no restorer; returns its address.
pub fn map_sigtramp(space: &Space) -> Result<u64, String> {
    let addr = space
        .find_free(4096)
        .ok_or("no room for the signal trampoline")?;
    space
        .map(addr, 4096, PROT_READ | PROT_EXEC, None)
        .map_err(|e| format!("mapping the signal trampoline: errno {e}"))?;
    let code = [0xd280_1168u32, 0xd400_0001];
    let bytes: Vec<u8> = code.iter().flat_map(|w| w.to_le_bytes()).collect();
    // SAFETY: the page was just mapped; the host mapping is always writable.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), space.host(addr), 8) };
    Ok(addr)
}

impl Task {
    /// Sets the guest's signal mask (SIGKILL and SIGSTOP cannot be blocked).
    pub fn set_sigmask(&mut self, mask: u64) {
        self.sigmask = mask & !UNBLOCKABLE;
        set_host_mask(self.sigmask);
    }

    fn on_altstack(&self, sp: u64) -> bool {
        self.altstack.flags & SS_DISABLE == 0
            && sp.wrapping_sub(self.altstack.sp) < self.altstack.size
    }

    /// The guest's `ss_flags` for its current stack.
    pub fn altstack_flags(&self) -> i32 {
        if self.altstack.flags & SS_DISABLE != 0 {
            SS_DISABLE
        } else if self.on_altstack(self.cpu.sp) {
            SS_ONSTACK
        } else {
            0
        }
    }

    /// Whether system call `nr`, interrupted (EINTR) by the signal about to be
    /// delivered, is to be restarted after its handler: the handler has
    /// SA_RESTART and the call is not one Linux never restarts (sleeps and
    /// waits for signals).
    pub fn restarts(&self, nr: u64) -> bool {
        let ready = self.signals.pending() & !self.sigmask;
        if ready == 0 || matches!(nr, 22 | 72 | 73 | 101 | 115 | 133 | 137) {
            return false;
        }
        let [handler, flags, ..] = self.process.sigaction(ready.trailing_zeros() as u64 + 1);
        handler > 1 && flags & SA_RESTART != 0
    }

    /// Delivers the lowest caught signal the guest does not block, if any.
    /// After a call that waited under a temporary mask (sigsuspend, ppoll,
    /// pselect) the handler runs under that mask and its frame holds the
    /// mask from before the call, which is back in force afterwards either way.
    pub fn deliver_caught(&mut self) -> Option<Delivery> {
        // Cleared before looking: a signal after this is seen by the next
        // blocking call; one before it is delivered here (or stays blocked).
        self.signals.interrupted.store(0, Ordering::SeqCst);
        let ready = self.signals.pending() & !self.sigmask;
        let delivered = (ready != 0).then(|| {
            let sig = ready.trailing_zeros() as u64 + 1;
            let info = self.signals.take_caught(sig);
            self.deliver(sig, info, None)
        });
        if let Some(before) = self.saved_sigmask.take() {
            self.set_sigmask(before);
        }
        // Another signal still waiting is taken at the next block boundary
        // (its frame on top of this one, as Linux nests them), before any
        // blocking call.
        if self.signals.pending() & !self.sigmask != 0 {
            self.signals.interrupted.store(1, Ordering::SeqCst);
            self.signals.lines.request_stop();
        }
        delivered
    }

    /// Starts a call that waits under the temporary guest mask `mask`:
    /// returns the host mask to wait under, or -EINTR if a caught signal
    /// that `mask` lets through is already waiting. The host thread takes
    /// the temporary mask at once, and the "interrupted" flag is set anew
    /// for it (with every signal held off meanwhile), so the call's
    /// `safe_syscall` is interrupted exactly by what the mask lets through.
    pub fn begin_temporary_mask(&mut self, mask: u64) -> Result<u64, i64> {
        block_all();
        self.saved_sigmask = Some(std::mem::replace(&mut self.sigmask, mask));
        let waiting = self.signals.pending() & !mask != 0;
        self.signals
            .interrupted
            .store(waiting as u32, Ordering::SeqCst);
        set_host_mask(mask);
        if waiting {
            return Err(-(libc::EINTR as i64));
        }
        Ok(host_mask(mask))
    }

    /// Ends a call made under a temporary mask (`begin_temporary_mask`):
    /// an interrupted one (EINTR, or the stub's restart, which becomes
    /// EINTR: the mask was in force) keeps the mask for the handler about
    /// to run; any other result puts the guest's own mask back at once, so
    /// nothing the temporary mask let through is delivered (Linux's rule).
    pub fn end_temporary_mask(
        &mut self,
        r: crate::syscall::SysResult,
    ) -> crate::syscall::SysResult {
        match r {
            Err(crate::safe_syscall::RESTART) => Err(-(libc::EINTR as i64)),
            Err(e) if e == -(libc::EINTR as i64) => Err(e),
            other => {
                if let Some(before) = self.saved_sigmask.take() {
                    self.set_sigmask(before);
                }
                other
            }
        }
    }

    /// Delivers a fault of the guest's own instruction: to its handler, or
    /// death if it has none, ignores or blocks the signal (as Linux does).
    pub fn deliver_fault(&mut self, sig: i32, code: i32, addr: u64) -> Delivery {
        let s = sig as u64;
        let handler = self.process.sigaction(s)[0];
        if handler <= 1 || sig_bit(s).is_some_and(|bit| self.sigmask & bit != 0) {
            return Delivery::Kill(sig);
        }
        self.deliver(s, fault_info(sig, code, addr), Some(addr))
    }

    fn deliver(&mut self, sig: u64, info: [u8; 128], fault: Option<u64>) -> Delivery {
        let [handler, flags, restorer, mask] = self.process.action_for_delivery(sig);
        match handler {
            0 if default_kills(sig) => return Delivery::Kill(sig as i32),
            0 | 1 => return Delivery::Done,
            _ => {}
        }
        if self.push_frame(sig, &info, fault, flags, restorer).is_err() {
            // Linux forces SIGSEGV when it cannot write the frame.
            return Delivery::Kill(libc::SIGSEGV);
        }
        self.cpu.pc = handler;
        let mut blocked = self.sigmask | mask;
        if flags & SA_NODEFER == 0 {
            blocked |= sig_bit(sig).unwrap_or(0);
        }
        self.set_sigmask(blocked);
        Delivery::Done
    }

    /// Writes the signal frame and points the registers at the handler's entry state.
    fn push_frame(
        &mut self,
        sig: u64,
        info: &[u8; 128],
        fault: Option<u64>,
        flags: u64,
        restorer: u64,
    ) -> Result<(), i64> {
        let old_sp = self.cpu.sp;
        let stack_flags = self.altstack_flags();
        let mut top = old_sp;
        if flags & SA_ONSTACK != 0 && stack_flags == 0 {
            top = self.altstack.sp + self.altstack.size;
        }
        let record = (top.wrapping_sub(16)) & !15;
        let frame = record.wrapping_sub(FRAME);
        let mut f = vec![0u8; FRAME as usize];
        let mut put = |off: u64, bytes: &[u8]| {
            f[off as usize..off as usize + bytes.len()].copy_from_slice(bytes);
        };
        put(INFO, info);
        put(UC_STACK, &self.altstack.sp.to_le_bytes());
        put(UC_STACK + 8, &stack_flags.to_le_bytes());
        put(UC_STACK + 16, &self.altstack.size.to_le_bytes());
        let frame_mask = self.saved_sigmask.take().unwrap_or(self.sigmask);
        put(UC_SIGMASK, &frame_mask.to_le_bytes());
        put(MCONTEXT, &fault.unwrap_or(0).to_le_bytes());
        for r in 0..31 {
            put(MC_REGS + 8 * r, &self.cpu.xreg(r as usize).to_le_bytes());
        }
        put(MC_SP, &old_sp.to_le_bytes());
        put(MC_PC, &self.cpu.pc.to_le_bytes());
        put(MC_PSTATE, &(self.cpu.nzcv as u64).to_le_bytes());
        let mut rec = MC_RESERVED;
        put(rec, &FPSIMD_MAGIC.to_le_bytes());
        put(rec + 4, &FPSIMD_SIZE.to_le_bytes());
        put(rec + 8, &self.cpu.fpsr.to_le_bytes());
        put(rec + 12, &self.cpu.fpcr.to_le_bytes());
        for v in 0..32 {
            put(rec + 16 + 16 * v, &self.cpu.v[v as usize].to_le_bytes());
        }
        rec += FPSIMD_SIZE as u64;
        if fault.is_some() {
            put(rec, &ESR_MAGIC.to_le_bytes());
            put(rec + 4, &16u32.to_le_bytes());
            rec += 16;
        }
        // The terminating record header is already zero.
        debug_assert!(rec + 8 <= MC_RESERVED + RESERVED_LEN);
        let mut fp_lr = self.cpu.xreg(29).to_le_bytes().to_vec();
        fp_lr.extend_from_slice(&self.cpu.xreg(30).to_le_bytes());
        self.put(record, &fp_lr)?;
        self.put(frame, &f)?;
        self.cpu.sp = frame;
        self.cpu.set_xreg(0, sig);
        if flags & SA_SIGINFO != 0 {
            self.cpu.set_xreg(1, frame + INFO);
            self.cpu.set_xreg(2, frame + UC);
        }
        self.cpu.set_xreg(29, record);
        let ret = if flags & SA_RESTORER != 0 {
            restorer
        } else {
            self.process.sigtramp()
        };
        self.cpu.set_xreg(30, ret);
        Ok(())
    }

    /// `rt_sigreturn`: restores the state saved in the frame at SP. `Err`
    /// means the frame is unreadable or malformed (Linux then kills with SIGSEGV).
    pub fn sigreturn(&mut self) -> Result<(), ()> {
        let frame = self.cpu.sp;
        if frame & 15 != 0 {
            return Err(());
        }
        let f = self.get(frame, FRAME as usize).map_err(|_| ())?;
        let u64_at =
            |off: u64| u64::from_le_bytes(f[off as usize..off as usize + 8].try_into().expect("8"));
        let u32_at =
            |off: u64| u32::from_le_bytes(f[off as usize..off as usize + 4].try_into().expect("4"));
        let pstate = u64_at(MC_PSTATE);
        // Only EL0 with AArch64 state may be returned to.
        if pstate & 0x1f != 0 {
            return Err(());
        }
        let mut fpsimd = None;
        let mut rec = MC_RESERVED;
        while rec + 8 <= MC_RESERVED + RESERVED_LEN {
            let (magic, size) = (u32_at(rec), u32_at(rec + 4) as u64);
            if magic == 0 {
                break;
            }
            if size < 8 || size % 16 != 0 || rec + size > MC_RESERVED + RESERVED_LEN {
                return Err(());
            }
            if magic == FPSIMD_MAGIC {
                if size != FPSIMD_SIZE as u64 {
                    return Err(());
                }
                fpsimd = Some(rec);
            }
            rec += size;
        }
        let fp = fpsimd.ok_or(())?;
        for r in 0..31 {
            self.cpu.set_xreg(r, u64_at(MC_REGS + 8 * r as u64));
        }
        self.cpu.sp = u64_at(MC_SP);
        self.cpu.pc = u64_at(MC_PC);
        self.cpu.nzcv = (pstate as u32) & 0xf000_0000;
        self.cpu.fpsr = u32_at(fp + 8) & a64::FPSR_MASK;
        self.cpu.fpcr = u32_at(fp + 12) & a64::FPCR_MASK;
        for v in 0..32u64 {
            let off = (fp + 16 + 16 * v) as usize;
            self.cpu.v[v as usize] = u128::from_le_bytes(f[off..off + 16].try_into().expect("16"));
        }
        self.set_sigmask(u64_at(UC_SIGMASK));
        Ok(())
    }
}

/// The guest's alternate signal stack (`sigaltstack`).
#[derive(Clone, Copy)]
pub struct SigAltStack {
    /// Lowest address.
    pub sp: u64,
    /// Size in bytes.
    pub size: u64,
    /// `SS_DISABLE` when there is none.
    pub flags: i32,
}

impl Default for SigAltStack {
    fn default() -> Self {
        SigAltStack {
            sp: 0,
            size: 0,
            flags: SS_DISABLE,
        }
    }
}
