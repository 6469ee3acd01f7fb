//! AdvSIMD three-same integer operations (vector forms): arithmetic, halving
//! and saturating add/subtract, compares, min/max, absolute difference,
//! multiply(-accumulate), pairwise operations, shifts by register and the
//! bitwise AND/BIC/ORR/ORN/EOR/BSL/BIT/BIF.

use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::*;
use crate::insn::lanes::*;

/// FPSR.QC, the cumulative saturation flag.
pub(crate) const QC: u32 = 1 << 27;

pub(crate) const ENCODINGS: &[Encoding] = &[
    Encoding::new(
        "0 q u 01110 zz 1 mmmmm 0 oooo 1 nnnnn ddddd",
        "AdvSIMD three same (integer, opcodes 0xxxx)",
        "simd-int",
        three_same,
    ),
    Encoding::new(
        "0 q u 01110 zz 1 mmmmm 10 ooo 1 nnnnn ddddd",
        "AdvSIMD three same (integer, opcodes 10xxx)",
        "simd-int",
        three_same,
    ),
];

/// Saturates a signed value to `esize` bits; sets `sat` if it had to.
#[inline(always)]
pub(crate) fn sat_s(v: i128, esize: u32, sat: &mut bool) -> u64 {
    let max = (1i128 << (esize - 1)) - 1;
    let min = -(1i128 << (esize - 1));
    let c = v.clamp(min, max);
    *sat |= c != v;
    c as u64 & ones(esize)
}

/// Saturates an unsigned value to `esize` bits; sets `sat` if it had to.
#[inline(always)]
pub(crate) fn sat_u(v: i128, esize: u32, sat: &mut bool) -> u64 {
    let max = ones(esize) as i128;
    let c = v.clamp(0, max);
    *sat |= c != v;
    c as u64
}

/// Shift of `x` (esize bits, signed or not) by the signed low byte of `s`, with optional rounding.
fn shift_by_reg(x: u64, s: u64, esize: u32, signed: bool, round: bool) -> i128 {
    let sh = s as i8 as i32;
    let v: i128 = if signed {
        ((x << (64 - esize)) as i64 >> (64 - esize)) as i128
    } else {
        x as i128
    };
    if sh >= 0 {
        if sh >= 128 {
            0
        } else {
            v << sh.min(127)
        }
    } else {
        let r = (-sh).min(127);
        let rounded = if round { v + (1i128 << (r - 1)) } else { v };
        rounded >> r
    }
}

