//! The worker's half of a migration away: pre-copy of the guest's RAM
//! while it runs, then the pause, the last pages, the state and the disks
//! handed over. It writes the stream's messages ([`image::migration`]) to
//! the supervisor, which encrypts them onto the link, and then waits for
//! the verdict: resume here (the move failed) or end (the VM runs on the
//! other phone now).
//!
//! Every round first takes the dirty log and then copies the pages it
//! names, so a page the guest writes while it is being copied is dirty
//! again in the next round; after the pause the last take is exact (see
//! `vmm::DirtyLog`).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use image::migration::frame::{control, Control, PageBatch, PAGE};
use vmm::board_types::{Board, GuestRam, Power};
use vmm::{DirtyLog, VmControl};

/// A message only the supervisor reads: the guest has just paused.
pub const PAUSED: u8 = 3;
/// A message only the supervisor reads: wait until the target has taken
/// everything sent so far (the supervisor answers [`SYNCED`]), so that
/// the pause does not wait for a backlog in flight.
pub const SYNC: u8 = 4;
/// The supervisor's answer to [`SYNC`].
pub const SYNCED: u8 = b'S';
/// The supervisor's verdict after `End`: resume here.
pub const RESUME: u8 = b'R';
/// The supervisor's verdict after `End`: the VM moved; end.
pub const QUIT: u8 = b'Q';
/// Pre-copy rounds before the guest is paused whatever remains.
const MAX_ROUNDS: u32 = 30;
/// A remainder this small is sent during the pause whatever the rate.
const SMALL: u64 = 256 << 10;
/// State bytes per message.
const STATE_PIECE: usize = 60 << 10;

/// Writes one message to the supervisor (length-prefixed).
pub fn write_message(out: &mut impl Write, message: &[u8]) -> std::io::Result<()> {
    out.write_all(&(message.len() as u32).to_le_bytes())?;
    out.write_all(message)
}

/// Reads one message written by [`write_message`] (at most `max` bytes).
pub fn read_message(input: &mut impl Read, max: usize) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > max {
        return Err(std::io::Error::other(format!("a message of {len} bytes")));
    }
    let mut buf = vec![0u8; len];
    input.read_exact(&mut buf)?;
    Ok(buf)
}

/// A migration's sending side in the worker.
pub struct Outgoing {
    /// The VM.
    pub vm: VmControl,
    /// Its board (to end it once it moved).
    pub board: std::sync::Arc<Board>,
    /// Its dirty log.
    pub dirty: DirtyLog,
    /// The stream to the supervisor.
    pub out: UnixStream,
    /// The downtime to aim for.
    pub max_downtime: Duration,
    /// Set by the supervisor's cancel.
    pub cancel: std::sync::Arc<AtomicBool>,
}

/// How the sending ended.
enum Ended {
    /// Before the pause, or paused with the disks still held.
    Early,
    /// Paused, disks handed over.
    HandedOver,
}

impl Outgoing {
    /// Runs the migration; returns when it succeeded (the VM is stopped)
    /// or failed (the VM runs again).
    pub fn run(mut self) {
        let was_paused = self.vm.is_paused();
        let mut ended = Ended::Early;
        let result = self.send(&mut ended);
        let moved = match result {
            Ok(()) => {
                // Only an explicit verdict resumes the guest here: if the
                // supervisor is gone, the other phone may be running it.
                let mut verdict = [0u8; 1];
                !matches!(self.out.read_exact(&mut verdict), Ok(()) if verdict[0] == RESUME)
            }
            Err(e) => {
                let _ = write_message(&mut self.out, &control(&Control::Failed(e)));
                false
            }
        };
        if moved {
            // The guest lives on the other phone: never run it here again.
            self.board.set_power(Power::Stopped);
            return;
        }
        // The guest stays here: no more dirty tracking.
        self.dirty.stop();
        if matches!(ended, Ended::HandedOver) {
            if let Err(e) = self.vm.set_disk_locks(true) {
                // Someone took the disks meanwhile: the guest cannot go on safely.
                eprintln!("migration failed and the disks cannot be taken back: {e}");
                self.board.set_power(Power::Stopped);
                return;
            }
        }
        if !was_paused {
            self.vm.resume();
        }
    }

    fn cancelled(&self) -> Result<(), String> {
        if self.cancel.load(Ordering::Acquire) {
            Err("cancelled".into())
        } else {
            Ok(())
        }
    }

    fn io(e: std::io::Error) -> String {
        format!("the supervisor's stream: {e}")
    }

