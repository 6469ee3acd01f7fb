//! Blocking host calls that a guest signal cannot slip past.
//!
//! The host signal handler only records a signal for the guest; the run
//! loop delivers it. A signal that arrives after the run loop last looked
//! but before a blocking call (a `read`, a futex wait) has entered the
//! kernel would otherwise be taken only when that call returns — maybe
//! never. [`safe_syscall`] closes the window as qemu-user does: a small
//! stub checks the thread's "interrupted" flag and then makes the call;
//! the handler sets the flag and, if it interrupted the stub between the
//! check and the system call instruction, moves it to the stub's exit
//! that returns [`RESTART`] ([`rewind`]). That exit means the call was
//! never made, so the run loop delivers the signal and makes the guest's
//! call again — what Linux does for a signal that comes before a call
//! (and for a call the kernel restarts itself: it puts the PC back on the
//! system call instruction, inside the window). A signal taken inside the
//! call ends it with EINTR as usual (the handler has no SA_RESTART), and
//! one taken after it changes nothing. The run loop clears the flag each
//! time it looks for signals.

use std::sync::atomic::AtomicU32;

/// What a call the stub did not make returns (as a negative errno): the
/// run loop delivers the waiting signal and runs the guest's call again.
pub const RESTART: i64 = -512;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("a64-run's safe_syscall stub exists for x86-64 and aarch64 hosts only");

/// Emits the stub around one architecture's instructions: `setup` moves
/// (flag, nr, a0..a5) into the system call's registers, `check` jumps to
/// `pv_safe_syscall_restart` if the flag (its address kept in a scratch
/// register) is set, `call` is the system call instruction, and `restart`
/// puts [`RESTART`] in the return register. The labels around `check` and
/// `call` are the window [`rewind`] looks for.
macro_rules! safe_syscall_stub {
    (
        type: $ty:literal,
        setup: [$($setup:literal),* $(,)?],
        check: [$($check:literal),* $(,)?],
        call: $call:literal,
        restart: $restart:literal $(,)?
    ) => {
        std::arch::global_asm!(
            ".text",
            ".globl pv_safe_syscall",
            ".hidden pv_safe_syscall",
            concat!(".type pv_safe_syscall, ", $ty),
            "pv_safe_syscall:",
            $($setup,)*
            ".globl pv_safe_syscall_start",
            ".hidden pv_safe_syscall_start",
            "pv_safe_syscall_start:",
            $($check,)*
            $call,
            ".globl pv_safe_syscall_end",
            ".hidden pv_safe_syscall_end",
            "pv_safe_syscall_end:",
            "    ret",
            ".globl pv_safe_syscall_restart",
            ".hidden pv_safe_syscall_restart",
            "pv_safe_syscall_restart:",
            $restart,
            "    ret",
            ".size pv_safe_syscall, . - pv_safe_syscall",
        );
    };
}

// (flag, nr, a0, a1, a2, a3, a4, a5) arrive in rdi, rsi, rdx, rcx, r8, r9
// and on the stack; the kernel wants nr in rax and a0..a5 in rdi, rsi, rdx,
// r10, r8, r9.
#[cfg(target_arch = "x86_64")]
safe_syscall_stub!(
    type: "@function",
    setup: [
        "    mov r11, rdi",
        "    mov rax, rsi",
        "    mov rdi, rdx",
        "    mov rsi, rcx",
        "    mov rdx, r8",
        "    mov r10, r9",
        "    mov r8, [rsp + 8]",
        "    mov r9, [rsp + 16]",
    ],
    check: ["    cmp dword ptr [r11], 0", "    jne pv_safe_syscall_restart"],
    call: "    syscall",
    restart: "    mov rax, -512",
);

// (flag, nr, a0, a1, a2, a3, a4, a5) arrive in x0..x7; the kernel wants nr
// in x8 and a0..a5 in x0..x5.
#[cfg(target_arch = "aarch64")]
safe_syscall_stub!(
    type: "%function",
    setup: [
        "    mov x9, x0",
        "    mov x8, x1",
        "    mov x0, x2",
        "    mov x1, x3",
        "    mov x2, x4",
        "    mov x3, x5",
        "    mov x4, x6",
        "    mov x5, x7",
    ],
    check: ["    ldr w10, [x9]", "    cbnz w10, pv_safe_syscall_restart"],
    call: "    svc #0",
    restart: "    mov x0, #-512",
);

extern "C" {
    /// The stub: checks `*flag`, then makes system call `nr`; returns the
    /// kernel's result (a negative errno on failure).
    fn pv_safe_syscall(
        flag: *const AtomicU32,
        nr: i64,
        a0: i64,
        a1: i64,
        a2: i64,
        a3: i64,
        a4: i64,
        a5: i64,
    ) -> i64;
    static pv_safe_syscall_start: u8;
    static pv_safe_syscall_end: u8;
    static pv_safe_syscall_restart: u8;
}

/// Makes host system call `nr` with `args` (at most six) unless a signal
/// for the guest is waiting, in which case it fails with [`RESTART`]
/// without entering the kernel. Returns as `libc::syscall` does: the
/// result, or -1 with errno set.
///
/// # Safety
/// As for `libc::syscall`: every pointer among `args` is valid for what
/// call `nr` does with it.
pub unsafe fn safe_syscall(nr: libc::c_long, args: &[i64]) -> i64 {
    let mut a = [0i64; 6];
    a[..args.len()].copy_from_slice(args);
    let flag = crate::signal::interrupt_flag();
    // SAFETY: the stub is a system call; the caller vouches for the
    // arguments as it would for `libc::syscall`.
    let r = unsafe { pv_safe_syscall(flag, nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if (-4095..0).contains(&r) {
        // SAFETY: the calling thread's errno.
        unsafe { *libc::__errno_location() = -r as i32 };
        -1
    } else {
        r
    }
}

/// Called by the signal handler (after it set the flag) with the
/// interrupted context: a thread stopped between the stub's check and its
/// system call instruction goes to the stub's [`RESTART`] exit instead.
///
/// # Safety
/// `context` is the `ucontext_t` the kernel passed the handler.
pub unsafe fn rewind(context: *mut libc::c_void) {
    if context.is_null() {
        return;
    }
    let start = &raw const pv_safe_syscall_start as u64;
    let end = &raw const pv_safe_syscall_end as u64;
    let restart = &raw const pv_safe_syscall_restart as u64;
    let uc = context as *mut libc::ucontext_t;
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: the kernel's context for this handler.
        let pc = unsafe { &mut (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] };
        if (start..end).contains(&(*pc as u64)) {
            *pc = restart as i64;
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        // SAFETY: the kernel's context for this handler.
        let pc = unsafe { &mut (*uc).uc_mcontext.pc };
        if (start..end).contains(pc) {
            *pc = restart;
        }
    }
}
