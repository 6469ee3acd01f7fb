//! Host ends of virtio-console ports: a unix socket per port. One client at
//! a time; what it writes goes to the guest, what the guest writes goes to it.

use std::io::{Read, Write};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

use board::Board;
use hostio::socket::SocketFile;
use virtio::console::PortInput;

/// Where the guest's bytes for a port go: the connected client, if any.
#[derive(Clone, Default)]
pub struct SocketOutput(Arc<Mutex<Option<UnixStream>>>);

impl Write for SocketOutput {
    /// Never blocks: the guest's bytes are written on the vCPU thread, so a
    /// client that stops reading must not stall the VM. What its socket
    /// buffer cannot take now is dropped, as on a line nobody listens to.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut client = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = client.as_ref() {
            // SAFETY: send on the client's own descriptor, from our buffer.
            let n = unsafe {
                libc::send(
                    s.as_raw_fd(),
                    buf.as_ptr() as *const libc::c_void,
                    buf.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            let gone = n < 0
                && !matches!(
                    std::io::Error::last_os_error().raw_os_error(),
                    Some(libc::EAGAIN) | Some(libc::EINTR)
                );
            if gone {
                *client = None;
            }
        }
        // Without a client the bytes are dropped, as on an unplugged line.
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A port's listening socket; dropping it stops the listener, disconnects
/// the client and removes the socket file.
pub struct PortServer {
    listener: UnixListener,
    output: SocketOutput,
    _file: SocketFile,
}

impl Drop for PortServer {
    fn drop(&mut self) {
        // Wakes the thread blocked in accept (Linux ends it with EINVAL) and
        // the one reading from the client.
        // SAFETY: shutdown on our own listening descriptor.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(c) = self
            .output
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Listens on `path` (never replacing a file or a live socket) and
/// connects clients to the port of the console that is the board's added
/// device number `device`.
pub fn serve(
    path: &Path,
    output: SocketOutput,
    input: PortInput,
    board: Weak<Board>,
    device: usize,
) -> Result<PortServer, String> {
    let (listener, file) =
        hostio::socket::bind_listener(path).map_err(|e| format!("port socket: {e}"))?;
    let accepting = listener
        .try_clone()
        .map_err(|e| format!("port socket '{}': {e}", path.display()))?;
    let out = output.clone();
    std::thread::Builder::new()
        .name("vport".into())
        .spawn(move || {
            for client in accepting.incoming() {
                let Ok(client) = client else { return };
                let Ok(reader) = client.try_clone() else {
                    continue;
                };
                *out.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(client);
                pump(reader, &input, &board, device);
                if board.upgrade().is_none() {
                    return;
                }
            }
        })
        .map_err(|e| format!("port socket '{}': {e}", path.display()))?;
    Ok(PortServer {
        listener,
        output,
        _file: file,
    })
}

/// Copies a client's bytes to the guest until it disconnects.
fn pump(mut reader: UnixStream, input: &PortInput, board: &Weak<Board>, device: usize) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Wait while the guest has a large backlog (flow control).
        while input.backlog() > 1 << 20 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        input.send(&buf[..n]);
        match board.upgrade() {
            Some(b) => b.poll_device(device),
            None => return,
        }
    }
}
