//! Loading a static aarch64 ELF executable and building its initial stack
//! the way Linux does (argc, argv, envp, auxiliary vector).

use crate::space::*;

const EM_AARCH64: u16 = 183;
const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;

/// Auxiliary vector keys.
const AT_NULL: u64 = 0;
const AT_PHDR: u64 = 3;
const AT_PHENT: u64 = 4;
const AT_PHNUM: u64 = 5;
const AT_PAGESZ: u64 = 6;
const AT_BASE: u64 = 7;
const AT_FLAGS: u64 = 8;
const AT_ENTRY: u64 = 9;
const AT_UID: u64 = 11;
const AT_EUID: u64 = 12;
const AT_GID: u64 = 13;
const AT_EGID: u64 = 14;
const AT_PLATFORM: u64 = 15;
const AT_HWCAP: u64 = 16;
const AT_CLKTCK: u64 = 17;
const AT_SECURE: u64 = 23;
const AT_RANDOM: u64 = 25;
const AT_HWCAP2: u64 = 26;
const AT_EXECFN: u64 = 31;

/// HWCAP bits for what the CPU implements: FP, ASIMD, CRC32, ATOMICS (LSE) and CPUID
/// (EL0 may read the ID registers).
pub const HWCAP: u64 = 1 << 0 | 1 << 1 | 1 << 7 | 1 << 8 | 1 << 11;

/// A validated executable image, ready to be mapped.
pub struct Image {
    bytes: Vec<u8>,
    is_pie: bool,
    entry: u64,
    phoff: u64,
    phnum: u64,
    phentsize: u64,
}

struct Segment {
    vaddr: u64,
    memsz: u64,
    offset: u64,
    filesz: u64,
    flags: u32,
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

/// Why an image cannot be run; `errno` is what execve returns for it.
#[derive(Debug)]
pub struct LoadError {
    /// The errno for execve.
    pub errno: i32,
    /// A sentence for the user.
    pub message: String,
}

fn noexec(message: impl Into<String>) -> LoadError {
    LoadError {
        errno: libc::ENOEXEC,
        message: message.into(),
    }
}

impl Image {
    /// Validates `bytes` as a static little-endian aarch64 ELF executable.
    pub fn parse(bytes: Vec<u8>) -> Result<Image, LoadError> {
        if bytes.len() < 64 || &bytes[0..4] != b"\x7fELF" {
            return Err(noexec("not an ELF file"));
        }
        if bytes[4] != 2 || bytes[5] != 1 {
            return Err(noexec("not a 64-bit little-endian ELF file"));
        }
        if u16_at(&bytes, 18) != EM_AARCH64 {
            return Err(noexec("not an aarch64 executable"));
        }
        let kind = u16_at(&bytes, 16);
        if kind != 2 && kind != 3 {
            return Err(noexec("not an executable (ET_EXEC or ET_DYN)"));
        }
        let img = Image {
            is_pie: kind == 3,
            entry: u64_at(&bytes, 24),
            phoff: u64_at(&bytes, 32),
            phentsize: u16_at(&bytes, 54) as u64,
            phnum: u16_at(&bytes, 56) as u64,
            bytes,
        };
        if img.phentsize < 56
            || img.phoff.saturating_add(img.phnum * img.phentsize) > img.bytes.len() as u64
        {
            return Err(noexec("corrupt program headers"));
        }
        let mut loads = 0;
        for i in 0..img.phnum {
            let o = (img.phoff + i * img.phentsize) as usize;
            match u32_at(&img.bytes, o) {
                PT_INTERP => {
                    return Err(noexec(
                        "dynamically linked executables are not supported (only static ones)",
                    ))
                }
                PT_LOAD => {
                    let s = img.segment(o);
                    if s.offset.saturating_add(s.filesz) > img.bytes.len() as u64
                        || s.filesz > s.memsz
                    {
                        return Err(noexec("a segment lies outside the file"));
                    }
                    if s.vaddr.saturating_add(s.memsz) >= MMAP_TOP / 2 {
                        return Err(noexec("a segment lies outside the supported address range"));
                    }
                    loads += 1;
                }
                _ => {}
            }
        }
        if loads == 0 {
            return Err(noexec("no loadable segments"));
        }
        Ok(img)
    }

    fn segment(&self, o: usize) -> Segment {
        let b = &self.bytes;
        Segment {
            flags: u32_at(b, o + 4),
            offset: u64_at(b, o + 8),
            vaddr: u64_at(b, o + 16),
            filesz: u64_at(b, o + 32),
            memsz: u64_at(b, o + 40),
        }
    }

    fn segments(&self, kind: u32) -> impl Iterator<Item = Segment> + '_ {
        (0..self.phnum)
            .map(|i| (self.phoff + i * self.phentsize) as usize)
            .filter(move |o| u32_at(&self.bytes, *o) == kind)
            .map(|o| self.segment(o))
    }
}

/// Where a loaded program starts.
pub struct Started {
    /// Entry point.
    pub entry: u64,
    /// Initial stack pointer.
    pub sp: u64,
}

