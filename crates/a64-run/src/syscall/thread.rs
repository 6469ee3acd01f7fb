//! Thread system calls: futexes (on the host's futexes: a guest futex word
//! is a host word, and a guest thread a host thread, so waiters of every
//! kind — plain, bitset, requeue, priority inheritance — are the host
//! kernel's), set_tid_address and the robust futex list.

use std::sync::atomic::{AtomicU32, Ordering};

use super::{host, SysResult};
use crate::process::Task;
use crate::space::{PROT_READ, PROT_WRITE};

const EINVAL: i64 = -(libc::EINVAL as i64);
const ENOSYS: i64 = -(libc::ENOSYS as i64);
/// `struct robust_list_head`: next, futex_offset, list_op_pending.
const ROBUST_HEAD_LEN: u64 = 24;
/// At most this many robust list entries are walked (as Linux).
const ROBUST_LIST_LIMIT: usize = 2048;
const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
const FUTEX_WAKE: i32 = 1;
const FUTEX_PRIVATE_FLAG: i32 = 128;
const FUTEX_CLOCK_REALTIME: u64 = 256;

/// The futex operations and what each does with its arguments.
#[derive(Clone, Copy)]
struct FutexArgs {
    /// Access the operation needs to the first word.
    word: u32,
    /// Whether the fourth argument is a timeout (else a count or unused).
    timeout: bool,
    /// Access the operation needs to the second word (0: no second word).
    word2: u32,
}

fn futex_args(cmd: u64) -> Option<FutexArgs> {
    let (word, timeout, word2) = match cmd {
        // WAIT, WAIT_BITSET
        0 | 9 => (PROT_READ, true, 0),
        // WAKE, WAKE_BITSET: the word is not read (0: in range will do)
        1 | 10 => (0, false, 0),
        // REQUEUE, CMP_REQUEUE
        3 | 4 => (PROT_READ, false, PROT_READ),
        // WAKE_OP writes the second word
        5 => (PROT_READ, false, PROT_READ | PROT_WRITE),
        // LOCK_PI, LOCK_PI2
        6 | 13 => (PROT_READ | PROT_WRITE, true, 0),
        // UNLOCK_PI, TRYLOCK_PI
        7 | 8 => (PROT_READ | PROT_WRITE, false, 0),
        // WAIT_REQUEUE_PI
        11 => (PROT_READ, true, PROT_READ | PROT_WRITE),
        // CMP_REQUEUE_PI
        12 => (PROT_READ, false, PROT_READ | PROT_WRITE),
        _ => return None,
    };
    Some(FutexArgs {
        word,
        timeout,
        word2,
    })
}

impl Task {
    /// Thread calls; `None` if `nr` is not one of them.
    pub(super) fn thread_syscall(&mut self, nr: u64) -> Option<SysResult> {
        let (a0, a1, a2) = (self.arg(0), self.arg(1), self.arg(2));
        Some(match nr {
            98 => self.futex(a0, a1, a2, self.arg(3), self.arg(4), self.arg(5)),
            96 => {
                self.clear_child_tid = a0;
                // SAFETY: no arguments.
                Ok(unsafe { libc::gettid() } as i64)
            }
            99 => {
                if a1 != ROBUST_HEAD_LEN {
                    Err(EINVAL)
                } else {
                    self.robust_list = a0;
                    Ok(0)
                }
            }
            100 => {
                // SAFETY: no arguments.
                let me = unsafe { libc::gettid() } as u64;
                if a0 != 0 && a0 != me {
                    // Other threads' lists are theirs; Linux needs ptrace rights for them.
                    Err(-(libc::EPERM as i64))
                } else {
                    self.put(a1, &self.robust_list.to_le_bytes())
                        .and_then(|_| self.put(a2, &ROBUST_HEAD_LEN.to_le_bytes()))
                        .map(|_| 0)
                }
            }
            _ => return None,
        })
    }

    /// A guest futex word as a host pointer: 4-byte aligned (else EINVAL)
    /// and mapped with `prot` (else EFAULT); with `prot` 0 (a wake, which
    /// never reads the word) only inside the guest's address space.
    fn futex_word(&self, addr: u64, prot: u32) -> Result<*mut u32, i64> {
        if addr & 3 != 0 {
            return Err(EINVAL);
        }
        if prot == 0 {
            if addr
                .checked_add(4)
                .is_none_or(|end| end > crate::space::SPACE_SIZE)
            {
                return Err(-(libc::EFAULT as i64));
            }
            return Ok(self.space.host(addr) as *mut u32);
        }
        Ok(self.guest_ptr(addr, 4, prot)? as *mut u32)
    }

