//! Guest threads: `clone` with CLONE_THREAD starts a host thread running a
//! CPU of its own in the process's shared address space.

use std::sync::mpsc;

use crate::process::{user_cpu, Task};
use crate::signal;
use crate::syscall::{
    SysResult, CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_PARENT_SETTID, CLONE_SETTLS,
};

/// Host stack of a guest thread's runner (the guest's own stack is in guest memory).
const HOST_STACK: usize = 8 << 20;

/// Starts a thread of `parent`'s process: a copy of the parent's registers
/// returning 0 from `clone` on stack `stack` (if not 0), with thread
/// pointer `tls` (CLONE_SETTLS), its thread id written at `ptid`
/// (CLONE_PARENT_SETTID) and `ctid` (CLONE_CHILD_SETTID), and `ctid` to be
/// zeroed and woken when it ends (CLONE_CHILD_CLEARTID). Returns its
/// thread id once both ids are written.
pub fn spawn(
    parent: &mut Task,
    flags: u64,
    stack: u64,
    ptid: u64,
    tls: u64,
    ctid: u64,
) -> SysResult {
    let mut state = parent.cpu.state();
    state.x[0] = 0;
    state.pc += 4;
    if stack != 0 {
        state.sp = stack;
    }
    if flags & CLONE_SETTLS != 0 {
        state.tpidr_el0 = tls;
    }
    state.monitor = Default::default();
    state.insns_retired = 0;
    state.exceptions_taken = 0;
    let mut cpu = user_cpu();
    cpu.set_state(&state);
    let mut child = Task::with_cpu(parent.process.clone(), cpu);
    // The mask is inherited; the alternate stack is not (Linux, for CLONE_VM).
    child.sigmask = parent.sigmask;
    if flags & CLONE_CHILD_CLEARTID != 0 {
        child.clear_child_tid = ctid;
    }
    let (tid_tx, tid_rx) = mpsc::channel();
    parent.process.thread_started();
    // The host thread inherits a mask blocking everything (but 32, which the
    // host C library unblocks in every thread it starts: a process-directed
    // 32 landing before `attach` is lost), so no signal reaches it before
    // it can take one for the guest.
    let before = signal::block_all();
    let started = std::thread::Builder::new()
        .name("guest thread".into())
        .stack_size(HOST_STACK)
        .spawn(move || {
            // SAFETY: no arguments.
            let tid = unsafe { libc::gettid() } as u32;
            child.signals.attach();
            if flags & CLONE_CHILD_SETTID != 0 {
                let _ = child.put(ctid, &tid.to_le_bytes());
            }
            if flags & CLONE_PARENT_SETTID != 0 {
                let _ = child.put(ptid, &tid.to_le_bytes());
            }
            let _ = tid_tx.send(tid);
            signal::set_host_mask(child.sigmask);
            // A panic must not leave the process waiting for this thread
            // (nor the signal handler pointing at its freed record).
            let body = std::panic::AssertUnwindSafe(|| crate::run::run_to_end(child, false));
            if std::panic::catch_unwind(body).is_err() {
                signal::block_all();
                std::process::abort();
            }
        });
    signal::set_host_mask_raw(before);
    let tid = started.ok().and_then(|_| tid_rx.recv().ok());
    match tid {
        Some(tid) => Ok(tid as i64),
        None => {
            parent.process.thread_ended(false, 0);
            Err(-(libc::EAGAIN as i64))
        }
    }
}
