//! Process, time and signal system calls, including fork (the host process
//! forks and both copies go on emulating) and execve (handled inside the
//! runner: the host kernel is never asked to run an aarch64 program).

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::{host, SysResult};
use crate::loader::Image;
use crate::process::Task;
use crate::safe_syscall::safe_syscall;
use crate::space::{PROT_READ, PROT_WRITE};

const CLONE_VM: u64 = 0x100;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_THREAD: u64 = 0x1_0000;
/// The child's TPIDR_EL0 (its thread pointer) is the `tls` argument.
pub const CLONE_SETTLS: u64 = 0x8_0000;
/// The child's thread id is written at `ptid` (in the parent's memory).
pub const CLONE_PARENT_SETTID: u64 = 0x10_0000;
/// The word at `ctid` is zeroed and woken when the child ends.
pub const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
/// The child's thread id is written at `ctid` (in the child's memory).
pub const CLONE_CHILD_SETTID: u64 = 0x100_0000;
const ENOSYS: i64 = -(libc::ENOSYS as i64);

impl Task {
    /// Process, time and signal calls; `None` if `nr` is not one of them.
    pub(super) fn proc_syscall(&mut self, nr: u64) -> Option<SysResult> {
        let (a0, a1, a2, a3, a4) = (
            self.arg(0),
            self.arg(1),
            self.arg(2),
            self.arg(3),
            self.arg(4),
        );
        // SAFETY (for the libc calls below): pointers are checked guest buffers or our own locals.
        Some(match nr {
            160 => self.uname(a0),
            172 => Ok(unsafe { libc::getpid() } as i64),
            173 => Ok(unsafe { libc::getppid() } as i64),
            178 => Ok(unsafe { libc::gettid() } as i64),
            174 => Ok(unsafe { libc::getuid() } as i64),
            175 => Ok(unsafe { libc::geteuid() } as i64),
            176 => Ok(unsafe { libc::getgid() } as i64),
            177 => Ok(unsafe { libc::getegid() } as i64),
            148 | 150 => {
                let (mut r, mut e, mut s) = (0u32, 0u32, 0u32);
                let res = if nr == 148 {
                    unsafe { libc::getresuid(&mut r, &mut e, &mut s) }
                } else {
                    unsafe { libc::getresgid(&mut r, &mut e, &mut s) }
                };
                host(res as i64).and_then(|_| {
                    self.put(a0, &r.to_le_bytes())?;
                    self.put(a1, &e.to_le_bytes())?;
                    self.put(a2, &s.to_le_bytes())?;
                    Ok(0)
                })
            }
            158 => self.fill_host(a1, a0 as usize * 4, |p| unsafe {
                libc::getgroups(a0 as i32, p as *mut u32)
            } as i64),
            154 => host(unsafe { libc::setpgid(a0 as i32, a1 as i32) } as i64),
            155 => host(unsafe { libc::getpgid(a0 as i32) } as i64),
            156 => host(unsafe { libc::getsid(a0 as i32) } as i64),
            157 => host(unsafe { libc::setsid() } as i64),
            167 => Ok(0),
            293 | 435 | 283 => Err(ENOSYS),
            124 => Ok(unsafe { libc::sched_yield() } as i64),
            123 => self.fill_host(a2, a1 as usize, |p| unsafe {
                libc::syscall(libc::SYS_sched_getaffinity, a0 as i32, a1 as usize, p)
            }),
            278 => self.fill_host(a0, a1 as usize, |p| unsafe {
                libc::getrandom(p as *mut _, a1 as usize, a2 as u32) as i64
            }),
            113 => self
                .fill_host(a1, 16, |p| unsafe {
                    libc::clock_gettime(a0 as i32, p as *mut libc::timespec)
                } as i64)
                .map(|_| 0),
            114 => {
                if a1 == 0 {
                    host(unsafe { libc::clock_getres(a0 as i32, std::ptr::null_mut()) } as i64)
                } else {
                    self.fill_host(a1, 16, |p| unsafe {
                        libc::clock_getres(a0 as i32, p as *mut libc::timespec)
                    } as i64)
                        .map(|_| 0)
                }
            }
            169 => {
                let mut tv: libc::timeval = unsafe { std::mem::zeroed() };
                unsafe { libc::gettimeofday(&mut tv, std::ptr::null_mut()) };
                if a0 != 0 {
                    let mut b = tv.tv_sec.to_le_bytes().to_vec();
                    b.extend_from_slice(&tv.tv_usec.to_le_bytes());
                    if let Err(e) = self.put(a0, &b) {
                        return Some(Err(e));
                    }
                }
                Ok(0)
            }
            101 => self.sleep(libc::CLOCK_MONOTONIC, 0, a0, a1),
            115 => self.sleep(a0 as i32, a1 as i32, a2, a3),
            163 | 164 => self.prlimit(
                0,
                a0,
                if nr == 164 { a1 } else { 0 },
                if nr == 163 { a1 } else { 0 },
            ),
            261 => self.prlimit(a0 as i32, a1, a2, a3),
            165 => self
                .fill_host(a1, 144, |p| unsafe {
                    libc::getrusage(a0 as i32, p as *mut libc::rusage)
                } as i64)
                .map(|_| 0),
            153 => {
                if a0 == 0 {
                    Ok(unsafe { libc::times(std::ptr::null_mut()) })
                } else {
                    self.fill_host(a0, 32, |p| unsafe { libc::times(p as *mut libc::tms) })
                }
            }
            179 => self
                .fill_host(
                    a0,
                    112,
                    |p| unsafe { libc::sysinfo(p as *mut libc::sysinfo) } as i64,
                )
                .map(|_| 0),
            129 => host(unsafe { libc::kill(a0 as i32, a1 as i32) } as i64),
            130 => host(unsafe { libc::syscall(libc::SYS_tkill, a0 as i32, a1 as i32) }),
            131 => {
                host(unsafe { libc::syscall(libc::SYS_tgkill, a0 as i32, a1 as i32, a2 as i32) })
            }
            220 => self.clone(a0, a1, a2, a3, a4),
            260 => self.wait4(a0 as i32, a1, a2 as i32, a3),
            95 => self
                .fill_host(a2, 128, |p| {
                    let args = [a0 as i64, a1 as i64, p as i64, a3 as i64, 0];
                    unsafe { safe_syscall(libc::SYS_waitid, &args) }
                })
                .map(|_| 0),
            _ => {
                let _ = a4;
                return None;
            }
        })
    }

