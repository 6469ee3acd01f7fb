//! File system calls: file descriptors, paths, metadata, terminals.

use super::{host, SysResult};
use crate::process::Task;
use crate::safe_syscall::safe_syscall;
use crate::space::{PROT_READ, PROT_WRITE};

/// open flags whose values differ between aarch64 and x86-64: (aarch64, host).
const OPEN_FLAG_MAP: [(u64, i32); 4] = [
    (0o40000, libc::O_DIRECTORY),
    (0o100000, libc::O_NOFOLLOW),
    (0o200000, libc::O_DIRECT),
    (0o400000, libc::O_LARGEFILE),
];
const OPEN_FLAGS_DIFFERING: u64 = 0o740000;

fn open_flags_to_host(flags: u64) -> i32 {
    let mut h = (flags & !OPEN_FLAGS_DIFFERING) as i32
        & !(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_DIRECT | libc::O_LARGEFILE);
    for (g, hf) in OPEN_FLAG_MAP {
        if flags & g != 0 {
            h |= hf;
        }
    }
    h
}

fn open_flags_to_guest(h: i32) -> u64 {
    let mut g =
        (h & !(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_DIRECT | libc::O_LARGEFILE)) as u64;
    for (gf, hf) in OPEN_FLAG_MAP {
        if h & hf != 0 {
            g |= gf;
        }
    }
    g
}

/// Converts a host `struct stat` to aarch64's layout (128 bytes).
// libc's field types differ between host architectures.
#[allow(clippy::unnecessary_cast)]
fn stat_to_guest(st: &libc::stat) -> [u8; 128] {
    let mut b = [0u8; 128];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    put(0, &st.st_dev.to_le_bytes());
    put(8, &st.st_ino.to_le_bytes());
    put(16, &st.st_mode.to_le_bytes());
    put(20, &(st.st_nlink as u32).to_le_bytes());
    put(24, &st.st_uid.to_le_bytes());
    put(28, &st.st_gid.to_le_bytes());
    put(32, &st.st_rdev.to_le_bytes());
    put(48, &st.st_size.to_le_bytes());
    put(56, &(st.st_blksize as i32).to_le_bytes());
    put(64, &st.st_blocks.to_le_bytes());
    put(72, &st.st_atime.to_le_bytes());
    put(80, &st.st_atime_nsec.to_le_bytes());
    put(88, &st.st_mtime.to_le_bytes());
    put(96, &st.st_mtime_nsec.to_le_bytes());
    put(104, &st.st_ctime.to_le_bytes());
    put(112, &st.st_ctime_nsec.to_le_bytes());
    b
}

impl Task {
    /// A guest path as a host C string, with /proc/self/exe naming the guest program.
    fn path(&self, addr: u64) -> Result<std::ffi::CString, i64> {
        let p = self.string(addr)?;
        if p == b"/proc/self/exe" {
            return std::ffi::CString::new(self.process.exe().as_os_str().as_encoded_bytes())
                .map_err(|_| -(libc::EINVAL as i64));
        }
        std::ffi::CString::new(p).map_err(|_| -(libc::EINVAL as i64))
    }

    /// Runs a host call on a guest buffer that the host writes, then notes the write.
    fn fill<F: FnOnce(*mut u8) -> i64>(&mut self, addr: u64, len: usize, f: F) -> SysResult {
        let p = self.guest_ptr(addr, len, PROT_WRITE)?;
        let r = host(f(p))?;
        self.cpu.host_memory_written(p as usize, r.max(0) as usize);
        Ok(r)
    }

    fn iovecs(&self, addr: u64, count: u64, prot: u32) -> Result<Vec<libc::iovec>, i64> {
        if count > 1024 {
            return Err(-(libc::EINVAL as i64));
        }
        let raw = self.get(addr, count as usize * 16)?;
        raw.chunks_exact(16)
            .map(|c| {
                let base = u64::from_le_bytes(c[0..8].try_into().expect("8"));
                let len = u64::from_le_bytes(c[8..16].try_into().expect("8")) as usize;
                Ok(libc::iovec {
                    iov_base: self.guest_ptr(base, len, prot)? as *mut _,
                    iov_len: len,
                })
            })
            .collect()
    }

