//! Signal system calls: actions, the mask, the alternate stack, waiting for
//! signals and interval timers. Delivery itself is in `crate::signal`.

use super::{host, SysResult};
use crate::process::Task;
use crate::safe_syscall::safe_syscall;
use crate::signal::{self, sig_bit, SigAltStack, SS_DISABLE, SS_ONSTACK, UNBLOCKABLE};

const EINVAL: i64 = -(libc::EINVAL as i64);
const EINTR: i64 = -(libc::EINTR as i64);
/// The smallest alternate stack Linux arm64 accepts (MINSIGSTKSZ).
const MINSIGSTKSZ: u64 = 5120;

impl Task {
    /// Signal calls; `None` if `nr` is not one of them.
    pub(super) fn signal_syscall(&mut self, nr: u64) -> Option<SysResult> {
        let (a0, a1, a2, a3) = (self.arg(0), self.arg(1), self.arg(2), self.arg(3));
        Some(match nr {
            132 => self.sigaltstack(a0, a1),
            133 => self.sigsuspend(a0, a1),
            134 => self.sigaction(a0, a1, a2),
            135 => self.sigprocmask(a0 as i32, a1, a2),
            136 => self.sigpending(a0),
            137 => self.sigtimedwait(a0, a1, a2, a3),
            138 => self.sigqueueinfo(None, a0 as i32, a1 as i32, a2),
            240 => self.sigqueueinfo(Some(a0 as i32), a1 as i32, a2 as i32, a3),
            102 => self.fill_itimer(a1, |p| unsafe { libc::getitimer(a0 as _, p) }),
            103 => self.setitimer(a0 as i32, a1, a2),
            _ => return None,
        })
    }

    /// Reads a guest sigset (8 bytes; Linux rejects other sizes).
    fn sigset(&self, addr: u64, size: u64) -> Result<u64, i64> {
        if size != 8 {
            return Err(EINVAL);
        }
        Ok(u64::from_le_bytes(
            self.get(addr, 8)?.try_into().expect("8 bytes"),
        ))
    }

    fn sigaction(&mut self, sig: u64, act: u64, old: u64) -> SysResult {
        if sig_bit(sig).is_none() {
            return Err(EINVAL);
        }
        let mut prev = self.process.sigaction(sig);
        if act != 0 {
            if matches!(sig as i32, libc::SIGKILL | libc::SIGSTOP) {
                return Err(EINVAL);
            }
            let b = self.get(act, 32)?;
            let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8"));
            // aarch64's kernel sigaction: handler, flags, restorer, mask.
            prev = self
                .process
                .set_sigaction(sig, [w(0), w(1), w(2), w(3) & !UNBLOCKABLE]);
        }
        if old != 0 {
            let b: Vec<u8> = prev.iter().flat_map(|w| w.to_le_bytes()).collect();
            self.put(old, &b)?;
        }
        Ok(0)
    }

    fn sigprocmask(&mut self, how: i32, set: u64, old: u64) -> SysResult {
        let prev = self.sigmask;
        if set != 0 {
            let m = self.sigset(set, 8)?;
            let new = match how {
                libc::SIG_BLOCK => prev | m,
                libc::SIG_UNBLOCK => prev & !m,
                libc::SIG_SETMASK => m,
                _ => return Err(EINVAL),
            };
            self.set_sigmask(new);
        }
        if old != 0 {
            self.put(old, &prev.to_le_bytes())?;
        }
        Ok(0)
    }

    fn sigpending(&mut self, set: u64) -> SysResult {
        let mut host_pending = 0u64;
        // SAFETY: the kernel's sigset is 8 bytes.
        host(unsafe { libc::syscall(libc::SYS_rt_sigpending, &mut host_pending as *mut u64, 8) })?;
        let all = (host_pending | self.signals.pending()) & self.sigmask;
        self.put(set, &all.to_le_bytes()).map(|_| 0)
    }

    /// Waits with `mask` as the mask until a signal is caught; always -EINTR.
    /// The handler's frame keeps the mask from before the call.
    fn sigsuspend(&mut self, set: u64, size: u64) -> SysResult {
        let mask = self.sigset(set, size)?;
        let host_mask = self.begin_temporary_mask(mask)?;
        // Returns when a handler ran (or a signal for the guest is waiting).
        unsafe {
            safe_syscall(
                libc::SYS_rt_sigsuspend,
                &[&host_mask as *const u64 as i64, 8],
            )
        };
        Err(EINTR)
    }