    /// Runs a host call that writes into a guest buffer (checked first), noting the write.
    fn fill_host<F: FnOnce(*mut u8) -> i64>(&mut self, addr: u64, len: usize, f: F) -> SysResult {
        let p = self.guest_ptr(addr, len, PROT_WRITE)?;
        let r = host(f(p))?;
        self.cpu.host_memory_written(p as usize, len);
        Ok(r)
    }

    fn uname(&mut self, buf: u64) -> SysResult {
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: `u` is a valid utsname.
        host(unsafe { libc::uname(&mut u) } as i64)?;
        let mut machine = [0 as libc::c_char; 65];
        for (d, s) in machine.iter_mut().zip(b"aarch64") {
            *d = *s as libc::c_char;
        }
        u.machine = machine;
        // SAFETY: utsname is plain bytes (6 fields of 65 chars, same on both architectures).
        let bytes = unsafe {
            std::slice::from_raw_parts(
                &u as *const _ as *const u8,
                std::mem::size_of::<libc::utsname>(),
            )
        };
        self.put(buf, bytes).map(|_| 0)
    }

    fn sleep(&mut self, clock: i32, flags: i32, req: u64, rem: u64) -> SysResult {
        let t = self.guest_ptr(req, 16, PROT_READ)? as *const libc::timespec;
        // SAFETY: `t` was checked. A call that fails before sleeping has the
        // whole request left.
        let mut left: libc::timespec = unsafe { t.read_unaligned() };
        let args = [
            clock as i64,
            flags as i64,
            t as i64,
            &mut left as *mut _ as i64,
        ];
        let r = match unsafe { safe_syscall(libc::SYS_clock_nanosleep, &args) } {
            // SAFETY: the calling thread's errno.
            -1 => unsafe { *libc::__errno_location() },
            _ => 0,
        };
        if r != 0 {
            // Linux reports what is left of a relative sleep only.
            if r == libc::EINTR && rem != 0 && flags & libc::TIMER_ABSTIME == 0 {
                let mut b = left.tv_sec.to_le_bytes().to_vec();
                b.extend_from_slice(&left.tv_nsec.to_le_bytes());
                self.put(rem, &b)?;
            }
            return Err(-(r as i64));
        }
        Ok(0)
    }

    fn prlimit(&mut self, pid: i32, res: u64, new: u64, old: u64) -> SysResult {
        let n = if new == 0 {
            std::ptr::null()
        } else {
            self.guest_ptr(new, 16, PROT_READ)? as *const libc::rlimit64
        };
        let o = if old == 0 {
            std::ptr::null_mut()
        } else {
            self.guest_ptr(old, 16, PROT_WRITE)? as *mut libc::rlimit64
        };
        // SAFETY: both pointers are null or checked guest buffers of the right size.
        host(unsafe { libc::prlimit64(pid, res as _, n, o) } as i64)
    }

