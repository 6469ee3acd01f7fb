//! The flattened device tree that describes the board to the guest,
//! generated at boot with vm-fdt.

use vm_fdt::{FdtWriter, FdtWriterResult};

use crate::layout::{self, ppi, spi};

/// What the device tree must describe beyond the fixed board.
#[derive(Clone, Debug)]
pub struct FdtConfig {
    /// Number of CPUs.
    pub cpus: usize,
    /// RAM size in bytes (RAM starts at [`layout::RAM_BASE`]).
    pub ram_size: u64,
    /// Kernel command line.
    pub cmdline: String,
    /// Initrd range (start, end), if any.
    pub initrd: Option<(u64, u64)>,
    /// virtio-mmio transports: (base address, SPI number).
    pub virtio: Vec<(u64, u32)>,
    /// 64 bytes of entropy for the kernel's `rng-seed`.
    pub seed: [u8; 64],
}

const GIC_PHANDLE: u32 = 1;
const CLOCK_PHANDLE: u32 = 2;
/// Interrupt specifier types for `interrupts` properties.
const SPI_TYPE: u32 = 0;
const PPI_TYPE: u32 = 1;
/// IRQ_TYPE_LEVEL_HIGH.
const LEVEL_HIGH: u32 = 4;

/// Builds the device tree blob.
pub fn build(cfg: &FdtConfig) -> FdtWriterResult<Vec<u8>> {
    let mut f = FdtWriter::new()?;
    let root = f.begin_node("")?;
    f.property_string("compatible", "linux,dummy-virt")?;
    f.property_string("model", "Pocketvisor virtual board")?;
    f.property_u32("#address-cells", 2)?;
    f.property_u32("#size-cells", 2)?;
    f.property_u32("interrupt-parent", GIC_PHANDLE)?;

    let chosen = f.begin_node("chosen")?;
    f.property_string("bootargs", &cfg.cmdline)?;
    f.property_string("stdout-path", &format!("/pl011@{:x}", layout::UART))?;
    if let Some((start, end)) = cfg.initrd {
        f.property_u64("linux,initrd-start", start)?;
        f.property_u64("linux,initrd-end", end)?;
    }
    f.property("rng-seed", &cfg.seed)?;
    f.end_node(chosen)?;

    let memory = f.begin_node(&format!("memory@{:x}", layout::RAM_BASE))?;
    f.property_string("device_type", "memory")?;
    f.property_array_u64("reg", &[layout::RAM_BASE, cfg.ram_size])?;
    f.end_node(memory)?;

    let cpus = f.begin_node("cpus")?;
    f.property_u32("#address-cells", 1)?;
    f.property_u32("#size-cells", 0)?;
    for i in 0..cfg.cpus {
        let cpu = f.begin_node(&format!("cpu@{i:x}"))?;
        f.property_string("device_type", "cpu")?;
        f.property_string("compatible", "arm,cortex-a53")?;
        f.property_u32("reg", i as u32)?;
        f.property_string("enable-method", "psci")?;
        f.end_node(cpu)?;
    }
    f.end_node(cpus)?;

    let psci = f.begin_node("psci")?;
    f.property_string_list(
        "compatible",
        vec![
            "arm,psci-1.0".into(),
            "arm,psci-0.2".into(),
            "arm,psci".into(),
        ],
    )?;
    f.property_string("method", "hvc")?;
    f.end_node(psci)?;

    let gic = f.begin_node(&format!("intc@{:x}", layout::GIC_DIST))?;
    f.property_string("compatible", "arm,gic-v3")?;
    f.property_u32("#interrupt-cells", 3)?;
    f.property_null("interrupt-controller")?;
    f.property_u32("#redistributor-regions", 1)?;
    f.property_array_u64(
        "reg",
        &[
            layout::GIC_DIST,
            layout::GIC_DIST_SIZE,
            layout::GIC_REDIST,
            layout::GIC_REDIST_STRIDE * cfg.cpus as u64,
        ],
    )?;
    f.property_phandle(GIC_PHANDLE)?;
    f.end_node(gic)?;

    let timer = f.begin_node("timer")?;
    f.property_string("compatible", "arm,armv8-timer")?;
    let mut irqs = Vec::new();
    for intid in [
        ppi::SECURE_PHYS_TIMER,
        ppi::PHYS_TIMER,
        ppi::VIRT_TIMER,
        ppi::HYP_TIMER,
    ] {
        irqs.extend_from_slice(&[PPI_TYPE, intid - 16, LEVEL_HIGH]);
    }
    f.property_array_u32("interrupts", &irqs)?;
    f.property_null("always-on")?;
    f.end_node(timer)?;

    let clock = f.begin_node("apb-pclk")?;
    f.property_string("compatible", "fixed-clock")?;
    f.property_u32("#clock-cells", 0)?;
    f.property_u32("clock-frequency", 24_000_000)?;
    f.property_string("clock-output-names", "clk24mhz")?;
    f.property_phandle(CLOCK_PHANDLE)?;
    f.end_node(clock)?;

    let uart = f.begin_node(&format!("pl011@{:x}", layout::UART))?;
    f.property_string_list(
        "compatible",
        vec!["arm,pl011".into(), "arm,primecell".into()],
    )?;
    f.property_array_u64("reg", &[layout::UART, layout::PRIMECELL_SIZE])?;
    f.property_array_u32("interrupts", &[SPI_TYPE, spi::UART, LEVEL_HIGH])?;
    f.property_array_u32("clocks", &[CLOCK_PHANDLE, CLOCK_PHANDLE])?;
    f.property_string_list("clock-names", vec!["uartclk".into(), "apb_pclk".into()])?;
    f.end_node(uart)?;

    let rtc = f.begin_node(&format!("pl031@{:x}", layout::RTC))?;
    f.property_string_list(
        "compatible",
        vec!["arm,pl031".into(), "arm,primecell".into()],
    )?;
    f.property_array_u64("reg", &[layout::RTC, layout::PRIMECELL_SIZE])?;
    f.property_array_u32("interrupts", &[SPI_TYPE, spi::RTC, LEVEL_HIGH])?;
    f.property_array_u32("clocks", &[CLOCK_PHANDLE])?;
    f.property_string("clock-names", "apb_pclk")?;
    f.end_node(rtc)?;

    for &(base, spi_number) in &cfg.virtio {
        let node = f.begin_node(&format!("virtio_mmio@{base:x}"))?;
        f.property_string("compatible", "virtio,mmio")?;
        f.property_array_u64("reg", &[base, layout::VIRTIO_STRIDE])?;
        f.property_array_u32("interrupts", &[SPI_TYPE, spi_number, LEVEL_HIGH])?;
        f.property_null("dma-coherent")?;
        f.end_node(node)?;
    }

    f.end_node(root)?;
    f.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_has_header_and_nodes() {
        let cfg = FdtConfig {
            cpus: 2,
            ram_size: 256 << 20,
            cmdline: "console=ttyAMA0".into(),
            initrd: Some((0x4800_0000, 0x4810_0000)),
            virtio: vec![(layout::VIRTIO_BASE, spi::VIRTIO_BASE)],
            seed: [7; 64],
        };
        let blob = build(&cfg).unwrap();
        assert_eq!(&blob[..4], &[0xd0, 0x0d, 0xfe, 0xed]);
        let text = String::from_utf8_lossy(&blob);
        for needle in [
            "arm,gic-v3",
            "arm,pl011",
            "arm,pl031",
            "arm,armv8-timer",
            "console=ttyAMA0",
            "virtio,mmio",
            "cpu@1",
        ] {
            assert!(text.contains(needle), "{needle} missing");
        }
    }
}