fn elf_prot(flags: u32) -> u32 {
    (if flags & 4 != 0 { PROT_READ } else { 0 })
        | (if flags & 2 != 0 { PROT_WRITE } else { 0 })
        | (if flags & 1 != 0 { PROT_EXEC } else { 0 })
}

/// Maps `img` into the (empty) `space` and builds the initial stack.
pub fn load(
    space: &mut Space,
    img: &Image,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    execfn: &[u8],
) -> Result<Started, String> {
    let bias = if img.is_pie { PIE_BASE } else { 0 };
    let mut end = 0;
    let segs: Vec<Segment> = img.segments(PT_LOAD).collect();
    for s in &segs {
        let start = (s.vaddr + bias) & !a64::PAGE_MASK;
        let stop = page_up(s.vaddr + bias + s.memsz);
        // Map only pages no earlier segment has mapped.
        let mut p = start;
        while p < stop {
            if !space.overlaps(p, a64::PAGE_SIZE) {
                space
                    .map(p, a64::PAGE_SIZE, PROT_READ | PROT_WRITE, None)
                    .map_err(|e| format!("mapping a segment failed (errno {e})"))?;
            }
            p += a64::PAGE_SIZE;
        }
        let data = &img.bytes[s.offset as usize..(s.offset + s.filesz) as usize];
        let dst = space
            .bytes(s.vaddr + bias, data.len(), PROT_READ)
            .ok_or("segment not mapped")?;
        dst.copy_from_slice(data);
        end = end.max(stop);
    }
    for s in &segs {
        let start = (s.vaddr + bias) & !a64::PAGE_MASK;
        let stop = page_up(s.vaddr + bias + s.memsz);
        space
            .protect(start, stop - start, elf_prot(s.flags))
            .map_err(|e| format!("protecting a segment failed (errno {e})"))?;
    }
    space.set_brk(end, end);

    let phdr = img
        .segments(PT_PHDR)
        .next()
        .map(|s| s.vaddr + bias)
        .or_else(|| {
            segs.iter()
                .find(|s| s.offset <= img.phoff && img.phoff < s.offset + s.filesz)
                .map(|s| s.vaddr + bias + img.phoff - s.offset)
        })
        .unwrap_or(0);

    space
        .map(
            STACK_TOP - STACK_SIZE,
            STACK_SIZE,
            PROT_READ | PROT_WRITE,
            None,
        )
        .map_err(|e| format!("mapping the stack failed (errno {e})"))?;
    let mut sp = STACK_TOP;
    let mut push_bytes = |space: &mut Space, data: &[u8]| -> u64 {
        sp -= data.len() as u64;
        space
            .bytes(sp, data.len(), PROT_WRITE)
            .expect("stack mapped")
            .copy_from_slice(data);
        sp
    };
    let with_nul = |s: &[u8]| {
        let mut v = s.to_vec();
        v.push(0);
        v
    };
    let execfn_addr = push_bytes(space, &with_nul(execfn));
    let mut arg_ptrs = Vec::new();
    for a in argv {
        arg_ptrs.push(push_bytes(space, &with_nul(a)));
    }
    let mut env_ptrs = Vec::new();
    for e in envp {
        env_ptrs.push(push_bytes(space, &with_nul(e)));
    }
    let platform = push_bytes(space, b"aarch64\0");
    let mut random = [0u8; 16];
    // SAFETY: getrandom writes at most the buffer's length.
    unsafe { libc::getrandom(random.as_mut_ptr() as *mut _, 16, 0) };
    let random_addr = push_bytes(space, &random);

    // SAFETY: these calls only read process credentials.
    let (uid, euid, gid, egid) = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    };
    let auxv: Vec<(u64, u64)> = vec![
        (AT_PHDR, phdr),
        (AT_PHENT, img.phentsize),
        (AT_PHNUM, img.phnum),
        (AT_PAGESZ, a64::PAGE_SIZE),
        (AT_BASE, 0),
        (AT_FLAGS, 0),
        (AT_ENTRY, img.entry + bias),
        (AT_UID, uid as u64),
        (AT_EUID, euid as u64),
        (AT_GID, gid as u64),
        (AT_EGID, egid as u64),
        (AT_PLATFORM, platform),
        (AT_HWCAP, HWCAP),
        (AT_HWCAP2, 0),
        (AT_CLKTCK, 100),
        (AT_SECURE, 0),
        (AT_RANDOM, random_addr),
        (AT_EXECFN, execfn_addr),
        (AT_NULL, 0),
    ];
    let mut words: Vec<u64> = vec![argv.len() as u64];
    words.extend(&arg_ptrs);
    words.push(0);
    words.extend(&env_ptrs);
    words.push(0);
    for (k, v) in auxv {
        words.push(k);
        words.push(v);
    }
    let table_bytes = words.len() as u64 * 8;
    sp = (sp - table_bytes) & !15;
    let dst = space
        .bytes(sp, table_bytes as usize, PROT_WRITE)
        .ok_or("stack overflow while building argv")?;
    for (i, w) in words.iter().enumerate() {
        dst[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    Ok(Started {
        entry: img.entry + bias,
        sp,
    })
}