    fn futex(
        &mut self,
        uaddr: u64,
        op: u64,
        val: u64,
        arg4: u64,
        uaddr2: u64,
        val3: u64,
    ) -> SysResult {
        let cmd = op & !(FUTEX_PRIVATE_FLAG as u64 | FUTEX_CLOCK_REALTIME);
        let args = futex_args(cmd).ok_or(ENOSYS)?;
        let word = self.futex_word(uaddr, args.word)?;
        let word2 = if args.word2 != 0 {
            self.futex_word(uaddr2, args.word2)?
        } else {
            std::ptr::null_mut()
        };
        // A timeout is a `struct timespec`, the same on both architectures;
        // otherwise the fourth argument is a count, passed as it is.
        let arg4 = if args.timeout && arg4 != 0 {
            self.guest_ptr(arg4, 16, PROT_READ)? as usize
        } else {
            arg4 as usize
        };
        // The words are checked guest words in our reservation, the timeout
        // a checked guest timespec; the host kernel does the rest.
        let args = [
            word as i64,
            op as i32 as i64,
            val as u32 as i64,
            arg4 as i64,
            word2 as i64,
            val3 as u32 as i64,
        ];
        host(unsafe { crate::safe_syscall::safe_syscall(libc::SYS_futex, &args) })
    }

    /// What Linux does first for a thread that ends: its robust futexes
    /// are marked as their owner having died (waiters woken).
    pub fn release_robust_on_exit(&mut self) {
        // SAFETY: no arguments.
        let tid = unsafe { libc::gettid() } as u32;
        self.release_robust_futexes(tid);
    }

    /// What Linux does last for a thread that ends: the word at its
    /// clear-child-tid address is zeroed and a waiter woken (how
    /// pthread_join learns of the end).
    pub fn clear_child_tid_on_exit(&mut self) {
        let at = std::mem::take(&mut self.clear_child_tid);
        if at != 0 {
            if let Ok(word) = self.futex_word(at, PROT_WRITE) {
                // SAFETY: a checked, aligned guest word.
                unsafe { AtomicU32::from_ptr(word) }.store(0, Ordering::SeqCst);
                // Linux wakes with a shared futex key; a waiter on the private
                // key is woken too (a spurious wake-up harms nobody).
                futex_wake(word, FUTEX_WAKE);
                futex_wake(word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG);
            }
        }
    }

    /// Walks the thread's robust futex list (as the kernel's exit path does).
    fn release_robust_futexes(&mut self, tid: u32) {
        let head = std::mem::take(&mut self.robust_list);
        if head == 0 {
            return;
        }
        let read = |t: &Task, at: u64| -> Option<u64> {
            t.get(at, 8)
                .ok()
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        };
        let (Some(mut entry), Some(offset), Some(pending)) = (
            read(self, head),
            read(self, head.wrapping_add(8)),
            read(self, head.wrapping_add(16)),
        ) else {
            return;
        };
        // Bit 0 of a list pointer marks a priority-inheritance futex.
        let pending_pi = pending & 1 != 0;
        let pending = pending & !1;
        let mut walked = 0;
        while entry & !1 != head {
            let next = read(self, entry & !1);
            if entry & !1 != pending {
                self.futex_owner_died(
                    (entry & !1).wrapping_add(offset),
                    tid,
                    entry & 1 != 0,
                    false,
                );
            }
            let Some(next) = next else {
                return;
            };
            entry = next;
            walked += 1;
            if walked >= ROBUST_LIST_LIMIT {
                break;
            }
        }
        if pending != 0 {
            self.futex_owner_died(pending.wrapping_add(offset), tid, pending_pi, true);
        }
    }

    /// Marks the robust futex at `addr` as its owner (`tid`) having died,
    /// waking a waiter of a plain futex (the host kernel hands a priority
    /// inheritance futex on when the owning host thread ends, which every
    /// guest thread's host thread does).
    fn futex_owner_died(&self, addr: u64, tid: u32, pi: bool, pending_op: bool) {
        let Ok(word) = self.futex_word(addr, PROT_READ | PROT_WRITE) else {
            return;
        };
        // SAFETY: a checked, aligned guest word.
        let word_ref = unsafe { AtomicU32::from_ptr(word) };
        let mut value = word_ref.load(Ordering::SeqCst);
        loop {
            // A lock being taken when the thread ended: wake a waiter that may depend on it.
            if pending_op && !pi && value == 0 {
                futex_wake(word, FUTEX_WAKE);
                return;
            }
            if value & FUTEX_TID_MASK != tid {
                return;
            }
            let died = (value & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
            match word_ref.compare_exchange(value, died, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => break,
                Err(now) => value = now,
            }
        }
        if !pi && value & FUTEX_WAITERS != 0 {
            futex_wake(word, FUTEX_WAKE);
        }
    }
}

/// Wakes one waiter of the futex at host address `word`.
fn futex_wake(word: *mut u32, op: i32) {
    // SAFETY: a wake only looks the word's key up.
    unsafe { libc::syscall(libc::SYS_futex, word, op, 1, 0, 0, 0) };
}