    fn sigtimedwait(&mut self, set: u64, info: u64, timeout: u64, size: u64) -> SysResult {
        let wanted = self.sigset(set, size)?;
        // A signal already caught for the guest is taken first.
        let caught = self.signals.pending() & wanted;
        if caught != 0 {
            let sig = caught.trailing_zeros() as u64 + 1;
            let si = self.signals.take_caught(sig);
            if info != 0 {
                self.put(info, &si)?;
            }
            return Ok(sig as i64);
        }
        let t = if timeout == 0 {
            std::ptr::null()
        } else {
            self.guest_ptr(timeout, 16, crate::space::PROT_READ)? as *const libc::timespec
        };
        let mut si = [0u8; 128];
        let host_set = signal::host_mask(wanted);
        // SAFETY: an 8-byte kernel sigset, a 128-byte siginfo buffer and a checked timespec.
        let args = [
            &host_set as *const u64 as i64,
            si.as_mut_ptr() as i64,
            t as i64,
            8,
        ];
        let r = host(unsafe { safe_syscall(libc::SYS_rt_sigtimedwait, &args) })?;
        if info != 0 {
            self.put(info, &si)?;
        }
        Ok(r)
    }

    /// rt_sigqueueinfo / rt_tgsigqueueinfo: siginfo has one layout on both architectures.
    fn sigqueueinfo(&mut self, tgid: Option<i32>, pid: i32, sig: i32, info: u64) -> SysResult {
        let si = self.get(info, 128)?;
        // SAFETY: a 128-byte siginfo copied from the guest.
        host(unsafe {
            match tgid {
                None => libc::syscall(libc::SYS_rt_sigqueueinfo, pid, sig, si.as_ptr()),
                Some(tgid) => {
                    libc::syscall(libc::SYS_rt_tgsigqueueinfo, tgid, pid, sig, si.as_ptr())
                }
            }
        })
    }

    fn sigaltstack(&mut self, new: u64, old: u64) -> SysResult {
        let prev = self.altstack;
        let prev_flags = self.altstack_flags();
        if new != 0 {
            let b = self.get(new, 24)?;
            let sp = u64::from_le_bytes(b[0..8].try_into().expect("8"));
            let flags = i32::from_le_bytes(b[8..12].try_into().expect("4"));
            let size = u64::from_le_bytes(b[16..24].try_into().expect("8"));
            if prev_flags == SS_ONSTACK {
                return Err(-(libc::EPERM as i64));
            }
            self.altstack = if flags & SS_DISABLE != 0 {
                SigAltStack::default()
            } else if flags & !(1 << 31) != 0 {
                // Only SS_AUTODISARM (bit 31) may accompany a new stack.
                return Err(EINVAL);
            } else if size < MINSIGSTKSZ {
                return Err(-(libc::ENOMEM as i64));
            } else {
                SigAltStack { sp, size, flags: 0 }
            };
        }
        if old != 0 {
            let mut b = prev.sp.to_le_bytes().to_vec();
            b.extend_from_slice(&prev_flags.to_le_bytes());
            b.extend_from_slice(&[0; 4]);
            b.extend_from_slice(&prev.size.to_le_bytes());
            self.put(old, &b)?;
        }
        Ok(0)
    }

    fn setitimer(&mut self, which: i32, new: u64, old: u64) -> SysResult {
        // struct itimerval is four longs on both architectures.
        let n = if new == 0 {
            std::ptr::null()
        } else {
            self.guest_ptr(new, 32, crate::space::PROT_READ)? as *const libc::itimerval
        };
        let mut prev: libc::itimerval = unsafe { std::mem::zeroed() };
        // SAFETY: `n` is null or a checked guest itimerval; `prev` is ours.
        host(unsafe { libc::setitimer(which as _, n, &mut prev) } as i64)?;
        if old != 0 {
            // SAFETY: itimerval is plain data.
            let b = unsafe { std::slice::from_raw_parts(&prev as *const _ as *const u8, 32) };
            self.put(old, b)?;
        }
        Ok(0)
    }

    fn fill_itimer(&mut self, addr: u64, f: impl FnOnce(*mut libc::itimerval) -> i32) -> SysResult {
        let mut v: libc::itimerval = unsafe { std::mem::zeroed() };
        host(f(&mut v) as i64)?;
        // SAFETY: itimerval is plain data.
        let b = unsafe { std::slice::from_raw_parts(&v as *const _ as *const u8, 32) };
        self.put(addr, b).map(|_| 0)
    }
}
