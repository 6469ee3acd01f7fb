//! The generic timer's EL1 physical and virtual timers of one CPU
//! (CNTP_* and CNTV_*). The counter is the VM's guest counter (host
//! monotonic time less the VM's clock offset, `Board::counter`); CNTVOFF is
//! zero. The timers are plain data and are their own saved state.

/// Builds a system register key from (op0, op1, CRn, CRm, op2).
const fn key(op0: u32, op1: u32, crn: u32, crm: u32, op2: u32) -> u32 {
    op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2
}

const CNTP_TVAL: u32 = key(3, 3, 14, 2, 0);
const CNTP_CTL: u32 = key(3, 3, 14, 2, 1);
const CNTP_CVAL: u32 = key(3, 3, 14, 2, 2);
const CNTV_TVAL: u32 = key(3, 3, 14, 3, 0);
const CNTV_CTL: u32 = key(3, 3, 14, 3, 1);
const CNTV_CVAL: u32 = key(3, 3, 14, 3, 2);

const ENABLE: u64 = 1;
const IMASK: u64 = 2;
const ISTATUS: u64 = 4;

/// One timer: control and compare value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Channel {
    ctl: u64,
    cval: u64,
}

impl Channel {
    fn fired(&self, now: u64) -> bool {
        self.ctl & ENABLE != 0 && now >= self.cval
    }

    fn output(&self, now: u64) -> bool {
        self.fired(now) && self.ctl & IMASK == 0
    }
}

/// The physical (index 0) and virtual (index 1) EL1 timers of one CPU.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Timers {
    channels: [Channel; 2],
}

/// Which timer a register belongs to, and which register it is.
fn decode(reg: u32) -> Option<(usize, u32)> {
    match reg {
        CNTP_TVAL | CNTP_CTL | CNTP_CVAL => Some((0, reg & 7)),
        CNTV_TVAL | CNTV_CTL | CNTV_CVAL => Some((1, reg & 7)),
        _ => None,
    }
}

impl Timers {
    /// MRS of a timer register at counter value `now`; `None` if not a timer register.
    pub fn read(&self, reg: u32, now: u64) -> Option<u64> {
        let (i, r) = decode(reg)?;
        let ch = &self.channels[i];
        Some(match r {
            0 => ch.cval.wrapping_sub(now) as u32 as u64,
            1 => ch.ctl | if ch.fired(now) { ISTATUS } else { 0 },
            _ => ch.cval,
        })
    }

    /// MSR of a timer register at counter value `now`; `None` if not a timer register.
    pub fn write(&mut self, reg: u32, value: u64, now: u64) -> Option<()> {
        let (i, r) = decode(reg)?;
        let ch = &mut self.channels[i];
        match r {
            0 => ch.cval = now.wrapping_add(value as u32 as i32 as i64 as u64),
            1 => ch.ctl = value & (ENABLE | IMASK),
            _ => ch.cval = value,
        }
        Some(())
    }

    /// (CNTP_CTL, CNTP_CVAL, CNTV_CTL, CNTV_CVAL): the registers' values
    /// without ISTATUS, for moving the timers to another implementation.
    pub fn registers(&self) -> [u64; 4] {
        let [p, v] = self.channels;
        [p.ctl, p.cval, v.ctl, v.cval]
    }

    /// Timers with these (CNTP_CTL, CNTP_CVAL, CNTV_CTL, CNTV_CVAL) values
    /// (bits no timer implements are dropped).
    pub fn from_registers(r: [u64; 4]) -> Self {
        let mut t = Timers {
            channels: [
                Channel {
                    ctl: r[0],
                    cval: r[1],
                },
                Channel {
                    ctl: r[2],
                    cval: r[3],
                },
            ],
        };
        t.sanitise();
        t
    }

    /// Drops control bits no timer implements (a restored state is not trusted).
    pub fn sanitise(&mut self) {
        for ch in &mut self.channels {
            ch.ctl &= ENABLE | IMASK;
        }
    }

    /// Output levels (physical, virtual) at counter value `now`.
    pub fn outputs(&self, now: u64) -> (bool, bool) {
        (self.channels[0].output(now), self.channels[1].output(now))
    }

    /// The earliest counter value at which an output will rise, if any.
    pub fn next_deadline(&self, now: u64) -> Option<u64> {
        self.channels
            .iter()
            .filter(|c| c.ctl & ENABLE != 0 && c.ctl & IMASK == 0 && c.cval > now)
            .map(|c| c.cval)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tval_cval_and_status() {
        let mut t = Timers::default();
        t.write(CNTV_TVAL, 100, 1000).unwrap();
        assert_eq!(t.read(CNTV_CVAL, 1000), Some(1100));
        t.write(CNTV_CTL, ENABLE, 1000).unwrap();
        assert_eq!(t.outputs(1099), (false, false));
        assert_eq!(t.next_deadline(1000), Some(1100));
        assert_eq!(t.outputs(1100), (false, true));
        assert_eq!(t.read(CNTV_CTL, 1100), Some(ENABLE | ISTATUS));
        assert_eq!(t.read(CNTV_TVAL, 1101), Some(u32::MAX as u64));
        t.write(CNTV_CTL, ENABLE | IMASK, 1100).unwrap();
        assert_eq!(t.outputs(1200), (false, false));
        assert_eq!(t.read(CNTV_CTL, 1200), Some(ENABLE | IMASK | ISTATUS));
        t.write(CNTP_TVAL, (-5i32) as u32 as u64, 50).unwrap();
        assert_eq!(t.read(CNTP_CVAL, 0), Some(45));
        assert_eq!(t.read(0, 0), None);
    }
}
