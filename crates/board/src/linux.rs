//! The Linux arm64 boot protocol: parse the Image header, place the kernel,
//! initrd and device tree in guest RAM, and say where the CPU starts.
//! (Documentation/arch/arm64/booting.rst in the kernel tree.)

use crate::ram::GuestRam;

/// "ARM\x64", little endian, at offset 56 of the Image header.
const IMAGE_MAGIC: u32 = 0x644d_5241;
/// Size of the Image header.
const HEADER_SIZE: usize = 64;
/// Kernels are placed at a 2 MiB aligned base plus `text_offset`.
const KERNEL_ALIGN: u64 = 2 << 20;
/// Largest device tree the protocol allows.
pub const DTB_MAX: u64 = 2 << 20;
/// RAM the kernel needs beyond its image, initrd and device tree to get going.
const MIN_HEADROOM: u64 = 32 << 20;

/// Why a boot could not be set up. Each message is meant for the user as is.
#[derive(Debug, PartialEq, Eq)]
pub enum BootError {
    /// The kernel file is not an arm64 Linux Image.
    NotAnImage(String),
    /// Guest RAM is too small for the kernel, initrd and device tree.
    MemoryTooSmall {
        /// Bytes needed.
        needed: u64,
        /// Bytes configured.
        have: u64,
    },
    /// The initrd does not fit in guest RAM next to the kernel.
    InitrdTooLarge {
        /// Initrd size in bytes.
        size: u64,
        /// Room available for it.
        room: u64,
    },
    /// The generated device tree is larger than the protocol allows.
    DtbTooLarge(u64),
    /// The kernel file is of a kind that cannot be booted as it is.
    Unbootable(String),
    /// The Image is shorter than its own headers say.
    Truncated {
        /// Bytes in the file.
        have: u64,
        /// Bytes its headers describe.
        need: u64,
    },
}

impl std::fmt::Display for BootError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BootError::NotAnImage(why) => write!(f, "not an arm64 Linux Image: {why}"),
            BootError::MemoryTooSmall { needed, have } => write!(
                f,
                "guest memory too small: the kernel needs at least {} MiB, {} MiB configured",
                needed.div_ceil(1 << 20),
                have >> 20
            ),
            BootError::InitrdTooLarge { size, room } => write!(
                f,
                "initrd of {} MiB does not fit: {} MiB of guest memory left after the kernel",
                size.div_ceil(1 << 20),
                room >> 20
            ),
            BootError::DtbTooLarge(n) => write!(f, "device tree of {n} bytes exceeds 2 MiB"),
            BootError::Unbootable(why) => write!(f, "{why}"),
            BootError::Truncated { have, need } => write!(
                f,
                "the kernel Image is truncated: the file has {have} bytes, its header describes {need}"
            ),
        }
    }
}

impl std::error::Error for BootError {}

/// What the Image header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    /// Offset of the image from a 2 MiB aligned base.
    pub text_offset: u64,
    /// Memory the kernel occupies from its load address, BSS included.
    pub image_size: u64,
}

/// Parses and validates the header of an arm64 Image.
pub fn parse_header(image: &[u8]) -> Result<ImageHeader, BootError> {
    if image.len() < HEADER_SIZE {
        return Err(BootError::NotAnImage(format!(
            "{} bytes is too short for the 64-byte header",
            image.len()
        )));
    }
    let u64_at = |o: usize| u64::from_le_bytes(image[o..o + 8].try_into().expect("8 bytes"));
    let magic = u32::from_le_bytes(image[56..60].try_into().expect("4 bytes"));
    if magic != IMAGE_MAGIC {
        return Err(BootError::NotAnImage(
            "no \"ARM\\x64\" magic at offset 56 (a compressed vmlinuz or an ELF vmlinux will not do)"
                .into(),
        ));
    }
    let flags = u64_at(24);
    if flags & 1 != 0 {
        return Err(BootError::NotAnImage("the kernel is big-endian".into()));
    }
    let mut text_offset = u64_at(8);
    let mut image_size = u64_at(16);
    if image_size == 0 {
        // Kernels before 3.17 leave the size empty and expect 0x80000.
        text_offset = 0x80000;
        image_size = image.len() as u64;
    }
    if text_offset >= KERNEL_ALIGN * 64 || image_size < image.len() as u64 / 2 {
        return Err(BootError::NotAnImage(format!(
            "implausible header (text_offset {text_offset:#x}, image_size {image_size:#x})"
        )));
    }
    Ok(ImageHeader {
        text_offset,
        image_size: image_size.max(image.len() as u64),
    })
}

/// Where a raw (header-less) kernel binary is placed, from the start of
/// RAM, as QEMU's `-kernel` does for files that are not Images.
pub const RAW_TEXT_OFFSET: u64 = 0x80000;