    fn stat_result(&mut self, out: u64, r: i32, st: &libc::stat) -> SysResult {
        host(r as i64)?;
        self.put(out, &stat_to_guest(st))?;
        Ok(0)
    }

    /// File system calls; `None` if `nr` is not one of them.
    pub(super) fn fs_syscall(&mut self, nr: u64) -> Option<SysResult> {
        let a = |n: usize| self.arg(n);
        let (a0, a1, a2, a3, a4) = (a(0), a(1), a(2), a(3), a(4));
        let fd = a0 as i32;
        // SAFETY (for the libc calls below): every pointer handed to the host was
        // checked by guest_ptr/fill/iovecs to lie in guest memory mapped suitably.
        Some(match nr {
            // The calls that may block go through `safe_syscall`, so a signal
            // for the guest arriving just before them is not held up.
            63 => self.fill(a1, a2 as usize, |p| unsafe {
                safe_syscall(libc::SYS_read, &[fd as i64, p as i64, a2 as i64])
            }),
            64 => self.guest_ptr(a1, a2 as usize, PROT_READ).and_then(|p| {
                host(unsafe { safe_syscall(libc::SYS_write, &[fd as i64, p as i64, a2 as i64]) })
            }),
            65 => self.iovecs(a1, a2, PROT_WRITE).and_then(|v| {
                let iov = [fd as i64, v.as_ptr() as i64, v.len() as i64];
                let r = host(unsafe { safe_syscall(libc::SYS_readv, &iov) })?;
                for io in &v {
                    self.cpu
                        .host_memory_written(io.iov_base as usize, io.iov_len);
                }
                Ok(r)
            }),
            66 => self.iovecs(a1, a2, PROT_READ).and_then(|v| {
                let iov = [fd as i64, v.as_ptr() as i64, v.len() as i64];
                host(unsafe { safe_syscall(libc::SYS_writev, &iov) })
            }),
            67 => self.fill(a1, a2 as usize, |p| unsafe {
                safe_syscall(
                    libc::SYS_pread64,
                    &[fd as i64, p as i64, a2 as i64, a3 as i64],
                )
            }),
            68 => self.guest_ptr(a1, a2 as usize, PROT_READ).and_then(|p| {
                let args = [fd as i64, p as i64, a2 as i64, a3 as i64];
                host(unsafe { safe_syscall(libc::SYS_pwrite64, &args) })
            }),
            56 => self.path(a1).and_then(|p| {
                host(unsafe {
                    libc::openat(
                        a0 as i32,
                        p.as_ptr(),
                        open_flags_to_host(a2),
                        a3 as libc::c_uint,
                    )
                } as i64)
            }),
            57 => host(unsafe { libc::close(fd) } as i64),
            62 => host(unsafe { libc::lseek(fd, a1 as i64, a2 as i32) }),
            23 => host(unsafe { libc::dup(fd) } as i64),
            24 => host(unsafe { libc::dup3(fd, a1 as i32, open_flags_to_host(a2)) } as i64),
            59 => {
                let mut fds = [0i32; 2];
                host(unsafe { libc::pipe2(fds.as_mut_ptr(), open_flags_to_host(a1)) } as i64)
                    .and_then(|_| {
                        let mut b = fds[0].to_le_bytes().to_vec();
                        b.extend_from_slice(&fds[1].to_le_bytes());
                        self.put(a0, &b).map(|_| 0)
                    })
            }
            25 => self.fcntl(fd, a1 as i32, a2),
            29 => self.ioctl(fd, a1, a2),
            80 => {
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                let r = unsafe { libc::fstat(fd, &mut st) };
                self.stat_result(a1, r, &st)
            }
            79 => self.path(a1).and_then(|p| {
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                let r = unsafe { libc::fstatat(a0 as i32, p.as_ptr(), &mut st, a3 as i32) };
                self.stat_result(a2, r, &st)
            }),
            291 => self.path(a1).and_then(|p| {
                self.fill(a4, 256, |b| unsafe {
                    libc::syscall(
                        libc::SYS_statx,
                        a0 as i32,
                        p.as_ptr(),
                        a2 as i32,
                        a3 as u32,
                        b,
                    )
                })
            }),
            61 => self.fill(a1, a2 as usize, |p| unsafe {
                libc::syscall(libc::SYS_getdents64, fd, p, a2 as usize)
            }),
            78 => self.readlinkat(a0 as i32, a1, a2, a3 as usize),
            35 => self.path(a1).and_then(|p| {
                host(unsafe { libc::unlinkat(a0 as i32, p.as_ptr(), a2 as i32) } as i64)
            }),
            34 => self.path(a1).and_then(|p| {
                host(unsafe { libc::mkdirat(a0 as i32, p.as_ptr(), a2 as libc::mode_t) } as i64)
            }),
            38 | 276 => self.path(a1).and_then(|from| {
                let to = self.path(a3)?;
                let flags = if nr == 276 { a4 as u32 } else { 0 };
                host(unsafe {
                    libc::syscall(
                        libc::SYS_renameat2,
                        a0 as i32,
                        from.as_ptr(),
                        a2 as i32,
                        to.as_ptr(),
                        flags,
                    )
                })
            }),
            36 => self.path(a0).and_then(|t| {
                let l = self.path(a2)?;
                host(unsafe { libc::symlinkat(t.as_ptr(), a1 as i32, l.as_ptr()) } as i64)
            }),
            37 => self.path(a1).and_then(|from| {
                let to = self.path(a3)?;
                host(unsafe {
                    libc::linkat(a0 as i32, from.as_ptr(), a2 as i32, to.as_ptr(), a4 as i32)
                } as i64)
            }),
            53 => self.path(a1).and_then(|p| {
                host(unsafe { libc::fchmodat(a0 as i32, p.as_ptr(), a2 as libc::mode_t, 0) } as i64)
            }),
            52 => host(unsafe { libc::fchmod(fd, a1 as libc::mode_t) } as i64),
            54 => self.path(a1).and_then(|p| {
                host(unsafe {
                    libc::fchownat(a0 as i32, p.as_ptr(), a2 as u32, a3 as u32, a4 as i32)
                } as i64)
            }),
            55 => host(unsafe { libc::fchown(fd, a1 as u32, a2 as u32) } as i64),
            88 => {
                let times = if a2 == 0 {
                    Ok(std::ptr::null_mut())
                } else {
                    self.guest_ptr(a2, 32, PROT_READ)
                };
                let path = if a1 == 0 {
                    Ok(None)
                } else {
                    self.path(a1).map(Some)
                };
                times.and_then(|t| {
                    let path = path?;
                    let pp = path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
                    host(unsafe { libc::syscall(libc::SYS_utimensat, a0 as i32, pp, t, a3 as i32) })
                })
            }
            46 => host(unsafe { libc::ftruncate(fd, a1 as i64) } as i64),
            48 | 439 => self.path(a1).and_then(|p| {
                let flags = if nr == 439 { a3 as i32 } else { 0 };
                host(unsafe { libc::faccessat(a0 as i32, p.as_ptr(), a2 as i32, flags) } as i64)
            }),
            82 => host(unsafe { libc::fsync(fd) } as i64),
            83 => host(unsafe { libc::fdatasync(fd) } as i64),
            81 => {
                unsafe { libc::sync() };
                Ok(0)
            }
            43 => self.path(a0).and_then(|p| {
                self.fill(a1, 120, |b| unsafe {
                    libc::statfs(p.as_ptr(), b as *mut libc::statfs) as i64
                })
                .map(|_| 0)
            }),
            44 => self
                .fill(a1, 120, |b| unsafe {
                    libc::fstatfs(fd, b as *mut libc::statfs) as i64
                })
                .map(|_| 0),
            166 => Ok(unsafe { libc::umask(a0 as libc::mode_t) } as i64),
            49 => self
                .path(a0)
                .and_then(|p| host(unsafe { libc::chdir(p.as_ptr()) } as i64)),
            50 => host(unsafe { libc::fchdir(fd) } as i64),
            17 => self.fill(a0, a1 as usize, |p| {
                if unsafe { libc::getcwd(p as *mut libc::c_char, a1 as usize) }.is_null() {
                    -1
                } else {
                    (unsafe { libc::strlen(p as *const libc::c_char) } + 1) as i64
                }
            }),
            71 => {
                let off = if a2 == 0 {
                    Ok(std::ptr::null_mut())
                } else {
                    self.guest_ptr(a2, 8, PROT_WRITE)
                };
                off.and_then(|o| {
                    host(unsafe {
                        libc::sendfile(a0 as i32, a1 as i32, o as *mut i64, a3 as usize) as i64
                    })
                })
            }
            73 => self.ppoll(a0, a1, a2, a3, a4),
            72 => self.pselect(a0 as i32, [a1, a2, a3], a4, self.arg(5)),
            _ => return None,
        })
    }

