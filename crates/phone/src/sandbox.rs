//! The sandbox a VM's worker process enters once its VM is built (files
//! opened, sockets bound, threads started): a seccomp filter that allows
//! only the system calls a running VM makes and kills the process on any
//! other, for every thread of the process at once; and, for trusted VMs,
//! no core dumps and no `/proc/PID/mem` access by other processes of the
//! same user.
//!
//! The allow-list is what the VMM does while a guest runs: memory (guest
//! RAM, the allocator, balloon hole-punching), threads waiting and waking,
//! reads and writes of the files and sockets it already holds (a worker on
//! its own also makes the vsock device's few new unix sockets for guest
//! connections to host ports; a supervised one is given them), the
//! network switch's datagrams, directory listing (read-only directories
//! only: opening anything else fails with EACCES) and removal of dead
//! peers' sockets, the
//! CPU's compiled-code buffer (an anonymous memfd),
//! entropy, clocks and sleeping, signals, new threads (never processes),
//! and exiting. Opening files,
//! binding or listening, creating processes, ptrace, mount, module and
//! key operations, and everything else are not on it.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// System calls a running VM makes with any arguments.
const ALWAYS: &[libc::c_long] = &[
    // Memory: guest RAM, the allocator, balloon and free-page reporting.
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_brk,
    libc::SYS_fallocate,
    // The CPU's compiled-code buffer: one memfd mapped twice (W^X), made
    // when the vCPU first runs. Anonymous memory, no file system access.
    libc::SYS_memfd_create,
    libc::SYS_ftruncate,
    // Threads waiting, waking and ending.
    libc::SYS_futex,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_nanosleep,
    libc::SYS_clock_nanosleep,
    libc::SYS_clock_gettime,
    libc::SYS_gettid,
    libc::SYS_getpid,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_sigaltstack,
    libc::SYS_restart_syscall,
    // The files and sockets it holds.
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_lseek,
    libc::SYS_fdatasync,
    libc::SYS_fsync,
    libc::SYS_close,
    libc::SYS_statx,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_ppoll,
    libc::SYS_pipe2,
    libc::SYS_accept4,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    libc::SYS_shutdown,
    libc::SYS_getsockopt,
    libc::SYS_unlinkat,
    libc::SYS_getdents64,
    libc::SYS_getrandom,
];

/// System calls with no counterpart on every architecture (AArch64 has only
/// the `*at` and `ppoll` forms).
#[cfg(target_arch = "x86_64")]
const LEGACY: &[libc::c_long] = &[libc::SYS_poll, libc::SYS_unlink];
#[cfg(not(target_arch = "x86_64"))]
const LEGACY: &[libc::c_long] = &[];

/// The KVM requests a running VM makes (arm64 `_IO`/`_IOW` numbers):
/// KVM_RUN, KVM_IRQ_LINE, KVM_GET/SET_ONE_REG, KVM_SET/GET_DEVICE_ATTR,
/// KVM_GET_DIRTY_LOG, KVM_SET_USER_MEMORY_REGION (dirty logging on and off)
/// and KVM_GET/SET_MP_STATE (a vCPU's power state, saved and restored).
#[cfg(target_arch = "aarch64")]
const KVM_IOCTLS: &[u64] = &[
    0xae80,
    0x8004_ae98,
    0x4004_ae99,
    0x4008_ae61,
    0x4010_aeab,
    0x4010_aeac,
    0x4018_aee1,
    0x4018_aee2,
    0x4010_ae42,
    0x4020_ae46,
];
#[cfg(not(target_arch = "aarch64"))]
const KVM_IOCTLS: &[u64] = &[];

/// One condition: argument `index` equals `value`.
fn arg_is(index: u8, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(index, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value)
        .map_err(|e| e.to_string())
}

/// The seccomp filter of a worker on its own (`phone worker` without a
/// supervisor): its vsock device connects to host ports itself.
pub fn worker_filter() -> Result<BpfProgram, String> {
    filter(true)
}

/// The seccomp filter of a supervised worker: every vsock stream comes
/// from the supervisor, so it may neither create sockets nor connect —
/// not to another VM's sockets, nor to anything else.
pub fn supervised_worker_filter() -> Result<BpfProgram, String> {
    filter(false)
}

