//! Differential testing of Pocketvisor's AArch64 CPU against qemu-aarch64.
//!
//! A small static aarch64 harness (`harness/`) runs under qemu-aarch64 and
//! executes test cases one instruction at a time; the same cases run on
//! [`a64::Cpu`]; every general register, SP, PC, NZCV, vector register, FPSR,
//! FPCR, TPIDR_EL0, the signal that ended the case and the scratch memory are
//! compared. See [`gen`] for how cases are made.

pub mod gen;
pub mod ours;
pub mod protocol;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use protocol::*;

/// QEMU's CPU model: ARMv8.2 with LSE but without LSE2's relaxed alignment,
/// the closest to our ARMv8.0 + LSE + CRC32 core.
pub const QEMU_CPU: &str = "cortex-a76";

/// FPCR bits compared: the ARMv8.0 AArch64 ones (AHP, DN, FZ, RMode). QEMU's model
/// also keeps FZ16 and the AArch32 Len/Stride fields, which are RES0 on our core.
const FPCR_COMPARED: u64 = 0x07c0_0000;

/// FPSR bits compared: the AArch64 ones (IOC, DZC, OFC, UFC, IXC, IDC, QC). QEMU also
/// keeps the AArch32 NZCV copy in bits 31:28.
const FPSR_COMPARED: u64 = 0x0800_009f;

/// Builds the harness (once per source version) and returns its path.
pub fn harness() -> Result<PathBuf, String> {
    const C: &str = include_str!("../harness/harness.c");
    const S: &str = include_str!("../harness/trampoline.S");
    let hash = protocol::hash_scratch(format!("{C}{S}").as_bytes());
    build_harness_in(&std::env::temp_dir().join(format!("pocketvisor-difftest-{hash:016x}")))
}

/// Builds the harness into `dir` unless it is there; returns its path.
fn build_harness_in(dir: &std::path::Path) -> Result<PathBuf, String> {
    const C: &str = include_str!("../harness/harness.c");
    const S: &str = include_str!("../harness/trampoline.S");
    let exe = dir.join("harness");
    if exe.exists() {
        return Ok(exe);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    // Everything unique per build — sources, object, result — since tests
    // (in one process or several) may build it at once on a cold cache:
    // each builds in a directory of its own and renames its result into
    // place (a rename is atomic; the last one wins, all are the same).
    let build = unique_dir(dir, "build")?;
    let result = (|| {
        std::fs::write(build.join("harness.c"), C).map_err(|e| e.to_string())?;
        std::fs::write(build.join("trampoline.S"), S).map_err(|e| e.to_string())?;
        let out = build.join("harness");
        let status = Command::new("aarch64-linux-gnu-gcc")
            .args(["-static", "-O2", "-fno-stack-protector", "-o"])
            .arg(&out)
            .arg(build.join("harness.c"))
            .arg(build.join("trampoline.S"))
            .status()
            .map_err(|e| format!("cannot run aarch64-linux-gnu-gcc (install gcc-aarch64-linux-gnu and libc6-dev-arm64-cross): {e}"))?;
        if !status.success() {
            return Err("aarch64-linux-gnu-gcc failed to build the difftest harness".into());
        }
        std::fs::rename(&out, &exe).map_err(|e| e.to_string())
    })();
    let _ = std::fs::remove_dir_all(&build);
    result.map(|()| exe)
}

/// A new directory under `parent` no other thread or process uses.
fn unique_dir(parent: &std::path::Path, prefix: &str) -> Result<PathBuf, String> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = parent.join(format!("{prefix}-{}-{n}", std::process::id()));
    std::fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Runs `cases` under qemu-aarch64; returns the harness's code page image and the outcomes.
pub fn run_qemu(cases: &[Case]) -> Result<(Vec<u8>, Vec<Outcome>), String> {
    let exe = harness()?;
    let mut child = Command::new("qemu-aarch64")
        .args(["-cpu", QEMU_CPU])
        .arg(&exe)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run qemu-aarch64 (install qemu-user): {e}"))?;
    let mut input = Vec::with_capacity(cases.len() * (REGS_BYTES + 16));
    for c in cases {
        c.to_bytes(&mut input);
    }
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut output = Vec::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_end(&mut output)
        .map_err(|e| e.to_string())?;
    let status = child.wait().map_err(|e| e.to_string())?;
    let _ = writer.join();
    let expected = CODE_PAGE + cases.len() * OUTCOME_BYTES;
    if output.len() != expected {
        return Err(format!(
            "harness under qemu-aarch64 ended ({status}) after {} of {expected} bytes",
            output.len()
        ));
    }
    let image = output[..CODE_PAGE].to_vec();
    let outcomes = output[CODE_PAGE..]
        .chunks_exact(OUTCOME_BYTES)
        .map(Outcome::from_bytes)
        .collect();
    Ok((image, outcomes))
}

/// The disassembly of one instruction, from binutils' objdump if available.
pub fn disassemble(insn: u32) -> String {
    let Ok(dir) = unique_dir(&std::env::temp_dir(), "pocketvisor-dis") else {
        return "?".into();
    };
    let path = dir.join(format!("{insn:08x}.bin"));
    if std::fs::write(&path, insn.to_le_bytes()).is_err() {
        let _ = std::fs::remove_dir_all(&dir);
        return "?".into();
    }
    let out = Command::new("aarch64-linux-gnu-objdump")
        .args(["-D", "-b", "binary", "-m", "aarch64"])
        .arg(&path)
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| l.trim_start().starts_with("0:"))
                .map(|l| l.split('\t').skip(2).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "?".into())
}