    fn fcntl(&mut self, fd: i32, cmd: i32, arg: u64) -> SysResult {
        // SAFETY: these commands take integers, not pointers.
        match cmd {
            libc::F_DUPFD | libc::F_DUPFD_CLOEXEC | libc::F_GETFD | libc::F_SETFD => {
                host(unsafe { libc::fcntl(fd, cmd, arg as i32) } as i64)
            }
            libc::F_GETFL => host(unsafe { libc::fcntl(fd, cmd) } as i64)
                .map(|f| open_flags_to_guest(f as i32) as i64),
            libc::F_SETFL => host(unsafe { libc::fcntl(fd, cmd, open_flags_to_host(arg)) } as i64),
            libc::F_GETLK | libc::F_SETLK | libc::F_SETLKW => {
                // struct flock has the same 32-byte layout on both architectures.
                let p = self.guest_ptr(arg, 32, PROT_READ | PROT_WRITE)?;
                let args = [fd as i64, cmd as i64, p as i64];
                host(unsafe { safe_syscall(libc::SYS_fcntl, &args) })
            }
            _ => Err(-(libc::EINVAL as i64)),
        }
    }

    fn ioctl(&mut self, fd: i32, req: u64, arg: u64) -> SysResult {
        // Terminal and FIO requests share numbers and layouts on aarch64 and x86-64.
        let size = match req {
            0x5401..=0x5404 => 36,                  // TCGETS, TCSETS, TCSETSW, TCSETSF
            0x5413 | 0x5414 => 8,                   // TIOCGWINSZ, TIOCSWINSZ
            0x540f | 0x5410 | 0x541b | 0x5421 => 4, // TIOCGPGRP, TIOCSPGRP, FIONREAD, FIONBIO
            _ => return Err(-(libc::ENOTTY as i64)),
        };
        let p = self.guest_ptr(arg, size, PROT_READ | PROT_WRITE)?;
        // SAFETY: the argument buffer was checked for the request's size.
        host(unsafe { libc::ioctl(fd, req as libc::c_ulong, p) } as i64)
    }