fn three_same(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let q = bit(raw, 30);
    let u = bit(raw, 29);
    let size = bits(raw, 23, 22);
    let opcode = bits(raw, 15, 11);
    let esize = 8u32 << size;
    let datasize = if q { 128 } else { 64 };
    let (a, b) = (cpu.vreg(rn(raw)), cpu.vreg(rm(raw)));
    let d = cpu.vreg(rd(raw));
    let undefined = |cpu: &mut Cpu| cpu.stop(Exit::Undefined(raw));
    if size == 3 && !q && opcode != 0b00011 {
        return undefined(cpu);
    }
    let sx = |x: u64| ((x << (64 - esize)) as i64 >> (64 - esize)) as i128;
    let mut sat = false;
    let r: u128 = match opcode {
        0b00011 => {
            // Bitwise: size selects the operation.
            let r = match (u, size) {
                (false, 0) => a & b,
                (false, 1) => a & !b,
                (false, 2) => a | b,
                (false, _) => a | !b,
                (true, 0) => a ^ b,
                (true, 1) => (d & a) | (!d & b),
                (true, 2) => (d & !b) | (a & b),
                (true, _) => (d & b) | (a & !b),
            };
            keep_low(r, datasize / 8)
        }
        _ if size == 3
            && !matches!(
                opcode,
                0b00001
                    | 0b00101
                    | 0b00110
                    | 0b00111
                    | 0b01000
                    | 0b01010
                    | 0b10000
                    | 0b10001
                    | 0b10111
            ) =>
        {
            return undefined(cpu);
        }
        0b00000 | 0b00010 | 0b00100 => {
            // Halving add (rounding for 00010) and halving subtract.
            map2(a, b, esize, datasize, |x, y| {
                let (x, y) = if u {
                    (x as i128, y as i128)
                } else {
                    (sx(x), sx(y))
                };
                let v = match opcode {
                    0b00000 => x + y,
                    0b00010 => x + y + 1,
                    _ => x - y,
                };
                (v >> 1) as u64
            })
        }
        0b00001 | 0b00101 => map2(a, b, esize, datasize, |x, y| {
            let (x, y) = if u {
                (x as i128, y as i128)
            } else {
                (sx(x), sx(y))
            };
            let v = if opcode == 0b00001 { x + y } else { x - y };
            // Saturation is recorded in a second pass below.
            let mut s = false;
            if u {
                sat_u(v, esize, &mut s)
            } else {
                sat_s(v, esize, &mut s)
            }
        }),
        0b00110 | 0b00111 => map2(a, b, esize, datasize, |x, y| {
            let holds = match (u, opcode == 0b00111) {
                (false, false) => sx(x) > sx(y),
                (false, true) => sx(x) >= sx(y),
                (true, false) => x > y,
                (true, true) => x >= y,
            };
            if holds {
                u64::MAX
            } else {
                0
            }
        }),
        0b01000 | 0b01010 => map2(a, b, esize, datasize, |x, y| {
            shift_by_reg(x, y, esize, !u, opcode == 0b01010) as u64
        }),
        0b01100 | 0b01101 => map2(a, b, esize, datasize, |x, y| {
            let (x2, y2) = if u {
                (x as i128, y as i128)
            } else {
                (sx(x), sx(y))
            };
            if (opcode == 0b01100) == (x2 > y2) {
                x
            } else {
                y
            }
        }),
        0b01110 | 0b01111 => {
            let acc = opcode == 0b01111;
            let r = map2(a, b, esize, datasize, |x, y| {
                let (x, y) = if u {
                    (x as i128, y as i128)
                } else {
                    (sx(x), sx(y))
                };
                (x - y).unsigned_abs() as u64
            });
            if acc {
                map2(d, r, esize, datasize, |x, y| x.wrapping_add(y))
            } else {
                r
            }
        }
        0b10000 => map2(a, b, esize, datasize, |x, y| {
            if u {
                x.wrapping_sub(y)
            } else {
                x.wrapping_add(y)
            }
        }),
        0b10001 => map2(a, b, esize, datasize, |x, y| {
            let holds = if u { x == y } else { x & y != 0 };
            if holds {
                u64::MAX
            } else {
                0
            }
        }),
        0b10010 => map2(a, b, esize, datasize, |x, y| x.wrapping_mul(y)).pipe(|p| {
            map2(d, p, esize, datasize, |acc, p| {
                if u {
                    acc.wrapping_sub(p)
                } else {
                    acc.wrapping_add(p)
                }
            })
        }),
        0b10011 if !u => map2(a, b, esize, datasize, |x, y| x.wrapping_mul(y)),
        0b10011 if size == 0 => map2(a, b, esize, datasize, |x, y| {
            (0..8).fold(
                0u64,
                |acc, k| if y >> k & 1 != 0 { acc ^ (x << k) } else { acc },
            )
        }),
        0b10100 | 0b10101 | 0b10111 => {
            if opcode == 0b10111 && u {
                return undefined(cpu);
            }
            // Pairwise: adjacent pairs of the concatenation b:a.
            let elements = (datasize / esize) as usize;
            let mut r = 0u128;
            for k in 0..elements {
                let (src, j) = if k < elements / 2 {
                    (a, 2 * k)
                } else {
                    (b, 2 * (k - elements / 2))
                };
                let (x, y) = (lane(src, esize, j), lane(src, esize, j + 1));
                let v = match opcode {
                    0b10111 => x.wrapping_add(y),
                    _ => {
                        let (x2, y2) = if u {
                            (x as i128, y as i128)
                        } else {
                            (sx(x), sx(y))
                        };
                        if (opcode == 0b10100) == (x2 > y2) {
                            x
                        } else {
                            y
                        }
                    }
                };
                r = with_lane(r, esize, k, v);
            }
            r
        }
        _ => return undefined(cpu),
    };
    if opcode == 0b00001 || opcode == 0b00101 {
        // Saturation check, done separately to keep the lane closure pure.
        for k in 0..(datasize / esize) as usize {
            let (x, y) = (lane(a, esize, k), lane(b, esize, k));
            let (x, y) = if u {
                (x as i128, y as i128)
            } else {
                (sx(x), sx(y))
            };
            let v = if opcode == 0b00001 { x + y } else { x - y };
            if u {
                sat_u(v, esize, &mut sat);
            } else {
                sat_s(v, esize, &mut sat);
            }
        }
        if sat {
            cpu.fpsr |= QC;
        }
    }
    cpu.set_vreg(rd(raw), r);
    Ok(())
}

/// Lets a value flow into a closure (keeps multi-step lane computations readable).
trait Pipe: Sized {
    fn pipe<R>(self, f: impl FnOnce(Self) -> R) -> R {
        f(self)
    }
}
impl Pipe for u128 {}