    /// Sends `pages` (page numbers from the RAM's base); returns the bytes.
    fn send_pages(
        &mut self,
        ram: &GuestRam,
        pages: impl Iterator<Item = u64>,
    ) -> Result<u64, String> {
        let mut batch = PageBatch::default();
        let mut page = [0u8; PAGE];
        let mut sent = 0;
        for (k, n) in pages.enumerate() {
            if k % 4096 == 0 {
                self.cancelled()?;
            }
            let Some(ptr) = ram.host_ptr(ram.base() + n * PAGE as u64) else {
                continue;
            };
            // SAFETY: a whole page inside the RAM's mapping, which `ram`
            // keeps alive. The guest may write it meanwhile: the dirty log
            // then names it again and it is sent again.
            unsafe { std::ptr::copy_nonoverlapping(ptr.as_ptr(), page.as_mut_ptr(), PAGE) };
            sent += PAGE as u64;
            if let Some(m) = batch.add(n as u32, &page) {
                write_message(&mut self.out, &m).map_err(Self::io)?;
            }
        }
        if let Some(m) = batch.flush() {
            write_message(&mut self.out, &m).map_err(Self::io)?;
        }
        Ok(sent)
    }

    /// Every page of the RAM that may hold data and is not all zeros (the
    /// target's RAM starts as zeros).
    fn all_pages(ram: &GuestRam) -> Result<Vec<u64>, String> {
        let ranges = ram.data_ranges().map_err(|e| e.to_string())?;
        let mut pages = Vec::new();
        for (start, end) in ranges {
            for n in start / PAGE as u64..end.div_ceil(PAGE as u64) {
                let ptr = ram.host_ptr(ram.base() + n * PAGE as u64);
                // SAFETY: a whole page inside the mapping (see send_pages).
                let zero = ptr.is_none_or(|p| unsafe {
                    std::slice::from_raw_parts(p.as_ptr(), PAGE)
                        .iter()
                        .all(|&b| b == 0)
                });
                if !zero {
                    pages.push(n);
                }
            }
        }
        Ok(pages)
    }

    fn send(&mut self, ended: &mut Ended) -> Result<(), String> {
        let ram = self.vm.ram();
        let mut total = 0u64;
        // Round 0: everything, with the log cleared first.
        self.dirty.take()?;
        let started = Instant::now();
        let pages = Self::all_pages(&ram)?;
        total += self.send_pages(&ram, pages.into_iter())?;
        let mut round_time = started.elapsed();
        let mut rate = total as f64 / round_time.as_secs_f64().max(1e-6);
        let mut round = 0u32;
        let mut best = u64::MAX;
        let mut stalled = 0;
        let mut previous: Option<u64> = None;
        let pending = loop {
            let dirty = DirtyLog::pages(&self.dirty.take()?);
            let bytes = dirty.len() as u64 * PAGE as u64;
            write_message(
                &mut self.out,
                &control(&Control::Progress {
                    round,
                    sent: total,
                    dirtied: bytes,
                    micros: round_time.as_micros() as u64,
                }),
            )
            .map_err(Self::io)?;
            let fits = bytes as f64 / rate <= self.max_downtime.as_secs_f64();
            if bytes < best {
                best = bytes;
                stalled = 0;
            } else {
                stalled += 1;
            }
            // Fitting the target is not enough while another round would
            // still halve what the pause must copy: rounds are cheap then.
            let converged = bytes <= SMALL || previous.is_some_and(|p| bytes * 2 > p);
            if (fits && converged) || round + 1 >= MAX_ROUNDS || stalled >= 5 {
                break dirty;
            }
            previous = Some(bytes);
            round += 1;
            let started = Instant::now();
            let n = self.send_pages(&ram, dirty.into_iter())?;
            total += n;
            round_time = started.elapsed();
            if n > 0 {
                rate = n as f64 / round_time.as_secs_f64().max(1e-6);
            }
        };
        self.cancelled()?;
        write_message(&mut self.out, &[SYNC]).map_err(Self::io)?;
        let mut synced = [0u8; 1];
        self.out.read_exact(&mut synced).map_err(Self::io)?;
        if synced[0] != SYNCED {
            return Err("the supervisor did not sync".into());
        }
        // Stop-and-copy: nothing changes guest memory from here on.
        self.vm.pause();
        write_message(&mut self.out, &[PAUSED]).map_err(Self::io)?;
        let mut last = pending;
        last.extend(DirtyLog::pages(&self.dirty.take()?));
        last.sort_unstable();
        last.dedup();
        self.send_pages(&ram, last.into_iter())?;
        let state = self.vm.save_state()?.to_bytes();
        self.cancelled()?;
        self.vm.set_disk_locks(false)?;
        *ended = Ended::HandedOver;
        for piece in state.chunks(STATE_PIECE) {
            write_message(&mut self.out, &control(&Control::State(piece.to_vec())))
                .map_err(Self::io)?;
        }
        write_message(&mut self.out, &control(&Control::End)).map_err(Self::io)?;
        Ok(())
    }
}