    fn readlinkat(&mut self, dirfd: i32, path: u64, buf: u64, len: usize) -> SysResult {
        if self.string(path)? == b"/proc/self/exe" {
            let exe = self.process.exe();
            let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
            let bytes = exe.as_os_str().as_encoded_bytes();
            let n = bytes.len().min(len);
            self.put(buf, &bytes[..n])?;
            return Ok(n as i64);
        }
        let p = self.path(path)?;
        // SAFETY: fill checks the output buffer.
        self.fill(buf, len, |b| unsafe {
            libc::readlinkat(dirfd, p.as_ptr(), b as *mut libc::c_char, len) as i64
        })
    }

    /// A guest timeout (`struct timespec`, the same on both architectures)
    /// copied in, for a call that writes back the time left.
    fn timeout_copy(&self, addr: u64) -> Result<Option<[u8; 16]>, i64> {
        if addr == 0 {
            return Ok(None);
        }
        Ok(Some(self.get(addr, 16)?.try_into().expect("16 bytes")))
    }

    /// Writes the time left back to the guest's timeout, as Linux does
    /// (and, as Linux, ignores a timeout it cannot write).
    fn timeout_back(&mut self, addr: u64, left: Option<[u8; 16]>) {
        if let Some(left) = left {
            let _ = self.put(addr, &left);
        }
    }