    fn clone(&mut self, flags: u64, stack: u64, ptid: u64, tls: u64, ctid: u64) -> SysResult {
        if flags & CLONE_THREAD != 0 {
            // A thread shares the address space and the signal actions (Linux's rule).
            if flags & (CLONE_VM | CLONE_SIGHAND) != CLONE_VM | CLONE_SIGHAND {
                return Err(-(libc::EINVAL as i64));
            }
            return crate::thread::spawn(self, flags, stack, ptid, tls, ctid);
        }
        if flags & CLONE_VM != 0 && flags & CLONE_VFORK == 0 {
            // A process sharing this address space but not its threads: not supported.
            return Err(ENOSYS);
        }
        // vfork is run as fork: the child gets a copy, which is indistinguishable for
        // children that only exec or exit. The process's locks are held across the
        // fork, so the child (this thread only) finds none held by a thread it lacks.
        // SAFETY: fork; the child touches only what this thread owns or those locks guard.
        let pid = self.process.fork_locked(|| unsafe { libc::fork() });
        if pid < 0 {
            return Err(super::last_errno());
        }
        if pid == 0 {
            // The compiled-code buffer is shared with the parent: take our own.
            self.cpu.after_fork();
            // The child's process has this one thread.
            self.process = self.process.forked_child();
            self.cpu.join_domain(self.process.domain.clone());
            // A new process has no pending signals.
            self.signals.forget_pending();
            let me = unsafe { libc::getpid() } as u32;
            if flags & CLONE_CHILD_SETTID != 0 {
                self.put(ctid, &me.to_le_bytes())?;
            }
            // Linux gives a new process no robust list, and a clear-child-tid
            // address only when asked.
            self.robust_list = 0;
            self.clear_child_tid = if flags & CLONE_CHILD_CLEARTID != 0 {
                ctid
            } else {
                0
            };
            if stack != 0 {
                self.cpu.sp = stack;
            }
            return Ok(0);
        }
        if flags & CLONE_PARENT_SETTID != 0 {
            self.put(ptid, &(pid as u32).to_le_bytes())?;
        }
        Ok(pid as i64)
    }

    fn wait4(&mut self, pid: i32, status: u64, options: i32, rusage: u64) -> SysResult {
        let mut st = 0i32;
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: our own locals.
        let args = [
            pid as i64,
            &mut st as *mut i32 as i64,
            options as i64,
            &mut ru as *mut libc::rusage as i64,
        ];
        let r = host(unsafe { safe_syscall(libc::SYS_wait4, &args) })?;
        if status != 0 && r > 0 {
            self.put(status, &st.to_le_bytes())?;
        }
        if rusage != 0 && r > 0 {
            // SAFETY: rusage is plain data with the same layout on both architectures.
            let b = unsafe {
                std::slice::from_raw_parts(
                    &ru as *const _ as *const u8,
                    std::mem::size_of::<libc::rusage>(),
                )
            };
            self.put(rusage, b)?;
        }
        Ok(r)
    }

    /// execve/execveat: loads the new aarch64 program into this process.
    pub(super) fn sys_execve(&mut self, at: bool) -> Result<(), i64> {
        let (path_arg, argv_arg, envp_arg) = if at {
            (self.arg(1), self.arg(2), self.arg(3))
        } else {
            (self.arg(0), self.arg(1), self.arg(2))
        };
        let path = self.string(path_arg)?;
        let argv = self.string_array(argv_arg)?;
        let envp = self.string_array(envp_arg)?;
        let (exe, img, argv) = resolve_program(&self.process.exe(), &path, argv, 0)?;
        let exe_abs = std::fs::canonicalize(&exe).unwrap_or(exe);
        // SAFETY: no arguments.
        let leader = unsafe { libc::gettid() == libc::getpid() };
        if self.process.live_threads() > 1 || !leader {
            // The other threads must go, and the caller become the process's
            // first thread, as in Linux: the host's execve of the runner
            // itself does both, and the new runner loads the program.
            let ignored = (1..=64u64)
                .filter(|&sig| self.process.sigaction(sig)[0] == 1)
                .fold(0u64, |m, sig| m | 1 << (sig - 1));
            return Err(reexec(&exe_abs, &argv, &envp, ignored));
        }
        close_on_exec_fds();
        self.process.set_exe(exe_abs);
        if let Err(msg) = self.start(&img, &argv, &envp) {
            // Past the point of no return, as in Linux: the process dies.
            eprintln!("a64-run: execve: {msg}");
            std::process::exit(128 + libc::SIGSEGV);
        }
        Ok(())
    }
}

/// A program ready to start: its host path, its image and its argv.
pub type Resolved = (PathBuf, Image, Vec<Vec<u8>>);

