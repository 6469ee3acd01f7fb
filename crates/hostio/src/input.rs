//! Reading the files a VM boots from (kernel, initrd) without surprises:
//! regular files only (a FIFO or a character device such as /dev/zero
//! would block or never end), and never more than a cap.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why an input file could not be read. Each is one message for the user.
#[derive(Debug)]
pub enum InputError {
    /// Opening or reading failed.
    Io {
        /// What the file is for ("kernel", "initrd").
        what: &'static str,
        /// Its path.
        path: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// The path names something other than a regular file.
    NotAFile {
        /// What the file is for.
        what: &'static str,
        /// Its path.
        path: String,
        /// What it is instead ("a character device", ...).
        kind: &'static str,
    },
    /// The file is larger than the cap.
    TooLarge {
        /// What the file is for.
        what: &'static str,
        /// Its path.
        path: String,
        /// Its size.
        size: u64,
        /// The cap.
        cap: u64,
    },
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputError::Io { what, path, error } => {
                write!(f, "cannot read {what} '{path}': {error}")
            }
            InputError::NotAFile { what, path, kind } => {
                write!(f, "{what} '{path}' is {kind}, not a regular file")
            }
            InputError::TooLarge {
                what,
                path,
                size,
                cap,
            } => write!(
                f,
                "{what} '{path}' is {} MiB, more than the {} MiB that fit in guest memory",
                size.div_ceil(1 << 20),
                cap >> 20
            ),
        }
    }
}

impl std::error::Error for InputError {}

fn kind_of(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Reads the regular file at `path` (for `what`), refusing anything larger
/// than `cap` bytes.
pub fn read_capped(what: &'static str, path: &Path, cap: u64) -> Result<Vec<u8>, InputError> {
    let name = || path.display().to_string();
    let io = |error| InputError::Io {
        what,
        path: name(),
        error,
    };
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(InputError::NotAFile {
            what,
            path: name(),
            kind: kind_of(meta.file_type()),
        });
    }
    let too_large = |size| InputError::TooLarge {
        what,
        path: name(),
        size,
        cap,
    };
    if meta.len() > cap {
        return Err(too_large(meta.len()));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    // The file may grow while we read: never past the cap.
    (&mut file)
        .take(cap + 1)
        .read_to_end(&mut data)
        .map_err(io)?;
    if data.len() as u64 > cap {
        return Err(too_large(data.len() as u64));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_regular_files_under_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, b"kernel bytes").unwrap();
        assert_eq!(read_capped("kernel", &p, 100).unwrap(), b"kernel bytes");
        let e = read_capped("kernel", &p, 4).unwrap_err();
        assert!(matches!(
            e,
            InputError::TooLarge {
                size: 12,
                cap: 4,
                ..
            }
        ));
    }

    #[test]
    fn refuses_devices_fifos_and_directories() {
        let e = read_capped("kernel", Path::new("/dev/zero"), 1 << 30).unwrap_err();
        assert_eq!(
            e.to_string(),
            "kernel '/dev/zero' is a character device, not a regular file"
        );
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_capped("initrd", &fifo, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("is a FIFO"), "{e}");
        let e = read_capped("initrd", dir.path(), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        let e = read_capped("initrd", &dir.path().join("none"), 1 << 20).unwrap_err();
        assert!(e.to_string().starts_with("cannot read initrd"), "{e}");
    }
}
