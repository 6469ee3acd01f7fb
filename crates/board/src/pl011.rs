//! An Arm PrimeCell PL011 UART: transmit goes straight to a host writer,
//! receive through a 32-byte FIFO fed by the host, with the interrupt
//! behaviour Linux's amba-pl011 driver expects.

use std::collections::VecDeque;
use std::io::Write;

use crate::mmio::MmioDevice;

const FIFO_DEPTH: usize = 32;

const DR: u64 = 0x000;
const RSR: u64 = 0x004;
const FR: u64 = 0x018;
const ILPR: u64 = 0x020;
const IBRD: u64 = 0x024;
const FBRD: u64 = 0x028;
const LCR_H: u64 = 0x02c;
const CR: u64 = 0x030;
const IFLS: u64 = 0x034;
const IMSC: u64 = 0x038;
const RIS: u64 = 0x03c;
const MIS: u64 = 0x040;
const ICR: u64 = 0x044;
const DMACR: u64 = 0x048;

const FR_RXFE: u64 = 1 << 4;
const FR_RXFF: u64 = 1 << 6;
const FR_TXFE: u64 = 1 << 7;
const LCR_FEN: u64 = 1 << 4;

/// Receive interrupt.
const INT_RX: u32 = 1 << 4;
/// Transmit interrupt.
const INT_TX: u32 = 1 << 5;
/// Receive timeout interrupt.
const INT_RT: u32 = 1 << 6;

/// PrimeCell identification: PeriphID 0x00041011, CellID 0xB105F00D.
const ID: [u8; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// The UART's guest-visible state.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pl011State {
    /// Bytes in the receive FIFO, oldest first.
    pub rx: Vec<u8>,
    /// Latched interrupt bits other than the receive ones.
    pub latched: u32,
    /// UARTIMSC.
    pub imsc: u32,
    /// UARTLCR_H.
    pub lcr_h: u64,
    /// UARTCR.
    pub cr: u64,
    /// UARTIFLS.
    pub ifls: u64,
    /// UARTIBRD.
    pub ibrd: u64,
    /// UARTFBRD.
    pub fbrd: u64,
    /// UARTILPR.
    pub ilpr: u64,
    /// UARTDMACR.
    pub dmacr: u64,
}

/// The UART.
pub struct Pl011 {
    output: Box<dyn Write + Send>,
    rx: VecDeque<u8>,
    /// Latched interrupt bits other than the receive ones (TX, errors).
    latched: u32,
    imsc: u32,
    lcr_h: u64,
    cr: u64,
    ifls: u64,
    ibrd: u64,
    fbrd: u64,
    ilpr: u64,
    dmacr: u64,
}

impl Pl011 {
    /// A UART whose transmitted bytes go to `output`.
    pub fn new(output: Box<dyn Write + Send>) -> Self {
        Pl011 {
            output,
            rx: VecDeque::with_capacity(FIFO_DEPTH),
            latched: 0,
            imsc: 0,
            lcr_h: 0,
            cr: 0x300,
            ifls: 0x12,
            ibrd: 0,
            fbrd: 0,
            ilpr: 0,
            dmacr: 0,
        }
    }

    /// The guest-visible state.
    pub fn state(&self) -> Pl011State {
        Pl011State {
            rx: self.rx.iter().copied().collect(),
            latched: self.latched,
            imsc: self.imsc,
            lcr_h: self.lcr_h,
            cr: self.cr,
            ifls: self.ifls,
            ibrd: self.ibrd,
            fbrd: self.fbrd,
            ilpr: self.ilpr,
            dmacr: self.dmacr,
        }
    }

    /// Loads a saved state (the output stays where it goes). A receive
    /// FIFO longer than the UART's is cut to its depth.
    pub fn set_state(&mut self, s: &Pl011State) {
        self.latched = s.latched;
        self.imsc = s.imsc;
        self.lcr_h = s.lcr_h;
        self.cr = s.cr;
        self.ifls = s.ifls;
        self.ibrd = s.ibrd;
        self.fbrd = s.fbrd;
        self.ilpr = s.ilpr;
        self.dmacr = s.dmacr;
        self.rx.clear();
        let n = s.rx.len().min(self.depth());
        self.rx.extend(&s.rx[..n]);
    }

    fn depth(&self) -> usize {
        if self.lcr_h & LCR_FEN != 0 {
            FIFO_DEPTH
        } else {
            1
        }
    }

    /// Free room in the receive FIFO.
    pub fn rx_space(&self) -> usize {
        self.depth().saturating_sub(self.rx.len())
    }

