//! Unix socket paths owned by the VMM.
//!
//! A path that exists is never replaced unless it is a stale socket (one
//! nobody answers on, left by a VM that died); a regular file, a directory
//! or a live socket is refused. Sockets are created with mode 0600. The
//! returned [`SocketFile`] removes the path when dropped — only if the path
//! still names the socket this process created — and every live one is
//! remembered so that a forced exit can remove them all
//! ([`remove_all_now`]).

use std::fs::Permissions;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why a socket path could not be taken. Each is one message for the user.
#[derive(Debug)]
pub enum SocketError {
    /// Something that is not a socket is at the path (a user's file).
    NotASocket(PathBuf),
    /// A live socket is at the path: another VM (or program) answers on it.
    InUse(PathBuf),
    /// The path does not fit in a socket address.
    TooLong(PathBuf),
    /// The host refused (missing directory, permissions, ...).
    Io(PathBuf, std::io::Error),
}

impl std::fmt::Display for SocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketError::NotASocket(p) => write!(
                f,
                "'{}' exists and is not a socket (refusing to replace it)",
                p.display()
            ),
            SocketError::InUse(p) => {
                write!(f, "'{}' is already in use by another VM", p.display())
            }
            SocketError::TooLong(p) => write!(
                f,
                "socket path '{}' is too long (at most {} bytes)",
                p.display(),
                MAX_PATH
            ),
            SocketError::Io(p, e) => write!(f, "cannot create socket '{}': {e}", p.display()),
        }
    }
}

impl std::error::Error for SocketError {}

/// Longest path a unix socket address holds (sun_path less its NUL).
pub const MAX_PATH: usize = 107;

/// Identity of a socket file this process created.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Owned {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

/// Every socket file this process owns now.
static OWNED: Mutex<Vec<Owned>> = Mutex::new(Vec::new());

fn owned() -> std::sync::MutexGuard<'static, Vec<Owned>> {
    OWNED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes `o.path` if it still is the socket we created.
fn remove_if_ours(o: &Owned) {
    if let Ok(m) = std::fs::symlink_metadata(&o.path) {
        if m.file_type().is_socket() && m.dev() == o.dev && m.ino() == o.ino {
            let _ = std::fs::remove_file(&o.path);
        }
    }
}

/// A socket file created by this process; dropping it removes the file.
#[derive(Debug)]
pub struct SocketFile {
    owned: Owned,
}

impl SocketFile {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.owned.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        remove_if_ours(&self.owned);
        owned().retain(|o| *o != self.owned);
    }
}

/// Removes every socket file this process still owns. For exit paths that
/// skip destructors (a forced exit after a second signal).
pub fn remove_all_now() {
    for o in owned().iter() {
        remove_if_ours(o);
    }
}

/// Which kind of unix socket.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Stream,
    Datagram,
}

/// Listens on a new stream socket at `path` (backlog 64).
pub fn bind_listener(path: &Path) -> Result<(UnixListener, SocketFile), SocketError> {
    let (fd, file) = bind(path, Kind::Stream)?;
    let listener = UnixListener::from(fd);
    Ok((listener, file))
}

/// Binds a new datagram socket at `path`.
pub fn bind_datagram(path: &Path) -> Result<(UnixDatagram, SocketFile), SocketError> {
    let (fd, file) = bind(path, Kind::Datagram)?;
    Ok((UnixDatagram::from(fd), file))
}

/// Whether something answers on the socket at `path`.
fn answers(path: &Path, kind: Kind) -> bool {
    let refused = |e: std::io::Error| e.kind() == ErrorKind::ConnectionRefused;
    match kind {
        Kind::Stream => !UnixStream::connect(path).is_err_and(refused),
        Kind::Datagram => match UnixDatagram::unbound() {
            Ok(probe) => !probe.connect(path).is_err_and(refused),
            Err(_) => true,
        },
    }
}

