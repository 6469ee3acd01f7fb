//! The dirty log is exact while the guest runs: after a take, the pages a
//! guest writes (through compiled and interpreted code, including a page
//! whose write permission its TLB had cached before the take) and the
//! pages written as a device writes (`GuestRam::write`) are exactly the
//! pages the next take reports. Guest: guests/baremetal/dirty/dirty.S.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmm::board_types::{GuestRam, Power};
use vmm::{DirtyLog, Vm, VmConfig};

const RAM: u64 = 0x4000_0000;
const AREA: u64 = 0x4100_0000;
const FLAG: u64 = 0x4200_0000;

/// Assembles the guest into `dir` as a raw binary.
fn build_guest(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guests/baremetal/dirty/dirty.S");
    let elf = dir.join("dirty.elf");
    let bin = dir.join("dirty.bin");
    let ok = Command::new("aarch64-linux-gnu-gcc")
        .args([
            "-nostdlib",
            "-static",
            "-Wl,-Ttext=0x40080000",
            "-Wl,--build-id=none",
            "-o",
        ])
        .arg(&elf)
        .arg(&src)
        .status()
        .expect("aarch64-linux-gnu-gcc (gcc-aarch64-linux-gnu) must be installed");
    assert!(ok.success());
    let ok = Command::new("aarch64-linux-gnu-objcopy")
        .args(["-O", "binary"])
        .arg(&elf)
        .arg(&bin)
        .status()
        .unwrap();
    assert!(ok.success());
    bin
}

fn flag(ram: &GuestRam) -> u32 {
    let mut b = [0u8; 4];
    assert!(ram.read(FLAG, &mut b));
    u32::from_le_bytes(b)
}

fn wait_flag(ram: &GuestRam, value: u32) {
    let start = Instant::now();
    while flag(ram) != value {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "guest never set the flag to {value}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn page_of(gpa: u64) -> u64 {
    (gpa - RAM) / 4096
}

#[test]
fn guest_and_device_writes_after_a_take_are_exactly_the_next_take() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = VmConfig::new(build_guest(dir.path()));
    cfg.mem = 64 << 20;
    let mut vm = Vm::new(&cfg, Box::new(std::io::sink())).expect("build the VM");
    let (ram, log, board): (Arc<GuestRam>, DirtyLog, _) = (vm.ram(), vm.dirty_log(), vm.board());
    let host = std::thread::spawn(move || {
        wait_flag(&ram, 1);
        let first = DirtyLog::pages(&log.take().unwrap());
        // Phase 1 wrote pages 0-3 and the flag (plus the loaded program).
        for p in 0..4 {
            assert!(first.contains(&page_of(AREA + p * 4096)), "{first:?}");
        }
        // A device writes one page, then releases the guest.
        assert!(ram.write(AREA + 9 * 4096 + 100, b"device data"));
        assert!(ram.write(FLAG, &2u32.to_le_bytes()));
        wait_flag(&ram, 3);
        let second = DirtyLog::pages(&log.take().unwrap());
        board.set_power(Power::Off);
        let mut want: Vec<u64> = [1, 5, 6, 9]
            .iter()
            .map(|p| page_of(AREA + p * 4096))
            .collect();
        want.push(page_of(FLAG));
        want.sort();
        (second, want)
    });
    vm.run();
    let (second, want) = host.join().expect("host thread");
    assert_eq!(second, want, "pages dirty after the take");
}
