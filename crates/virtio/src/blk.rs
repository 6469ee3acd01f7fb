//! virtio-blk (device ID 2) backed by a raw image file: read, write, flush
//! (fdatasync), discard (punch hole), write zeroes, device ID, read-only.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use board::GuestRam;

use crate::device::{read_config_bytes, VirtioDevice};
use crate::queue::{Chain, Queue, QueueError};
use crate::spec::block::{
    F_BLK_SIZE, F_DISCARD, F_FLUSH, F_RO, F_SEG_MAX, F_WRITE_ZEROES, ID_BYTES, S_IOERR, S_OK,
    S_UNSUPP, T_DISCARD, T_FLUSH, T_GET_ID, T_IN, T_OUT, T_WRITE_ZEROES,
};
use crate::spec::id;
use crate::state::DeviceState;

const SECTOR: u64 = 512;

/// Largest discard/write-zeroes request, in sectors.
const MAX_ZERO_SECTORS: u32 = 1 << 16;
/// Largest single data transfer.
const MAX_TRANSFER: u64 = 4 << 20;

/// A block device over an image file.
pub struct Block {
    file: File,
    /// The image's path (for messages and relocking).
    path: std::path::PathBuf,
    sectors: u64,
    read_only: bool,
    id: [u8; ID_BYTES],
    config: Vec<u8>,
}

/// Error opening a disk image.
#[derive(Debug)]
pub struct DiskError(pub String);

impl std::fmt::Display for DiskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DiskError {}

/// Test builds (debug assertions on) can make every request take longer, to
/// show that a slow disk holds up nothing but its own I/O: set
/// `PV_TEST_BLK_DELAY_MS` in the VMM's environment. Release builds ignore it.
fn slow_disk_for_tests() {
    #[cfg(debug_assertions)]
    {
        static DELAY: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
        let delay = DELAY.get_or_init(|| {
            std::env::var("PV_TEST_BLK_DELAY_MS")
                .ok()?
                .parse()
                .ok()
                .map(std::time::Duration::from_millis)
        });
        if let Some(d) = delay {
            std::thread::sleep(*d);
        }
    }
}

impl Drop for Block {
    /// Writes what the guest wrote through to the disk before the file (and
    /// its lock) goes: a VM that stops never leaves data in the page cache only.
    fn drop(&mut self) {
        if !self.read_only {
            let _ = self.file.sync_data();
        }
    }
}

impl Block {
    /// Opens `path` as a raw disk image, locked against other writers.
    pub fn open(path: &Path, read_only: bool) -> Result<Self, DiskError> {
        let file = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .open(path)
            .map_err(|e| DiskError(format!("cannot open disk '{}': {e}", path.display())))?;
        // One writer or any number of readers, across processes (QEMU included).
        hostio::lock::lock_image(&file, path, !read_only).map_err(|e| DiskError(e.to_string()))?;
        let len = file
            .metadata()
            .map_err(|e| DiskError(format!("cannot stat disk '{}': {e}", path.display())))?
            .len();
        if len == 0 || len % SECTOR != 0 {
            return Err(DiskError(format!(
                "disk '{}' is {len} bytes: not a whole number of 512-byte sectors",
                path.display()
            )));
        }
        let mut id = [0u8; ID_BYTES];
        let name = format!("pv{:016x}", fnv(path.to_string_lossy().as_bytes()));
        id[..name.len().min(20)].copy_from_slice(&name.as_bytes()[..name.len().min(20)]);
        let sectors = len / SECTOR;
        let mut config = vec![0u8; 64];
        config[0..8].copy_from_slice(&sectors.to_le_bytes());
        config[12..16].copy_from_slice(&126u32.to_le_bytes()); // seg_max
        config[20..24].copy_from_slice(&512u32.to_le_bytes()); // blk_size
        config[36..40].copy_from_slice(&MAX_ZERO_SECTORS.to_le_bytes()); // max_discard_sectors
        config[40..44].copy_from_slice(&1u32.to_le_bytes()); // max_discard_seg
        config[44..48].copy_from_slice(&1u32.to_le_bytes()); // discard_sector_alignment
        config[48..52].copy_from_slice(&MAX_ZERO_SECTORS.to_le_bytes()); // max_write_zeroes_sectors
        config[52..56].copy_from_slice(&1u32.to_le_bytes()); // max_write_zeroes_seg
        config[56] = 1; // write_zeroes_may_unmap
        Ok(Block {
            file,
            path: path.to_path_buf(),
            sectors,
            read_only,
            id,
            config,
        })
    }

    /// Handles one request; returns the bytes written into the chain.
    fn request(&mut self, chain: &Chain, ram: &GuestRam) -> Result<u32, QueueError> {
        slow_disk_for_tests();
        let header = chain.read_all(ram, 16)?;
        if header.len() < 16 {
            return Err(QueueError::Malformed(
                "block request header shorter than 16 bytes",
            ));
        }
        let Some(status_buf) = chain.writable.last() else {
            return Err(QueueError::Malformed("block request without a status byte"));
        };
        if status_buf.len == 0 {
            return Err(QueueError::Malformed("empty status buffer"));
        }
        let kind = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
        let sector = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        // Data buffers: the readable ones after the header, or the writable
        // ones before the status byte.
        let data_in = chain.writable_len() - 1;
        let (status, written) = match kind {
            T_IN => self.read_into(chain, ram, sector, data_in)?,
            T_OUT if self.read_only => (S_IOERR, 0),
            T_OUT => (self.write_from(chain, ram, sector)?, 0),
            T_FLUSH => (self.flush(), 0),
            T_GET_ID => {
                let n = chain.write_at(ram, 0, &self.id[..(data_in as usize).min(20)])?;
                (S_OK, n as u32)
            }
            T_DISCARD | T_WRITE_ZEROES if self.read_only => (S_IOERR, 0),
            T_DISCARD | T_WRITE_ZEROES => (self.zero(chain, ram, kind == T_DISCARD)?, 0),
            _ => (S_UNSUPP, 0),
        };
        chain.write_at(ram, data_in, &[status])?;
        Ok(written + 1)
    }