/// Recognises the kernel file: an arm64 Image (header checked, and the
/// file's length against its PE/COFF section table when it has one), or a
/// raw binary to be loaded at RAM base + [`RAW_TEXT_OFFSET`] and entered
/// like an Image. Files that are recognisably something else — empty, ELF,
/// compressed — get an error naming what they are.
pub fn identify(kernel: &[u8]) -> Result<ImageHeader, BootError> {
    let starts = |magic: &[u8]| kernel.starts_with(magic);
    let unbootable = |what: &str| Err(BootError::Unbootable(what.to_string()));
    if kernel.is_empty() {
        return unbootable("the kernel file is empty");
    }
    if starts(b"\x7fELF") {
        return unbootable(
            "the kernel is an ELF file (a vmlinux): boot the raw arm64 Image (arch/arm64/boot/Image) instead",
        );
    }
    for (magic, name, tool) in [
        (&b"\x1f\x8b"[..], "gzip", "zcat"),
        (&b"\x28\xb5\x2f\xfd"[..], "zstd", "zstdcat"),
        (&b"\xfd7zXZ\x00"[..], "xz", "xzcat"),
        (&b"BZh"[..], "bzip2", "bzcat"),
        (&b"\x04\x22\x4d\x18"[..], "lz4", "lz4cat"),
        (&b"\x89LZO"[..], "lzo", "lzop -dc"),
    ] {
        if starts(magic) {
            return Err(BootError::Unbootable(format!(
                "the kernel is {name}-compressed: decompress it first ({tool} FILE > Image)"
            )));
        }
    }
    if starts(b"MZ") && kernel.get(4..8) == Some(b"zimg") {
        return unbootable(
            "the kernel is an EFI zboot (compressed) image: boot the uncompressed Image instead",
        );
    }
    if kernel.len() >= HEADER_SIZE && kernel[56..60] == IMAGE_MAGIC.to_le_bytes() {
        let header = parse_header(kernel)?;
        // Only an EFI-stub Image says how long its file is (its PE section
        // table); the header's image_size counts the BSS too, which may be
        // most of a small bare-metal image.
        let need = pe_file_size(kernel).unwrap_or(0);
        if (kernel.len() as u64) < need {
            return Err(BootError::Truncated {
                have: kernel.len() as u64,
                need,
            });
        }
        return Ok(header);
    }
    Ok(ImageHeader {
        text_offset: RAW_TEXT_OFFSET,
        image_size: kernel.len() as u64,
    })
}

/// The file size an EFI-stub Image's PE/COFF header describes: the end of
/// its last section's raw data. `None` without a (sane) PE header.
fn pe_file_size(image: &[u8]) -> Option<u64> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(image.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(image.get(o..o + 4)?.try_into().ok()?));
    if image.get(0..2)? != b"MZ" {
        return None;
    }
    let pe = u32_at(0x3c)? as usize;
    if image.get(pe..pe + 4)? != b"PE\0\0" {
        return None;
    }
    let sections = u16_at(pe + 6)? as usize;
    let optional = u16_at(pe + 20)? as usize;
    let table = pe + 24 + optional;
    let mut end = 0u64;
    for i in 0..sections.min(96) {
        let s = table + 40 * i;
        let raw_size = u32_at(s + 16)? as u64;
        let raw_ptr = u32_at(s + 20)? as u64;
        end = end.max(raw_ptr + raw_size);
    }
    (end > 0).then_some(end)
}

/// Where everything went in guest RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootLayout {
    /// Entry point: the first byte of the kernel image.
    pub entry: u64,
    /// Guest physical address of the device tree (x0 at entry).
    pub dtb: u64,
    /// Initrd range, if any: (start, end).
    pub initrd: Option<(u64, u64)>,
}

/// Plans the layout: kernel at the start of RAM, device tree in the last
/// 2 MiB, initrd right below the device tree (page aligned).
pub fn plan(
    header: &ImageHeader,
    ram_base: u64,
    ram_size: u64,
    initrd_size: Option<u64>,
) -> Result<BootLayout, BootError> {
    let entry = ram_base.next_multiple_of(KERNEL_ALIGN) + header.text_offset;
    let kernel_end = entry + header.image_size;
    let ram_end = ram_base + ram_size;
    let needed = (kernel_end - ram_base) + DTB_MAX + MIN_HEADROOM + initrd_size.unwrap_or(0);
    let dtb = (ram_end - DTB_MAX) & !(KERNEL_ALIGN - 1);
    if ram_size < needed - initrd_size.unwrap_or(0) || dtb < kernel_end {
        return Err(BootError::MemoryTooSmall {
            needed: needed - initrd_size.unwrap_or(0),
            have: ram_size,
        });
    }
    let initrd = match initrd_size {
        None => None,
        Some(size) => {
            let room = dtb.saturating_sub(kernel_end + MIN_HEADROOM);
            if size > room {
                return Err(BootError::InitrdTooLarge { size, room });
            }
            let start = (dtb - size) & !0xfff;
            Some((start, start + size))
        }
    };
    Ok(BootLayout { entry, dtb, initrd })
}