    /// Queues received bytes; returns how many fitted.
    pub fn push_input(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.rx_space());
        self.rx.extend(&bytes[..n]);
        n
    }

    fn rx_trigger(&self) -> usize {
        if self.lcr_h & LCR_FEN == 0 {
            return 1;
        }
        match self.ifls >> 3 & 7 {
            0 => 4,
            1 => 8,
            2 => 16,
            3 => 24,
            _ => 28,
        }
    }

    fn raw_status(&self) -> u32 {
        let mut ris = self.latched;
        if self.rx.len() >= self.rx_trigger() {
            ris |= INT_RX;
        }
        if !self.rx.is_empty() {
            ris |= INT_RT;
        }
        ris
    }
}

impl MmioDevice for Pl011 {
    /// Whether the interrupt output is asserted.
    fn irq_level(&self) -> bool {
        self.raw_status() & self.imsc != 0
    }

    fn read(&mut self, offset: u64, _size: u8) -> u64 {
        match offset {
            DR => self.rx.pop_front().map_or(0, u64::from),
            RSR => 0,
            FR => {
                let mut fr = FR_TXFE;
                if self.rx.is_empty() {
                    fr |= FR_RXFE;
                }
                if self.rx.len() >= self.depth() {
                    fr |= FR_RXFF;
                }
                fr
            }
            ILPR => self.ilpr,
            IBRD => self.ibrd,
            FBRD => self.fbrd,
            LCR_H => self.lcr_h,
            CR => self.cr,
            IFLS => self.ifls,
            IMSC => self.imsc as u64,
            RIS => self.raw_status() as u64,
            MIS => (self.raw_status() & self.imsc) as u64,
            DMACR => self.dmacr,
            0xfe0..=0xffc if offset.is_multiple_of(4) => ID[(offset - 0xfe0) as usize / 4] as u64,
            _ => 0,
        }
    }

    fn write(&mut self, offset: u64, _size: u8, value: u64) {
        match offset {
            DR => {
                // A console that went away must not stop the guest.
                let _ = self.output.write_all(&[value as u8]);
                let _ = self.output.flush();
                self.latched |= INT_TX;
            }
            RSR => {}
            ILPR => self.ilpr = value & 0xff,
            IBRD => self.ibrd = value & 0xffff,
            FBRD => self.fbrd = value & 0x3f,
            LCR_H => {
                let was_fifo = self.lcr_h & LCR_FEN != 0;
                self.lcr_h = value & 0xff;
                if was_fifo && self.lcr_h & LCR_FEN == 0 {
                    self.rx.truncate(1);
                }
            }
            CR => self.cr = value & 0xffff,
            IFLS => self.ifls = value & 0x3f,
            IMSC => self.imsc = value as u32 & 0x7ff,
            ICR => self.latched &= !(value as u32),
            DMACR => self.dmacr = value & 7,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn identifies_as_pl011() {
        let mut u = Pl011::new(Box::new(std::io::sink()));
        let id: Vec<u64> = (0..8).map(|i| u.read(0xfe0 + 4 * i, 4)).collect();
        assert_eq!(id, [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
    }

    #[test]
    fn transmit_and_tx_interrupt() {
        let sink = Sink::default();
        let mut u = Pl011::new(Box::new(sink.clone()));
        u.write(IMSC, 4, INT_TX as u64);
        assert!(!u.irq_level());
        for b in b"hi\n" {
            u.write(DR, 4, *b as u64);
        }
        assert_eq!(&*sink.0.lock().unwrap(), b"hi\n");
        assert!(u.irq_level());
        u.write(ICR, 4, INT_TX as u64);
        assert!(!u.irq_level());
        assert!(u.read(FR, 4) & FR_TXFE != 0);
    }

    #[test]
    fn receive_fifo_and_interrupts() {
        let mut u = Pl011::new(Box::new(std::io::sink()));
        assert_eq!(u.push_input(b"abc"), 1, "without FIFO only one byte fits");
        u.write(LCR_H, 4, LCR_FEN | 0x60);
        assert_eq!(u.push_input(&[b'x'; 40]), 31);
        assert!(u.read(FR, 4) & FR_RXFF != 0);
        u.write(IMSC, 4, (INT_RX | INT_RT) as u64);
        assert!(u.irq_level());
        assert_eq!(u.read(DR, 4), b'a' as u64);
        for _ in 0..31 {
            assert_eq!(u.read(DR, 4), b'x' as u64);
        }
        assert!(u.read(FR, 4) & FR_RXFE != 0);
        assert!(!u.irq_level());
        u.push_input(b"z");
        assert_eq!(
            u.read(MIS, 4) as u32,
            INT_RT,
            "timeout, below trigger level"
        );
        u.write(IMSC, 4, 0);
        assert!(!u.irq_level());
    }

    #[test]
    fn odd_accesses_are_harmless() {
        let mut u = Pl011::new(Box::new(std::io::sink()));
        for off in (0..0x1000).step_by(1) {
            for size in [1, 2, 4, 8] {
                u.read(off, size);
                if off != DR {
                    u.write(off, size, u64::MAX);
                }
            }
        }
    }
}
