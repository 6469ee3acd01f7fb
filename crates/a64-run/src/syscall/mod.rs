//! The Linux system call layer: aarch64 numbers and structures, mapped onto
//! the host's system calls.

mod fs;
mod mem;
mod proc;
mod signal;
mod thread;

pub use proc::{
    resolve_program_explained, CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_PARENT_SETTID,
    CLONE_SETTLS,
};

use crate::process::Task;
use crate::space::{PROT_READ, PROT_WRITE};

/// What the run loop must do after a system call.
pub enum Outcome {
    /// Resume after the SVC with this return value in X0.
    Return(i64),
    /// The program was replaced (execve): resume at the new entry point.
    Replaced,
    /// The calling thread ends with this status (`exit`).
    ExitThread(i32),
    /// The whole process exits with this status (`exit_group`).
    ExitGroup(i32),
    /// The process dies of this signal.
    Killed(i32),
}

/// A failing system call's result: a negative errno.
pub type SysResult = Result<i64, i64>;

/// The negative errno of the host's last error.
pub fn last_errno() -> i64 {
    -(std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO) as i64)
}

/// Turns a host libc return value (-1 = error) into a result.
pub fn host(r: i64) -> SysResult {
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r)
    }
}

impl Task {
    /// Argument register `n` of the current system call.
    pub fn arg(&self, n: usize) -> u64 {
        self.cpu.xreg(n)
    }

    /// A host pointer to guest memory [addr, addr+len) mapped with `prot`, or -EFAULT.
    pub fn guest_ptr(&self, addr: u64, len: usize, prot: u32) -> Result<*mut u8, i64> {
        if len == 0 {
            return Ok(std::ptr::NonNull::dangling().as_ptr());
        }
        self.space
            .ptr(addr, len, prot)
            .ok_or(-(libc::EFAULT as i64))
    }

    /// Copies `data` to guest memory (for results), noting writes to code.
    pub fn put(&mut self, addr: u64, data: &[u8]) -> Result<(), i64> {
        let p = self.guest_ptr(addr, data.len(), PROT_WRITE)?;
        // SAFETY: guest_ptr checked the whole range is mapped writable.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        self.cpu.host_memory_written(p as usize, data.len());
        Ok(())
    }

    /// Reads `len` bytes of guest memory.
    pub fn get(&self, addr: u64, len: usize) -> Result<Vec<u8>, i64> {
        let p = self.guest_ptr(addr, len, PROT_READ)?;
        let mut out = vec![0u8; len];
        // SAFETY: guest_ptr checked the range; a raw copy, since other guest
        // threads may write the bytes meanwhile.
        unsafe { std::ptr::copy_nonoverlapping(p, out.as_mut_ptr(), len) };
        Ok(out)
    }

    /// Reads a NUL-terminated guest string.
    pub fn string(&self, addr: u64) -> Result<Vec<u8>, i64> {
        self.space.cstring(addr).ok_or(-(libc::EFAULT as i64))
    }

    /// Reads a NULL-terminated array of guest string pointers (argv, envp).
    pub fn string_array(&self, addr: u64) -> Result<Vec<Vec<u8>>, i64> {
        let mut out = Vec::new();
        if addr == 0 {
            return Ok(out);
        }
        for i in 0..65536u64 {
            let p = u64::from_le_bytes(self.get(addr + 8 * i, 8)?.try_into().expect("8 bytes"));
            if p == 0 {
                return Ok(out);
            }
            out.push(self.string(p)?);
        }
        Err(-(libc::E2BIG as i64))
    }

    /// Handles the system call the guest just made (number in X8).
    pub fn syscall(&mut self) -> Outcome {
        let nr = self.cpu.xreg(8);
        let result = match nr {
            93 => return Outcome::ExitThread(self.arg(0) as i32),
            94 => return Outcome::ExitGroup(self.arg(0) as i32),
            // rt_sigreturn: a bad frame kills, as in Linux.
            139 => match self.sigreturn() {
                Ok(()) => return Outcome::Replaced,
                Err(()) => return Outcome::Killed(libc::SIGSEGV),
            },
            221 | 281 => match self.sys_execve(nr == 281) {
                Ok(()) => return Outcome::Replaced,
                Err(e) => Err(e),
            },
            _ => self
                .fs_syscall(nr)
                .or_else(|| self.mem_syscall(nr))
                .or_else(|| self.thread_syscall(nr))
                .or_else(|| self.proc_syscall(nr))
                .or_else(|| self.signal_syscall(nr))
                .unwrap_or_else(|| {
                    if std::env::var_os("A64_RUN_DEBUG").is_some() {
                        eprintln!("a64-run: unimplemented system call {nr}");
                    }
                    Err(-(libc::ENOSYS as i64))
                }),
        };
        Outcome::Return(result.unwrap_or_else(|e| e))
    }
}
