use super::*;

const IAR1: u32 = 3 << 14 | 12 << 7 | 12 << 3;
const EOIR1: u32 = IAR1 | 1;
const CTLR: u32 = IAR1 | 4;
const IGRPEN1: u32 = IAR1 | 7;
const DIR: u32 = 3 << 14 | 12 << 7 | 11 << 3 | 1;
const SGI1R: u32 = 3 << 14 | 12 << 7 | 11 << 3 | 5;
const PMR: u32 = 3 << 14 | 4 << 7 | 6 << 3;

/// A GIC set up the way Linux does: groups enabled, PMR open, everything group 1.
fn linux_like(cpus: usize) -> Gic {
    let mut g = Gic::new(cpus, 64);
    g.distributor_write(0, 4, (regs::CTLR_GRP1 | regs::CTLR_ARE) as u64);
    for c in 0..cpus {
        let rd = c as u64 * 0x2_0000;
        g.redistributor_write(rd + 0x14, 4, 0);
        g.redistributor_write(rd + 0x1_0080, 4, 0xffff_ffff);
        g.icc_write(c, PMR, 0xf0).unwrap();
        g.icc_write(c, IGRPEN1, 1).unwrap();
    }
    g.distributor_write(0x84, 4, 0xffff_ffff);
    g.distributor_write(0x88, 4, 0xffff_ffff);
    g
}

fn enable_spi(g: &mut Gic, intid: u32, priority: u8) {
    g.distributor_write(0x100 + (intid as u64 / 32) * 4, 4, 1 << (intid % 32));
    g.distributor_write(0x400 + intid as u64, 1, priority as u64);
}

#[test]
fn level_spi_is_acknowledged_and_completed() {
    let mut g = linux_like(1);
    enable_spi(&mut g, 33, 0xa0);
    assert!(!g.irq_pending(0));
    g.set_level(33, 0, true);
    assert!(g.irq_pending(0));
    assert_eq!(g.icc_read(0, IAR1), Some(33));
    assert!(!g.irq_pending(0), "active interrupt blocks itself");
    g.set_level(33, 0, false);
    g.icc_write(0, EOIR1, 33).unwrap();
    assert!(!g.irq_pending(0));
    assert_eq!(g.icc_read(0, IAR1), Some(SPURIOUS as u64));
}

#[test]
fn line_dropped_before_ack_clears_pending() {
    let mut g = linux_like(1);
    enable_spi(&mut g, 40, 0x80);
    g.set_level(40, 0, true);
    g.set_level(40, 0, false);
    assert!(!g.irq_pending(0));
}

#[test]
fn running_priority_blocks_lower_and_admits_higher() {
    let mut g = linux_like(1);
    enable_spi(&mut g, 33, 0x80);
    enable_spi(&mut g, 34, 0xa0);
    enable_spi(&mut g, 35, 0x40);
    g.set_level(33, 0, true);
    assert_eq!(g.icc_read(0, IAR1), Some(33));
    g.set_level(34, 0, true);
    assert!(!g.irq_pending(0), "lower priority must wait");
    g.set_level(35, 0, true);
    assert!(g.irq_pending(0), "higher priority preempts");
    assert_eq!(g.icc_read(0, IAR1), Some(35));
    g.set_level(35, 0, false);
    g.icc_write(0, EOIR1, 35).unwrap();
    g.set_level(33, 0, false);
    g.icc_write(0, EOIR1, 33).unwrap();
    assert_eq!(g.icc_read(0, IAR1), Some(34));
}

#[test]
fn pmr_masks_and_eoimode_needs_dir() {
    let mut g = linux_like(1);
    enable_spi(&mut g, 33, 0xf0);
    g.set_level(33, 0, true);
    assert!(!g.irq_pending(0), "priority 0xf0 is not above PMR 0xf0");
    g.distributor_write(0x400 + 33, 1, 0x10);
    g.icc_write(0, CTLR, 2).unwrap();
    assert_eq!(g.icc_read(0, IAR1), Some(33));
    g.set_level(33, 0, false);
    g.icc_write(0, EOIR1, 33).unwrap();
    g.set_level(33, 0, true);
    assert!(!g.irq_pending(0), "still active until DIR");
    g.icc_write(0, DIR, 33).unwrap();
    assert!(g.irq_pending(0));
}

#[test]
fn sgi_reaches_the_target_cpu_only() {
    let mut g = linux_like(3);
    for c in 0..3 {
        g.redistributor_write(c * 0x2_0000 + 0x1_0100, 4, 0xffff);
    }
    g.take_kicks();
    // SGI 5 to CPU 2 (Aff0 target list bit 2).
    g.icc_write(0, SGI1R, 5 << 24 | 1 << 2).unwrap();
    assert!(g.take_kicks() & 4 != 0);
    assert!(!g.irq_pending(1));
    assert!(g.irq_pending(2));
    assert_eq!(g.icc_read(2, IAR1), Some(5));
    // Broadcast to all but the sender.
    g.icc_write(1, SGI1R, 3 << 24 | 1 << 40).unwrap();
    assert!(g.irq_pending(0) && !g.irq_pending(1));
}

#[test]
fn disabled_group_masks_everything() {
    let mut g = linux_like(1);
    enable_spi(&mut g, 33, 0x80);
    g.set_level(33, 0, true);
    g.icc_write(0, IGRPEN1, 0).unwrap();
    assert!(!g.irq_pending(0));
    g.icc_write(0, IGRPEN1, 1).unwrap();
    g.distributor_write(0, 4, 0);
    assert!(!g.irq_pending(0));
}

#[test]
fn identification_registers() {
    let mut g = Gic::new(2, 64);
    assert_eq!(g.distributor_read(0xffe8, 4) & 0xf0, 0x30);
    assert_eq!(g.redistributor_read(0xffe8, 4) & 0xf0, 0x30);
    assert_eq!(g.distributor_read(4, 4) & 0x1f, 2);
    let typer1 = g.redistributor_read(0x2_0008, 8);
    assert_eq!(typer1 >> 32, 1);
    assert!(typer1 & 1 << 4 != 0, "last redistributor");
    assert!(g.redistributor_read(0x8, 8) & 1 << 4 == 0);
}

#[test]
fn arbitrary_accesses_never_panic() {
    let mut g = Gic::new(2, 64);
    let mut x = 0x1234_5678_9abc_def0u64;
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = [1u8, 2, 4, 8][(x & 3) as usize];
        let off = (x >> 8) % 0x4_4000;
        match x >> 60 & 3 {
            0 => {
                g.distributor_read(off & 0xffff, size);
            }
            1 => g.distributor_write(off & 0xffff, size, x.rotate_left(17)),
            2 => {
                g.redistributor_read(off, size);
            }
            _ => g.redistributor_write(off, size, x.rotate_left(9)),
        }
        let reg = (x >> 20) as u32 & 0xffff;
        let _ = g.icc_read((x >> 40) as usize % 4, reg);
        let _ = g.icc_write((x >> 44) as usize % 4, reg, x);
        g.set_level(
            (x >> 30) as u32 % 1100,
            (x >> 50) as usize % 4,
            x & 1 << 33 != 0,
        );
        let _ = g.irq_pending((x >> 52) as usize % 4);
    }
}