/// Finds and validates the program `path` names, following "#!" scripts:
/// returns the program to load, its image and the final argv.
pub(super) fn resolve_program(
    current: &std::path::Path,
    path: &[u8],
    argv: Vec<Vec<u8>>,
    depth: u32,
) -> Result<Resolved, i64> {
    resolve_program_explained(current, path, argv, depth).map_err(|(errno, _)| errno)
}

/// As [`resolve_program`], with a sentence explaining a failure.
pub fn resolve_program_explained(
    current: &std::path::Path,
    path: &[u8],
    mut argv: Vec<Vec<u8>>,
    depth: u32,
) -> Result<Resolved, (i64, String)> {
    let errno_text = |e: i64| (e, std::io::Error::from_raw_os_error(-e as i32).to_string());
    if path.is_empty() {
        return Err(errno_text(-(libc::ENOENT as i64)));
    }
    let host_path = if path == b"/proc/self/exe" {
        current.to_path_buf()
    } else {
        PathBuf::from(std::ffi::OsStr::from_bytes(path))
    };
    let cpath = std::ffi::CString::new(host_path.as_os_str().as_encoded_bytes())
        .map_err(|_| errno_text(-(libc::EINVAL as i64)))?;
    // SAFETY: a valid C string.
    if unsafe { libc::access(cpath.as_ptr(), libc::X_OK) } != 0 {
        return Err(errno_text(super::last_errno()));
    }
    if host_path.is_dir() {
        return Err(errno_text(-(libc::EACCES as i64)));
    }
    let bytes = std::fs::read(&host_path)
        .map_err(|e| errno_text(-(e.raw_os_error().unwrap_or(libc::EIO) as i64)))?;
    if bytes.starts_with(b"#!") {
        if depth >= 4 {
            return Err(errno_text(-(libc::ELOOP as i64)));
        }
        let line_end = bytes
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(bytes.len())
            .min(256);
        let line = String::from_utf8_lossy(&bytes[2..line_end])
            .trim()
            .to_string();
        let mut parts = line.splitn(2, [' ', '\t']);
        let interp = parts
            .next()
            .filter(|s| !s.is_empty())
            .ok_or((-(libc::ENOEXEC as i64), "empty #! line".to_string()))?
            .to_string();
        let mut new_argv = vec![interp.clone().into_bytes()];
        if let Some(arg) = parts.next().map(str::trim).filter(|s| !s.is_empty()) {
            new_argv.push(arg.as_bytes().to_vec());
        }
        new_argv.push(path.to_vec());
        new_argv.extend(argv.drain(..).skip(1));
        return resolve_program_explained(current, interp.as_bytes(), new_argv, depth + 1);
    }
    let img = Image::parse(bytes).map_err(|e| (-(e.errno as i64), e.message))?;
    Ok((host_path, img, argv))
}

/// Replaces the whole host process by a new runner for `exe` (argv `argv`,
/// environment `envp`, the signals in mask `ignored` still ignored): how a
/// multi-threaded guest's execve ends its other threads. The guest's
/// environment goes to the new runner as arguments; the runner keeps its
/// own. Returns only on failure, with the negative errno.
fn reexec(exe: &std::path::Path, argv: &[Vec<u8>], envp: &[Vec<u8>], ignored: u64) -> i64 {
    let cstr = |b: &[u8]| std::ffi::CString::new(b).map_err(|_| -(libc::EINVAL as i64));
    let build = || -> Result<Vec<std::ffi::CString>, i64> {
        let mut args = vec![cstr(b"a64-run")?];
        if crate::run::printing_stats() {
            args.push(cstr(b"--stats")?);
        }
        args.push(cstr(b"--exec")?);
        args.push(cstr(exe.as_os_str().as_bytes())?);
        args.push(cstr(b"--ignore-signals")?);
        args.push(cstr(format!("{ignored:x}").as_bytes())?);
        for e in envp {
            args.push(cstr(b"--env")?);
            args.push(cstr(e)?);
        }
        args.push(cstr(b"--")?);
        for a in argv {
            args.push(cstr(a)?);
        }
        Ok(args)
    };
    let args = match build() {
        Ok(v) => v,
        Err(e) => return e,
    };
    let env: Vec<std::ffi::CString> = crate::runner_environment()
        .into_iter()
        .filter_map(|e| std::ffi::CString::new(e).ok())
        .collect();
    let mut arg_ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    arg_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    // SAFETY: NUL-terminated strings in NULL-terminated arrays that outlive the call.
    unsafe {
        libc::execve(
            c"/proc/self/exe".as_ptr(),
            arg_ptrs.as_ptr(),
            env_ptrs.as_ptr(),
        )
    };
    super::last_errno()
}

/// Closes descriptors marked close-on-exec, as the kernel does at execve.
fn close_on_exec_fds() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        // SAFETY: querying and closing descriptors by number.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC != 0 {
                libc::close(fd);
            }
        }
    }
}