/// Copies the kernel and initrd into RAM according to `layout`.
pub fn load(ram: &GuestRam, layout: &BootLayout, kernel: &[u8], initrd: Option<&[u8]>) {
    assert!(ram.write(layout.entry, kernel), "kernel placed inside RAM");
    if let (Some((start, _)), Some(data)) = (layout.initrd, initrd) {
        assert!(ram.write(start, data), "initrd placed inside RAM");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text_offset: u64, image_size: u64, len: usize) -> Vec<u8> {
        let mut h = vec![0u8; len.max(HEADER_SIZE)];
        h[8..16].copy_from_slice(&text_offset.to_le_bytes());
        h[16..24].copy_from_slice(&image_size.to_le_bytes());
        h[56..60].copy_from_slice(&IMAGE_MAGIC.to_le_bytes());
        h
    }

    #[test]
    fn rejects_non_images() {
        assert!(matches!(
            parse_header(b"short"),
            Err(BootError::NotAnImage(_))
        ));
        let mut elf = header(0, 1 << 20, 4096);
        elf[56] = 0x7f;
        assert!(matches!(parse_header(&elf), Err(BootError::NotAnImage(_))));
        let mut be = header(0, 1 << 20, 4096);
        be[24] = 1;
        assert!(matches!(parse_header(&be), Err(BootError::NotAnImage(_))));
    }

    #[test]
    fn plans_kernel_initrd_and_dtb() {
        let h = parse_header(&header(0, 30 << 20, 4096)).unwrap();
        let l = plan(&h, 0x4000_0000, 256 << 20, Some(10 << 20)).unwrap();
        assert_eq!(l.entry, 0x4000_0000);
        assert_eq!(l.dtb, 0x4000_0000 + (254 << 20));
        let (s, e) = l.initrd.unwrap();
        assert_eq!(e - s, 10 << 20);
        assert!(e <= l.dtb && s >= l.entry + (30 << 20));
        assert!(matches!(
            plan(&h, 0x4000_0000, 32 << 20, None),
            Err(BootError::MemoryTooSmall { .. })
        ));
        assert!(matches!(
            plan(&h, 0x4000_0000, 128 << 20, Some(100 << 20)),
            Err(BootError::InitrdTooLarge { .. })
        ));
    }

    #[test]
    fn identifies_what_it_cannot_boot() {
        let msg = |k: &[u8]| identify(k).unwrap_err().to_string();
        assert_eq!(msg(b""), "the kernel file is empty");
        assert!(msg(b"\x7fELF\x02\x01\x01").contains("ELF"));
        assert!(msg(b"\x1f\x8b\x08\x00rest").contains("gzip-compressed"));
        assert!(msg(b"\x28\xb5\x2f\xfdrest").contains("zstd-compressed"));
        assert!(msg(b"MZ\0\0zimg....").contains("zboot"));
    }

    #[test]
    fn raw_binaries_load_at_0x80000() {
        let raw = vec![0x14u8; 1000];
        let h = identify(&raw).unwrap();
        assert_eq!(h.text_offset, RAW_TEXT_OFFSET);
        assert_eq!(h.image_size, 1000);
        let l = plan(&h, 0x4000_0000, 128 << 20, None).unwrap();
        assert_eq!(l.entry, 0x4008_0000);
    }

    #[test]
    fn truncated_images() {
        // Without a PE header the length cannot be checked: BSS may be most
        // of the image.
        let img = header(0, 1 << 20, 64 << 10);
        assert!(identify(&img).is_ok());
        // With a PE header: exactly the end of the last section.
        let mut pe = header(0, 1 << 20, 64 << 10);
        pe[0..2].copy_from_slice(b"MZ");
        pe[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        pe[0x40..0x44].copy_from_slice(b"PE\0\0");
        pe[0x46..0x48].copy_from_slice(&1u16.to_le_bytes()); // one section
        pe[0x54..0x56].copy_from_slice(&0u16.to_le_bytes()); // no optional header
        let sec = 0x40 + 24;
        pe[sec + 16..sec + 20].copy_from_slice(&(60u32 << 10).to_le_bytes());
        pe[sec + 20..sec + 24].copy_from_slice(&(4u32 << 10).to_le_bytes());
        assert!(identify(&pe).is_ok());
        let e = identify(&pe[..(64 << 10) - 1]).unwrap_err();
        assert_eq!(
            e,
            BootError::Truncated {
                have: (64 << 10) - 1,
                need: 64 << 10
            }
        );
        assert!(e.to_string().contains("truncated"));
    }

    #[test]
    fn old_kernels_default_text_offset() {
        let h = parse_header(&header(0, 0, 8192)).unwrap();
        assert_eq!(h.text_offset, 0x80000);
    }
}