    fn in_range(&self, sector: u64, bytes: u64) -> bool {
        sector
            .checked_mul(SECTOR)
            .and_then(|start| start.checked_add(bytes))
            .is_some_and(|end| end <= self.sectors * SECTOR)
    }

    /// Reads `len` bytes at `sector` into the chain: (status, bytes written).
    fn read_into(
        &self,
        chain: &Chain,
        ram: &GuestRam,
        sector: u64,
        len: u64,
    ) -> Result<(u8, u32), QueueError> {
        if !len.is_multiple_of(SECTOR) || len > MAX_TRANSFER || !self.in_range(sector, len) {
            return Ok((S_IOERR, 0));
        }
        let mut buf = vec![0u8; len as usize];
        if self.file.read_exact_at(&mut buf, sector * SECTOR).is_err() {
            return Ok((S_IOERR, 0));
        }
        Ok((S_OK, chain.write_at(ram, 0, &buf)? as u32))
    }

    fn write_from(&self, chain: &Chain, ram: &GuestRam, sector: u64) -> Result<u8, QueueError> {
        let all = chain.read_all(ram, (MAX_TRANSFER + 16) as usize)?;
        let data = &all[16..];
        if !(data.len() as u64).is_multiple_of(SECTOR) || !self.in_range(sector, data.len() as u64)
        {
            return Ok(S_IOERR);
        }
        Ok(match self.file.write_all_at(data, sector * SECTOR) {
            Ok(()) => S_OK,
            Err(_) => S_IOERR,
        })
    }

    fn flush(&self) -> u8 {
        match self.file.sync_data() {
            Ok(()) => S_OK,
            Err(_) => S_IOERR,
        }
    }

    fn zero(&self, chain: &Chain, ram: &GuestRam, discard: bool) -> Result<u8, QueueError> {
        let all = chain.read_all(ram, 16 + 16)?;
        if all.len() < 32 {
            return Ok(S_IOERR);
        }
        let seg = &all[16..32];
        let sector = u64::from_le_bytes(seg[0..8].try_into().expect("8 bytes"));
        let count = u32::from_le_bytes(seg[8..12].try_into().expect("4 bytes"));
        let flags = u32::from_le_bytes(seg[12..16].try_into().expect("4 bytes"));
        let len = count as u64 * SECTOR;
        if count > MAX_ZERO_SECTORS || !self.in_range(sector, len) || flags & !1 != 0 {
            return Ok(if flags & !1 != 0 { S_UNSUPP } else { S_IOERR });
        }
        let mode = if discard || flags & 1 != 0 {
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE
        } else {
            libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE
        };
        // SAFETY: fallocate on our own open file descriptor with checked bounds.
        let r = unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                mode,
                (sector * SECTOR) as libc::off_t,
                len as libc::off_t,
            )
        };
        if r == 0 {
            return Ok(S_OK);
        }
        if discard {
            // Discard is a hint; a file system that cannot punch holes may ignore it.
            return Ok(S_OK);
        }
        let zeros = vec![0u8; len as usize];
        Ok(match self.file.write_all_at(&zeros, sector * SECTOR) {
            Ok(()) => S_OK,
            Err(_) => S_IOERR,
        })
    }
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

impl VirtioDevice for Block {
    fn set_host_locks(&mut self, held: bool) -> Result<(), String> {
        if held {
            hostio::lock::lock_image(&self.file, &self.path, !self.read_only)
                .map_err(|e| e.to_string())
        } else {
            if !self.read_only {
                self.file
                    .sync_data()
                    .map_err(|e| format!("cannot flush disk '{}': {e}", self.path.display()))?;
            }
            hostio::lock::unlock_image(&self.file)
                .map_err(|e| format!("cannot unlock disk '{}': {e}", self.path.display()))
        }
    }

    fn device_id(&self) -> u32 {
        id::BLOCK
    }

    fn features(&self) -> u64 {
        let mut f = F_SEG_MAX | F_BLK_SIZE | F_FLUSH | F_DISCARD | F_WRITE_ZEROES;
        if self.read_only {
            f |= F_RO;
        }
        f
    }

    fn num_queues(&self) -> usize {
        1
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&self.config, offset, data);
    }

    fn save_state(&self) -> DeviceState {
        DeviceState::Block {
            sectors: self.sectors,
            read_only: self.read_only,
        }
    }

    /// The disk image must have the shape the guest knows.
    fn restore_state(&mut self, state: &DeviceState) -> Result<(), String> {
        match *state {
            DeviceState::Block { sectors, read_only }
                if sectors == self.sectors && read_only == self.read_only =>
            {
                Ok(())
            }
            DeviceState::Block { sectors, read_only } => Err(format!(
                "the saved disk had {sectors} sectors{}, this one has {}{}",
                if read_only { " (read-only)" } else { "" },
                self.sectors,
                if self.read_only { " (read-only)" } else { "" }
            )),
            ref other => Err(crate::state::mismatch("block", other)),
        }
    }

    fn process(
        &mut self,
        _index: usize,
        queue: &mut Queue,
        ram: &GuestRam,
    ) -> Result<bool, QueueError> {
        let mut used = false;
        while let Some(chain) = queue.pop(ram)? {
            let n = self.request(&chain, ram)?;
            queue.push_used(ram, chain.head, n)?;
            used = true;
        }
        Ok(used)
    }
}