/// Lists the fields in which two outcomes differ (`insn` is the instruction under test).
pub fn differences(insn: u32, ours: &Outcome, qemu: &Outcome) -> Vec<String> {
    fn field(d: &mut Vec<String>, name: &str, a: String, b: String) {
        if a != b {
            d.push(format!("{name}: ours {a} qemu {b}"));
        }
    }
    let mut d = Vec::new();
    field(&mut d, "signal", ours.sig.to_string(), qemu.sig.to_string());
    field(
        &mut d,
        "pc",
        format!("{:#x}", ours.pc),
        format!("{:#x}", qemu.pc),
    );
    let faulted = matches!(qemu.sig, ours::SIGSEGV | ours::SIGBUS);
    if faulted {
        // DC ZVA may report any address of its 64-byte block (QEMU's is an artefact of
        // its host memset, and 0 for addresses outside the guest's address space).
        let zva = insn & 0xffff_ffe0 == 0xd50b_7420;
        let same = ours.fault_addr == qemu.fault_addr
            || (zva && (qemu.fault_addr == 0 || ours.fault_addr & !63 == qemu.fault_addr & !63));
        if !same {
            field(
                &mut d,
                "fault address",
                format!("{:#x}", ours.fault_addr),
                format!("{:#x}", qemu.fault_addr),
            );
        }
    }
    // After a data abort both sides agree on, destination SIMD&FP registers and the
    // memory touched by a partially performed access are architecturally UNKNOWN
    // (QEMU loads SIMD&FP pairs straight into the registers and splits 16-byte
    // stores), so only the general registers and flags are compared then.
    let same_fault = faulted && d.is_empty();
    let (a, b) = (&ours.regs, &qemu.regs);
    for i in 0..31 {
        field(
            &mut d,
            &format!("x{i}"),
            format!("{:#x}", a.x[i]),
            format!("{:#x}", b.x[i]),
        );
    }
    field(&mut d, "sp", format!("{:#x}", a.sp), format!("{:#x}", b.sp));
    field(
        &mut d,
        "nzcv",
        format!("{:#x}", a.nzcv),
        format!("{:#x}", b.nzcv),
    );
    field(
        &mut d,
        "fpcr",
        format!("{:#x}", a.fpcr & FPCR_COMPARED),
        format!("{:#x}", b.fpcr & FPCR_COMPARED),
    );
    field(
        &mut d,
        "fpsr",
        format!("{:#x}", a.fpsr & FPSR_COMPARED),
        format!("{:#x}", b.fpsr & FPSR_COMPARED),
    );
    field(
        &mut d,
        "tpidr_el0",
        format!("{:#x}", a.tpidr),
        format!("{:#x}", b.tpidr),
    );
    if same_fault {
        return d;
    }
    for i in 0..32 {
        field(
            &mut d,
            &format!("v{i}"),
            format!("{:#034x}", a.v[i]),
            format!("{:#034x}", b.v[i]),
        );
    }
    field(
        &mut d,
        "memory hash",
        format!("{:#x}", ours.mem_hash),
        format!("{:#x}", qemu.mem_hash),
    );
    d
}