/// The allow-list; `connects` adds `socket` (AF_UNIX only) and `connect`.
// libc's constants have different types on different architectures.
#[allow(clippy::unnecessary_cast)]
fn filter(connects: bool) -> Result<BpfProgram, String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| e.to_string())?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = ALWAYS
        .iter()
        .chain(LEGACY)
        .map(|&s| (s as i64, Vec::new()))
        .collect();
    let rule =
        |conditions: Vec<SeccompCondition>| SeccompRule::new(conditions).map_err(|e| e.to_string());
    if connects {
        // New sockets: unix only (the vsock device's streams to host ports).
        rules.insert(
            libc::SYS_socket as i64,
            vec![rule(vec![arg_is(0, libc::AF_UNIX as u64)?])?],
        );
        rules.insert(libc::SYS_connect as i64, Vec::new());
    }
    // ioctl: only making a socket non-blocking, and (aarch64) running a
    // KVM VM built before the sandbox: no fd to /dev/kvm can be opened
    // here, so these reach only the VM's own descriptors.
    rules.insert(
        libc::SYS_ioctl as i64,
        std::iter::once(libc::FIONBIO as u64)
            .chain(KVM_IOCTLS.iter().copied())
            .map(|request| rule(vec![arg_is(1, request)?]))
            .collect::<Result<_, _>>()?,
    );
    // fcntl: only reading and setting descriptor and file flags, and
    // open-file locks (a migrating VM hands its disks' locks over).
    rules.insert(
        libc::SYS_fcntl as i64,
        [
            libc::F_GETFD,
            libc::F_SETFD,
            libc::F_GETFL,
            libc::F_SETFL,
            libc::F_OFD_SETLK,
        ]
        .iter()
        .map(|&cmd| rule(vec![arg_is(1, cmd as u64)?]))
        .collect::<Result<_, _>>()?,
    );
    // openat: here with any arguments, but the open filter (installed
    // with this one) makes every open but a read-only directory's fail.
    rules.insert(libc::SYS_openat as i64, Vec::new());
    // New threads (the stop handler starts one), never new processes:
    // clone only with CLONE_THREAD; clone3, whose flags a filter cannot
    // see, is turned away with ENOSYS by the second filter (the C library
    // then falls back to clone).
    rules.insert(
        libc::SYS_clone as i64,
        vec![rule(vec![SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(libc::CLONE_THREAD as u64),
            libc::CLONE_THREAD as u64,
        )
        .map_err(|e| e.to_string())?])?],
    );
    rules.insert(libc::SYS_clone3 as i64, Vec::new());
    // tgkill: only threads of this process (a panic's abort), never
    // another process.
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() } as u64;
    rules.insert(libc::SYS_tgkill as i64, vec![rule(vec![arg_is(0, pid)?])?]);
    // prctl: only naming threads.
    rules.insert(
        libc::SYS_prctl as i64,
        vec![rule(vec![arg_is(0, libc::PR_SET_NAME as u64)?])?],
    );
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        arch,
    )
    .map_err(|e| e.to_string())?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())
}

/// A filter under which `calls` fail with `errno` and everything else is
/// left to the allow-list (the kernel applies the stricter answer).
// libc's constants have different types on different architectures.
#[allow(clippy::unnecessary_cast)]
fn errno_filter(calls: &[libc::c_long], errno: i32) -> Result<BpfProgram, String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| e.to_string())?;
    let rules = calls.iter().map(|&c| (c as i64, Vec::new())).collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())
}

/// The second filter: clone3 fails with ENOSYS, everything else is left to
/// [`worker_filter`] (the kernel applies the stricter of the two answers).
pub fn clone3_filter() -> Result<BpfProgram, String> {
    errno_filter(&[libc::SYS_clone3], libc::ENOSYS)
}

/// The open filter: opening anything but a directory, read-only (the
/// network switch lists its directory to flood broadcast frames), fails
/// with EACCES — a refusal, not a kill, because the C library opens files
/// of its own on a thread's behalf and carries on without them (malloc
/// reads `/proc/sys/vm/overcommit_memory` the first time a thread's heap
/// shrinks: with several vCPU threads, that happens while a VM runs).
// libc's constants have different types on different architectures.
#[allow(clippy::unnecessary_cast)]
pub fn open_filter() -> Result<BpfProgram, String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| e.to_string())?;
    let flags_are = |mask: i32, value: i32| {
        SeccompCondition::new(
            2,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(mask as u64),
            value as u64,
        )
        .map_err(|e| e.to_string())
        .and_then(|c| SeccompRule::new(vec![c]).map_err(|e| e.to_string()))
    };
    // Any one of these refuses the open.
    let refused = vec![
        flags_are(libc::O_DIRECTORY, 0)?,
        flags_are(libc::O_ACCMODE, libc::O_WRONLY)?,
        flags_are(libc::O_ACCMODE, libc::O_RDWR)?,
        flags_are(libc::O_CREAT, libc::O_CREAT)?,
        flags_are(libc::O_TRUNC, libc::O_TRUNC)?,
    ];
    let filter = SeccompFilter::new(
        [(libc::SYS_openat as i64, refused)].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EACCES as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())
}

/// Installs `filter` — and the clone3 and open filters — on every thread of
/// this process (they cannot be removed). From then on a forbidden system
/// call kills the process with SIGSYS, and opening a file fails.
pub fn enter(filter: &BpfProgram) -> Result<(), String> {
    // The errno filters first: the allow-list, once in, forbids seccomp().
    for first in [clone3_filter()?, open_filter()?] {
        seccompiler::apply_filter_all_threads(&first).map_err(|e| format!("seccomp: {e}"))?;
    }
    seccompiler::apply_filter_all_threads(filter).map_err(|e| format!("seccomp: {e}"))
}

/// Enters a supervised worker's sandbox: [`supervised_worker_filter`], and
/// removing files fails with EPERM (the network switch's clean-up of a
/// dead peer's socket is the only removal a VMM tries, and a path it is
/// given cannot be checked: a compromised worker must not delete the
/// user's files; the supervisor cleans up instead).
pub fn enter_supervised() -> Result<(), String> {
    let no_unlink = errno_filter(UNLINK, libc::EPERM)?;
    seccompiler::apply_filter_all_threads(&no_unlink).map_err(|e| format!("seccomp: {e}"))?;
    enter(&supervised_worker_filter()?)
}

/// The calls that remove a file.
#[cfg(target_arch = "x86_64")]
const UNLINK: &[libc::c_long] = &[libc::SYS_unlinkat, libc::SYS_unlink];
#[cfg(not(target_arch = "x86_64"))]
const UNLINK: &[libc::c_long] = &[libc::SYS_unlinkat];

/// Makes this process non-dumpable: no core dumps, and other processes of
/// the same user can neither ptrace it nor read its memory through /proc.
pub fn make_non_dumpable() -> Result<(), String> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(format!(
            "PR_SET_DUMPABLE: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}
