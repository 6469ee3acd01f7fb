//! AF_VSOCK streams for the guest programs (std has none): connect,
//! listen and accept, each giving a [`UnixStream`] over the socket (its
//! read, write and timeouts work on any stream socket).

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// The host's CID.
pub const HOST_CID: u32 = 2;

fn address(cid: u32, port: u32) -> libc::sockaddr_vm {
    // SAFETY: sockaddr_vm is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_vm = unsafe { std::mem::zeroed() };
    addr.svm_family = libc::AF_VSOCK as libc::sa_family_t;
    addr.svm_cid = cid;
    addr.svm_port = port;
    addr
}

fn socket() -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Connects to `port` of `cid`.
pub fn connect(cid: u32, port: u32) -> std::io::Result<UnixStream> {
    use std::os::fd::AsRawFd;
    let fd = socket()?;
    let addr = address(cid, port);
    // SAFETY: connect with a valid address of its size.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_vm).cast(),
            std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(UnixStream::from(fd))
}

/// A listening vsock socket.
pub struct Listener(OwnedFd);

impl Listener {
    /// Listens on `port` of this VM.
    pub fn bind(port: u32) -> std::io::Result<Listener> {
        use std::os::fd::AsRawFd;
        let fd = socket()?;
        let addr = address(libc::VMADDR_CID_ANY, port);
        // SAFETY: bind and listen with a valid address on our socket.
        unsafe {
            if libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_vm).cast(),
                std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t,
            ) != 0
                || libc::listen(fd.as_raw_fd(), 128) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(Listener(fd))
    }

    /// The next connection and its peer's CID.
    pub fn accept(&self) -> std::io::Result<(UnixStream, u32)> {
        use std::os::fd::AsRawFd;
        // SAFETY: accept4 writes at most `len` bytes into `addr`.
        let mut addr: libc::sockaddr_vm = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t;
        let fd = unsafe {
            libc::accept4(
                self.0.as_raw_fd(),
                (&mut addr as *mut libc::sockaddr_vm).cast(),
                &mut len,
                libc::SOCK_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new descriptor we own.
        Ok((
            UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) }),
            addr.svm_cid,
        ))
    }
}