/// Result of a differential run of one class.
#[derive(Debug, Default)]
pub struct ClassReport {
    /// Cases run.
    pub cases: usize,
    /// Cases whose outcome differed.
    pub mismatches: usize,
    /// Cases in which QEMU executed the instruction to completion (no signal from it).
    pub completed: usize,
    /// Mismatch count by the objdump mnemonic of the instruction.
    pub by_mnemonic: BTreeMap<String, usize>,
    /// Printable details of the first mismatches.
    pub details: Vec<String>,
}

/// Runs `count` random cases of `class` with `seed`, keeping details of up to `max_details` mismatches.
pub fn run_class(
    class: &str,
    count: usize,
    seed: u64,
    max_details: usize,
) -> Result<ClassReport, String> {
    let templates = gen::CLASSES
        .iter()
        .find(|(name, _)| *name == class)
        .map(|(_, t)| *t)
        .ok_or_else(|| format!("unknown class {class:?}"))?;
    let mut rng = gen::Rng::new(seed ^ protocol::hash_scratch(class.as_bytes()));
    let cases: Vec<Case> = (0..count)
        .map(|_| {
            let t = &templates[rng.below(templates.len() as u64) as usize];
            gen::make_case(t, &mut rng)
        })
        .collect();
    let (image, qemu) = run_qemu(&cases)?;
    let mut side = ours::OurSide::new(&image);
    let mut report = ClassReport {
        cases: cases.len(),
        ..Default::default()
    };
    for (case, q) in cases.iter().zip(&qemu) {
        let o = side.run(case);
        if q.sig == ours::SIGTRAP && q.pc != CODE_ADDR + INSN_OFF {
            report.completed += 1;
        }
        let diff = differences(case.insn, &o, q);
        if diff.is_empty() {
            continue;
        }
        report.mismatches += 1;
        let dis = disassemble(case.insn);
        let mnemonic = dis.split_whitespace().next().unwrap_or("?").to_string();
        *report.by_mnemonic.entry(mnemonic).or_default() += 1;
        if report.details.len() < max_details {
            let mut text = format!("{:08x}  {dis}", case.insn);
            if case.insn2 != BRK_FILL {
                text.push_str(&format!(
                    "  ; then {:08x} {}",
                    case.insn2,
                    disassemble(case.insn2)
                ));
            }
            let name = a64::decode(case.insn)
                .map(|e| e.name)
                .unwrap_or("(not decoded)");
            text.push_str(&format!("\n    decoded by us as: {name}"));
            for line in diff {
                text.push_str(&format!("\n    {line}"));
            }
            report.details.push(text);
        }
    }
    Ok(report)
}

/// Names of every class with templates.
pub fn classes() -> Vec<&'static str> {
    gen::CLASSES.iter().map(|(n, _)| *n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_harness_builds_when_many_build_it_at_once() {
        // A cold cache and several tests asking for the harness together.
        let dir =
            std::env::temp_dir().join(format!("pocketvisor-difftest-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let builds: Vec<_> = (0..4)
            .map(|_| {
                let dir = dir.clone();
                std::thread::spawn(move || build_harness_in(&dir))
            })
            .collect();
        for b in builds {
            let exe = b.join().unwrap().unwrap();
            assert!(exe.is_file());
        }
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("harness")],
            "no build left behind"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
