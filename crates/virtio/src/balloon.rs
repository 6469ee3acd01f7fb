//! virtio-balloon (device ID 5): the host asks for memory back by setting a
//! target; pages the guest gives up (inflate) or reports free (free page
//! reporting) are returned to the host (`GuestRam::discard`); the guest's
//! memory statistics are kept.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use board::GuestRam;

use crate::device::{read_config_bytes, VirtioDevice};
use crate::queue::{Queue, QueueError};
use crate::state::DeviceState;

const F_STATS_VQ: u64 = 1 << 1;
const F_DEFLATE_ON_OOM: u64 = 1 << 2;
const F_REPORTING: u64 = 1 << 5;

/// Balloon pages are always 4 KiB.
const PAGE: u64 = 4096;

/// The host's handle on a balloon: set the target, read what happened.
#[derive(Clone, Default)]
pub struct BalloonControl {
    inner: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// Requested balloon size in 4 KiB pages.
    target_pages: AtomicU32,
    /// Pages the guest says are in the balloon.
    actual_pages: AtomicU32,
    /// Bytes returned to the host by inflation.
    inflated_bytes: AtomicU64,
    /// Bytes returned to the host by free page reporting.
    reported_bytes: AtomicU64,
    /// The latest statistics: (tag, value) pairs.
    stats: Mutex<Vec<(u16, u64)>>,
    /// Target changes not yet seen by the device.
    generation: AtomicU32,
}

