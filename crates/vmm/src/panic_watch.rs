//! Ends a VM whose guest kernel panicked and will hang.
//!
//! Linux prints `---[ end Kernel panic - not syncing: WHY ]---` as the last
//! thing before spinning forever — only when it will not reboot by itself
//! (`panic=N` with N ≠ 0 makes it reset through PSCI instead, which the VMM
//! follows). Debian's kernels have no pvpanic driver, so the console is
//! where the panic shows: [`PanicWatch`] wraps a console writer, passes
//! every byte through and ends the machine as crashed when a console line
//! starts with that marker (after the optional `[ seconds]` timestamp). A
//! guest that prints the marker itself only ends its own VM, which it can
//! do anyway.

use std::io::Write;
use std::sync::{Arc, OnceLock, Weak};

use board::Board;

/// The board a watcher ends, set once the board exists.
pub type BoardSlot = Arc<OnceLock<Weak<Board>>>;

const MARKER: &str = "---[ end Kernel panic - not syncing: ";
/// Bytes of a line kept for matching (the marker plus a useful reason).
const KEEP: usize = 256;

/// A console writer that watches for the kernel's final panic line.
pub struct PanicWatch {
    inner: Box<dyn Write + Send>,
    line: Vec<u8>,
    board: BoardSlot,
}

impl PanicWatch {
    /// Wraps `inner`; a panic ends the board in `board` once it is set.
    pub fn new(inner: Box<dyn Write + Send>, board: BoardSlot) -> Self {
        PanicWatch {
            inner,
            line: Vec::with_capacity(KEEP),
            board,
        }
    }

    fn end_of_line(&mut self) {
        if let Some(reason) = panic_reason(&self.line) {
            if let Some(board) = self.board.get().and_then(Weak::upgrade) {
                board.crash(format!("the guest kernel panicked: {reason}"));
            }
        }
        self.line.clear();
    }
}

/// The reason in a panic marker line, if `line` is one.
fn panic_reason(line: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(line);
    let mut rest = text.trim_start_matches(['\r', ' ']);
    // An optional printk timestamp: "[    1.234567] ".
    if let Some(after) = rest.strip_prefix('[') {
        let close = after.find(']')?;
        if !after[..close]
            .bytes()
            .all(|b| b == b' ' || b == b'.' || b.is_ascii_digit())
        {
            return None;
        }
        rest = after[close + 1..].trim_start();
    }
    let reason = rest.strip_prefix(MARKER)?;
    let reason = reason.trim_end_matches(['\r', ' ']);
    Some(reason.strip_suffix(" ]---").unwrap_or(reason).to_string())
}

impl Write for PanicWatch {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        for &b in &buf[..n] {
            if b == b'\n' {
                self.end_of_line();
            } else if self.line.len() < KEEP {
                self.line.push(b);
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_final_panic_line() {
        assert_eq!(
            panic_reason(b"[    2.345678] ---[ end Kernel panic - not syncing: No working init found.  Try passing init= option to kernel. See Linux Documentation/admin-guide/init.rst for guidance. ]---\r").as_deref(),
            Some("No working init found.  Try passing init= option to kernel. See Linux Documentation/admin-guide/init.rst for guidance.")
        );
        assert_eq!(
            panic_reason(b"---[ end Kernel panic - not syncing: Attempted to kill init! ]---")
                .as_deref(),
            Some("Attempted to kill init!")
        );
        // The first panic line is not the end: the kernel may still reboot.
        assert_eq!(
            panic_reason(b"[ 1.0] Kernel panic - not syncing: VFS"),
            None
        );
        assert_eq!(
            panic_reason(b"echo ---[ end Kernel panic - not syncing: x"),
            None
        );
        assert_eq!(
            panic_reason(b"[abc] ---[ end Kernel panic - not syncing: x"),
            None
        );
    }

    #[test]
    fn passes_bytes_through_and_survives_long_lines() {
        let slot: BoardSlot = Arc::new(OnceLock::new());
        let mut w = PanicWatch::new(Box::new(std::io::sink()), slot);
        let long = vec![b'x'; 10_000];
        assert_eq!(w.write(&long).unwrap(), long.len());
        assert!(w.line.len() <= KEEP);
        // No board yet: a marker is noted but ends nothing.
        w.write_all(b"\n---[ end Kernel panic - not syncing: early ]---\n")
            .unwrap();
        assert!(w.line.is_empty());
    }
}