/// A new unix socket of `kind`, mode 0600 before it has a name: the socket
/// file takes the socket inode's mode, so it never exists with wider ones.
fn new_socket(kind: Kind) -> std::io::Result<OwnedFd> {
    let ty = match kind {
        Kind::Stream => libc::SOCK_STREAM,
        Kind::Datagram => libc::SOCK_DGRAM,
    };
    // SAFETY: plain socket creation; the fd is owned right away.
    let raw = unsafe { libc::socket(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: fchmod on our own descriptor.
    unsafe { libc::fchmod(raw, 0o600) };
    Ok(fd)
}

/// Binds `fd` to `path` (which fits in a socket address).
fn bind_at(fd: &OwnedFd, path: &Path) -> std::io::Result<()> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &addr as *const _ as *const libc::sockaddr,
            len,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Something is at `path`: removes it if it is a stale socket (nobody
/// answers), else says why the path cannot be taken.
fn clear_stale(path: &Path, kind: Kind) -> Result<(), SocketError> {
    let io = |e| SocketError::Io(path.to_path_buf(), e);
    let before = std::fs::symlink_metadata(path).map_err(io)?;
    if !before.file_type().is_socket() {
        return Err(SocketError::NotASocket(path.to_path_buf()));
    }
    if answers(path, kind) {
        return Err(SocketError::InUse(path.to_path_buf()));
    }
    // Remove it only if it is still the socket that did not answer.
    if let Ok(now) = std::fs::symlink_metadata(path) {
        if now.dev() == before.dev() && now.ino() == before.ino() {
            let _ = std::fs::remove_file(path);
        }
    }
    Ok(())
}

/// Records the socket now at `path` as ours.
fn own(path: &Path) -> Result<SocketFile, SocketError> {
    let meta =
        std::fs::symlink_metadata(path).map_err(|e| SocketError::Io(path.to_path_buf(), e))?;
    let o = Owned {
        path: path.to_path_buf(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    owned().push(o.clone());
    Ok(SocketFile { owned: o })
}

fn bind(path: &Path, kind: Kind) -> Result<(OwnedFd, SocketFile), SocketError> {
    if path.as_os_str().len() > MAX_PATH {
        return Err(SocketError::TooLong(path.to_path_buf()));
    }
    let io = |e: std::io::Error| SocketError::Io(path.to_path_buf(), e);
    let fd = new_socket(kind).map_err(io)?;
    match kind {
        // A datagram socket is reachable the moment it is bound.
        Kind::Datagram => {
            for attempt in 0..2 {
                match bind_at(&fd, path) {
                    Ok(()) => {
                        let file = own(path)?;
                        // Whatever the umask did: the owner's only.
                        std::fs::set_permissions(path, Permissions::from_mode(0o600))
                            .map_err(io)?;
                        return Ok((fd, file));
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) && attempt == 0 => {
                        clear_stale(path, kind)?
                    }
                    Err(e) => return Err(io(e)),
                }
            }
            Err(SocketError::InUse(path.to_path_buf()))
        }
        // A stream socket refuses connections between bind and listen, and
        // a prober would take it for stale: it is set up under a private
        // name in the same directory and then linked into place, which
        // never replaces anything.
        Kind::Stream => {
            static TEMPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = TEMPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            let tmp = dir
                .unwrap_or(Path::new("."))
                .join(format!(".pv-{}-{n}.sock", std::process::id()));
            if tmp.as_os_str().len() > MAX_PATH {
                return Err(SocketError::TooLong(path.to_path_buf()));
            }
            bind_at(&fd, &tmp).map_err(io)?;
            let placed = (|| {
                // Whatever the umask did: the owner's only, before it has
                // its real name.
                std::fs::set_permissions(&tmp, Permissions::from_mode(0o600)).map_err(io)?;
                // SAFETY: listen on our bound socket.
                if unsafe { libc::listen(fd.as_raw_fd(), 64) } != 0 {
                    return Err(io(std::io::Error::last_os_error()));
                }
                for attempt in 0..2 {
                    match std::fs::hard_link(&tmp, path) {
                        Ok(()) => return own(path),
                        Err(e) if e.kind() == ErrorKind::AlreadyExists && attempt == 0 => {
                            clear_stale(path, kind)?
                        }
                        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                            return Err(SocketError::InUse(path.to_path_buf()))
                        }
                        Err(e) => return Err(io(e)),
                    }
                }
                Err(SocketError::InUse(path.to_path_buf()))
            })();
            let _ = std::fs::remove_file(&tmp);
            placed.map(|file| (fd, file))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;

    /// `remove_all_now` removes every socket this process owns, the other
    /// tests' too: it runs alone (write), the others together (read).
    static ALONE: std::sync::RwLock<()> = std::sync::RwLock::new(());

    fn together() -> std::sync::RwLockReadGuard<'static, ()> {
        ALONE.read().unwrap_or_else(|e| e.into_inner())
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_0600_and_removes_on_drop() {
        let _together = together();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("api.sock");
        // SAFETY: umask is process-wide; 0 is the worst case we must survive.
        let old = unsafe { libc::umask(0) };
        let (l, f) = bind_listener(&p).unwrap();
        unsafe { libc::umask(old) };
        assert_eq!(mode(&p), 0o600);
        let mut c = UnixStream::connect(&p).unwrap();
        let (mut s, _) = l.accept().unwrap();
        c.write_all(b"hi").unwrap();
        let mut b = [0u8; 2];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hi");
        drop(f);
        assert!(!p.exists());
    }

    #[test]
    fn never_replaces_a_file_or_live_socket() {
        let _together = together();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("precious");
        std::fs::write(&file, b"user data").unwrap();
        assert!(matches!(
            bind_listener(&file),
            Err(SocketError::NotASocket(_))
        ));
        assert!(matches!(
            bind_datagram(&file),
            Err(SocketError::NotASocket(_))
        ));
        assert_eq!(std::fs::read(&file).unwrap(), b"user data");
        let sub = dir.path().join("a-dir");
        std::fs::create_dir(&sub).unwrap();
        assert!(bind_listener(&sub).is_err());
        assert!(sub.is_dir());

        let live = dir.path().join("live.sock");
        let (_l, _f) = bind_listener(&live).unwrap();
        let e = bind_listener(&live).unwrap_err();
        assert!(matches!(e, SocketError::InUse(_)));
        assert!(e.to_string().contains("already in use by another VM"));
        assert!(live.exists());

        let dlive = dir.path().join("live.dgram");
        let (_d, _df) = bind_datagram(&dlive).unwrap();
        assert!(matches!(bind_datagram(&dlive), Err(SocketError::InUse(_))));
    }

    #[test]
    fn leaves_no_temporary_names_behind() {
        let _together = together();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.sock");
        let (_l, _f) = bind_listener(&p).unwrap();
        assert!(bind_listener(&p).is_err());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.sock")]);
    }

    #[test]
    fn replaces_a_stale_socket() {
        let _together = together();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("stale.sock");
        // A socket file whose owner is gone (std leaves the file behind).
        drop(UnixListener::bind(&p).unwrap());
        assert!(p.exists());
        let (l, _f) = bind_listener(&p).unwrap();
        let _c = UnixStream::connect(&p).unwrap();
        assert!(l.accept().is_ok());
        let d = dir.path().join("stale.dgram");
        drop(UnixDatagram::bind(&d).unwrap());
        assert!(bind_datagram(&d).is_ok());
    }

    #[test]
    fn leaves_a_replacement_alone() {
        let _together = together();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("moved.sock");
        let (_l, f) = bind_listener(&p).unwrap();
        // Someone removes our socket and puts a file there: keep theirs.
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, b"theirs").unwrap();
        drop(f);
        assert_eq!(std::fs::read(&p).unwrap(), b"theirs");
    }

    #[test]
    fn remove_all_now_removes_live_sockets() {
        let _alone = ALONE.write().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("forced.sock");
        let (_l, f) = bind_listener(&p).unwrap();
        remove_all_now();
        assert!(!p.exists());
        drop(f);
    }

    #[test]
    fn long_and_missing_paths() {
        let _together = together();
        let long = PathBuf::from(format!("/tmp/{}", "x".repeat(120)));
        assert!(matches!(bind_listener(&long), Err(SocketError::TooLong(_))));
        let missing = Path::new("/nonexistent-dir-pv/api.sock");
        let e = bind_listener(missing).unwrap_err();
        assert!(e.to_string().contains("cannot create socket"), "{e}");
    }
}