impl BalloonControl {
    /// Asks the guest to give up memory until the balloon holds `bytes`.
    /// Call `Board::poll_devices` afterwards to notify the guest.
    pub fn set_target(&self, bytes: u64) {
        self.inner.target_pages.store(
            (bytes / PAGE).min(u32::MAX as u64) as u32,
            Ordering::Release,
        );
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The requested balloon size in bytes.
    pub fn target_bytes(&self) -> u64 {
        self.inner.target_pages.load(Ordering::Acquire) as u64 * PAGE
    }

    /// Bytes the guest has put in the balloon.
    pub fn actual_bytes(&self) -> u64 {
        self.inner.actual_pages.load(Ordering::Acquire) as u64 * PAGE
    }

    /// Bytes handed back to the host by inflation and by free page reporting.
    pub fn returned_bytes(&self) -> (u64, u64) {
        (
            self.inner.inflated_bytes.load(Ordering::Acquire),
            self.inner.reported_bytes.load(Ordering::Acquire),
        )
    }

    /// The guest's latest memory statistics as (tag, value) pairs.
    pub fn stats(&self) -> Vec<(u16, u64)> {
        self.inner
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The balloon device.
pub struct Balloon {
    control: BalloonControl,
    seen_generation: u32,
    features: u64,
    /// The stats buffer the guest lent us, kept until we want fresh numbers.
    stats_head: Option<u16>,
}

impl Balloon {
    /// A balloon driven through `control`.
    pub fn new(control: BalloonControl) -> Self {
        Balloon {
            control,
            seen_generation: 0,
            features: 0,
            stats_head: None,
        }
    }

    fn queue_kind(&self, index: usize) -> Option<&'static str> {
        let mut kinds = vec!["inflate", "deflate"];
        if self.features & F_STATS_VQ != 0 {
            kinds.push("stats");
        }
        if self.features & F_REPORTING != 0 {
            kinds.push("reporting");
        }
        kinds.get(index).copied()
    }

    /// Returns the pages whose 32-bit frame numbers fill the readable buffers.
    fn give_back_pfns(&self, ram: &GuestRam, data: &[u8]) -> u64 {
        let mut freed = 0;
        for pfn in data.chunks_exact(4) {
            let pfn = u32::from_le_bytes(pfn.try_into().expect("4 bytes")) as u64;
            if ram.discard(pfn * PAGE, PAGE) {
                freed += PAGE;
            }
        }
        freed
    }
}

impl VirtioDevice for Balloon {
    fn device_id(&self) -> u32 {
        crate::spec::id::BALLOON
    }

    fn features(&self) -> u64 {
        F_STATS_VQ | F_DEFLATE_ON_OOM | F_REPORTING
    }

    fn num_queues(&self) -> usize {
        4
    }

    fn set_features(&mut self, features: u64) {
        self.features = features;
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let s = &self.control.inner;
        let mut config = [0u8; 16];
        config[0..4].copy_from_slice(&s.target_pages.load(Ordering::Acquire).to_le_bytes());
        config[4..8].copy_from_slice(&s.actual_pages.load(Ordering::Acquire).to_le_bytes());
        read_config_bytes(&config, offset, data);
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) {
        // Only `actual` (bytes 4..8) is the driver's to write.
        if offset == 4 && data.len() == 4 {
            let v = u32::from_le_bytes(data.try_into().expect("4 bytes"));
            self.control.inner.actual_pages.store(v, Ordering::Release);
        }
    }

    fn process(
        &mut self,
        index: usize,
        queue: &mut Queue,
        ram: &GuestRam,
    ) -> Result<bool, QueueError> {
        let kind = self.queue_kind(index);
        let mut used = false;
        while let Some(chain) = queue.pop(ram)? {
            match kind {
                Some("inflate") => {
                    let pfns = chain.read_all(ram, 1 << 20)?;
                    let n = self.give_back_pfns(ram, &pfns);
                    self.control
                        .inner
                        .inflated_bytes
                        .fetch_add(n, Ordering::AcqRel);
                }
                Some("deflate") => {
                    // Deflated pages simply fault back in when the guest touches them.
                }
                Some("stats") => {
                    let raw = chain.read_all(ram, 4096)?;
                    let stats = raw
                        .chunks_exact(10)
                        .map(|c| {
                            (
                                u16::from_le_bytes([c[0], c[1]]),
                                u64::from_le_bytes(c[2..10].try_into().expect("8 bytes")),
                            )
                        })
                        .collect();
                    *self
                        .control
                        .inner
                        .stats
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = stats;
                    // Keep the buffer: returning it asks the driver for fresh numbers.
                    if let Some(old) = self.stats_head.replace(chain.head) {
                        queue.push_used(ram, old, 0)?;
                        used = true;
                    }
                    continue;
                }
                Some("reporting") => {
                    let mut freed = 0;
                    for b in &chain.writable {
                        let start = b.addr.next_multiple_of(PAGE);
                        let end = (b.addr + b.len as u64) & !(PAGE - 1);
                        if end > start && ram.discard(start, end - start) {
                            freed += end - start;
                        }
                    }
                    self.control
                        .inner
                        .reported_bytes
                        .fetch_add(freed, Ordering::AcqRel);
                }
                _ => return Err(QueueError::Malformed("balloon queue not negotiated")),
            }
            queue.push_used(ram, chain.head, 0)?;
            used = true;
        }
        Ok(used)
    }

    fn save_state(&self) -> DeviceState {
        let s = &self.control.inner;
        DeviceState::Balloon {
            features: self.features,
            target_pages: s.target_pages.load(Ordering::Acquire),
            actual_pages: s.actual_pages.load(Ordering::Acquire),
            stats_head: self.stats_head,
        }
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), String> {
        match *state {
            DeviceState::Balloon {
                features,
                target_pages,
                actual_pages,
                stats_head,
            } => {
                let s = &self.control.inner;
                self.features = features & self.features();
                self.stats_head = stats_head;
                s.target_pages.store(target_pages, Ordering::Release);
                s.actual_pages.store(actual_pages, Ordering::Release);
                self.seen_generation = s.generation.load(Ordering::Acquire);
                Ok(())
            }
            ref other => Err(crate::state::mismatch("balloon", other)),
        }
    }

    fn reset(&mut self) {
        self.stats_head = None;
        self.features = 0;
    }

    fn poll(&mut self) -> bool {
        let g = self.control.inner.generation.load(Ordering::Acquire);
        let changed = g != self.seen_generation;
        self.seen_generation = g;
        changed
    }
}