    fn ppoll(&mut self, fds: u64, n: u64, tmo: u64, mask: u64, size: u64) -> SysResult {
        let fds = self.guest_ptr(fds, n as usize * 8, PROT_READ | PROT_WRITE)?;
        let mut time = self.timeout_copy(tmo)?;
        let t = time
            .as_mut()
            .map_or(std::ptr::null_mut(), |t| t.as_mut_ptr());
        // The temporary mask only once every argument checked out.
        let m = self.call_mask(mask, size)?;
        let mp = m.as_ref().map_or(std::ptr::null(), |m| m as *const u64);
        let args = [fds as i64, n as i64, t as i64, mp as i64, 8];
        // SAFETY: checked pollfds; our timeout copy; an 8-byte kernel sigset or null.
        let r = host(unsafe { safe_syscall(libc::SYS_ppoll, &args) });
        self.timeout_back(tmo, time);
        if m.is_some() {
            self.end_temporary_mask(r)
        } else {
            r
        }
    }

    fn pselect(&mut self, n: i32, sets: [u64; 3], tmo: u64, sigmask: u64) -> SysResult {
        let set = |addr: u64| {
            if addr == 0 {
                Ok(std::ptr::null_mut())
            } else {
                self.guest_ptr(addr, 128, PROT_READ | PROT_WRITE)
            }
        };
        let (r, w, e) = (set(sets[0])?, set(sets[1])?, set(sets[2])?);
        let mut time = self.timeout_copy(tmo)?;
        let t = time
            .as_mut()
            .map_or(std::ptr::null_mut(), |t| t.as_mut_ptr());
        // The sixth argument points at { const sigset_t *ss; size_t ss_len; }.
        let mask = if sigmask == 0 {
            None
        } else {
            let b = self.get(sigmask, 16)?;
            let w = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8"));
            self.call_mask(w(0), w(8))?
        };
        let mp = mask.as_ref().map_or(std::ptr::null(), |m| m as *const u64);
        let arg6 = [mp as u64, 8u64];
        let arg6p = if mask.is_some() {
            arg6.as_ptr()
        } else {
            std::ptr::null()
        };
        let args = [
            n.clamp(0, 1024) as i64,
            r as i64,
            w as i64,
            e as i64,
            t as i64,
            arg6p as i64,
        ];
        // SAFETY: the fd_sets were checked (fd_set has the same layout); the
        // timeout copy and the mask argument are ours.
        let result = host(unsafe { safe_syscall(libc::SYS_pselect6, &args) });
        self.timeout_back(tmo, time);
        if mask.is_some() {
            self.end_temporary_mask(result)
        } else {
            result
        }
    }

    fn call_mask(&mut self, addr: u64, size: u64) -> Result<Option<u64>, i64> {
        if addr == 0 {
            return Ok(None);
        }
        if size != 8 {
            return Err(-(libc::EINVAL as i64));
        }
        let m = u64::from_le_bytes(self.get(addr, 8)?.try_into().expect("8"));
        self.begin_temporary_mask(m).map(Some)
    }
}
