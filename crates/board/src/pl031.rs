//! An Arm PrimeCell PL031 real-time clock: seconds since the Unix epoch from
//! host time, settable by the guest (as an offset), with a match interrupt.

use crate::mmio::MmioDevice;

const DR: u64 = 0x00;
const MR: u64 = 0x04;
const LR: u64 = 0x08;
const CR: u64 = 0x0c;
const IMSC: u64 = 0x10;
const RIS: u64 = 0x14;
const MIS: u64 = 0x18;
const ICR: u64 = 0x1c;

/// PrimeCell identification: PeriphID 0x00041031, CellID 0xB105F00D.
const ID: [u8; 8] = [0x31, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// Source of wall-clock seconds (injectable for tests).
pub type Clock = Box<dyn Fn() -> u64 + Send>;

/// The host's wall clock in seconds since the Unix epoch.
pub fn host_clock() -> Clock {
    Box::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

/// The RTC's guest-visible state.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pl031State {
    /// Guest time minus host time, in seconds (wrapping).
    pub offset: u32,
    /// The match register.
    pub mr: u32,
    /// Counter value at the last poll.
    pub last: u32,
    /// Interrupt mask.
    pub imsc: bool,
    /// Raw interrupt status.
    pub ris: bool,
}

/// The RTC.
pub struct Pl031 {
    clock: Clock,
    /// Guest time minus host time, in seconds (wrapping).
    offset: u32,
    mr: u32,
    /// Counter value at the last poll.
    last: u32,
    imsc: bool,
    ris: bool,
}

impl Pl031 {
    /// An RTC reading `clock`.
    pub fn new(clock: Clock) -> Self {
        let last = clock() as u32;
        Pl031 {
            clock,
            offset: 0,
            mr: 0,
            last,
            imsc: false,
            ris: false,
        }
    }

    /// The guest-visible state.
    pub fn state(&self) -> Pl031State {
        Pl031State {
            offset: self.offset,
            mr: self.mr,
            last: self.last,
            imsc: self.imsc,
            ris: self.ris,
        }
    }

    /// Loads a saved state (the clock stays the host's).
    pub fn set_state(&mut self, s: &Pl031State) {
        self.offset = s.offset;
        self.mr = s.mr;
        self.last = s.last;
        self.imsc = s.imsc;
        self.ris = s.ris;
    }

    fn now(&self) -> u32 {
        ((self.clock)() as u32).wrapping_add(self.offset)
    }

    /// Latches the match interrupt if the match time has come; call periodically.
    pub fn poll(&mut self) {
        let now = self.now();
        // The match fires once, when the counter passes MR.
        let elapsed = now.wrapping_sub(self.last);
        if elapsed != 0 && self.mr.wrapping_sub(self.last).wrapping_sub(1) < elapsed {
            self.ris = true;
        }
        self.last = now;
    }
}

impl MmioDevice for Pl031 {
    /// Whether the interrupt output is asserted.
    fn irq_level(&self) -> bool {
        self.ris && self.imsc
    }

    fn read(&mut self, offset: u64, _size: u8) -> u64 {
        self.poll();
        match offset {
            DR => self.now() as u64,
            MR => self.mr as u64,
            LR => self.now() as u64,
            CR => 1,
            IMSC => self.imsc as u64,
            RIS => self.ris as u64,
            MIS => self.irq_level() as u64,
            0xfe0..=0xffc if offset.is_multiple_of(4) => ID[(offset - 0xfe0) as usize / 4] as u64,
            _ => 0,
        }
    }

    fn write(&mut self, offset: u64, _size: u8, value: u64) {
        match offset {
            MR => self.mr = value as u32,
            LR => {
                self.offset = (value as u32).wrapping_sub((self.clock)() as u32);
                self.last = self.now();
            }
            IMSC => self.imsc = value & 1 != 0,
            ICR if value & 1 != 0 => self.ris = false,
            _ => {}
        }
        self.poll();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    fn fake() -> (Arc<AtomicU64>, Pl031) {
        let t = Arc::new(AtomicU64::new(1_800_000_000));
        let c = t.clone();
        (t, Pl031::new(Box::new(move || c.load(Ordering::SeqCst))))
    }

    #[test]
    fn reads_host_time_and_can_be_set() {
        let (t, mut rtc) = fake();
        assert_eq!(rtc.read(DR, 4), 1_800_000_000);
        rtc.write(LR, 4, 1_000);
        t.fetch_add(5, Ordering::SeqCst);
        assert_eq!(rtc.read(DR, 4), 1_005);
        let id: Vec<u64> = (0..8).map(|i| rtc.read(0xfe0 + 4 * i, 4)).collect();
        assert_eq!(id, [0x31, 0x10, 0x04, 0, 0x0d, 0xf0, 0x05, 0xb1]);
        assert!(host_clock()() > 1_700_000_000);
    }

    #[test]
    fn match_interrupt() {
        let (t, mut rtc) = fake();
        rtc.write(MR, 4, 1_800_000_002);
        rtc.write(IMSC, 4, 1);
        assert!(!rtc.irq_level());
        t.fetch_add(2, Ordering::SeqCst);
        rtc.poll();
        assert!(rtc.irq_level());
        rtc.write(ICR, 4, 1);
        assert!(!rtc.irq_level());
    }
}
