//! virtio-rng (device ID 4): entropy from the host's getrandom.

use board::GuestRam;

use crate::device::VirtioDevice;
use crate::queue::{Queue, QueueError};

/// The entropy device.
#[derive(Default)]
pub struct Rng;

/// Fills `buf` from the host's getrandom.
fn host_random(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: getrandom writes at most the given length into the buffer.
        let n = unsafe {
            libc::getrandom(
                buf[done..].as_mut_ptr() as *mut libc::c_void,
                buf.len() - done,
                0,
            )
        };
        if n <= 0 {
            continue;
        }
        done += n as usize;
    }
}

impl VirtioDevice for Rng {
    fn device_id(&self) -> u32 {
        crate::spec::id::RNG
    }

    fn features(&self) -> u64 {
        0
    }

    fn num_queues(&self) -> usize {
        1
    }

    fn read_config(&self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn process(
        &mut self,
        _index: usize,
        queue: &mut Queue,
        ram: &GuestRam,
    ) -> Result<bool, QueueError> {
        let mut used = false;
        while let Some(chain) = queue.pop(ram)? {
            if !chain.readable.is_empty() {
                return Err(QueueError::Malformed(
                    "entropy request with a device-readable buffer",
                ));
            }
            let len = chain.writable_len().min(1 << 16) as usize;
            let mut bytes = vec![0u8; len];
            host_random(&mut bytes);
            let n = chain.write_at(ram, 0, &bytes)?;
            queue.push_used(ram, chain.head, n as u32)?;
            used = true;
        }
        Ok(used)
    }
}
