//! A slow disk holds up nothing but its own I/O: with every block request
//! made to take 200 ms (PV_TEST_BLK_DELAY_MS, honoured by test builds only),
//! the guest keeping the disk busy and the host typing into the virtio
//! console all the while, the guest's 50 ms ticks
//! (guests/scripts/linux/slow-disk.sh) keep coming on the console — neither
//! the vCPU nor another device's events ever wait for the disk's I/O thread.

mod common;

use std::time::{Duration, Instant};

use common::{linux_guest, Console};
use vmm::board_types::Power;
use vmm::{DiskConfig, Vm, VmConfig};

#[test]
fn a_slow_disk_does_not_hold_up_the_timer_or_the_console() {
    // The only test in this binary: the variable is read once per process.
    std::env::set_var("PV_TEST_BLK_DELAY_MS", "200");
    let guest = linux_guest();
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    std::fs::write(&disk, vec![0u8; 8 << 20]).unwrap();
    let mut cfg = VmConfig::new(guest.join("Image"));
    cfg.initrd = Some(guest.join("initramfs.cpio.gz"));
    cfg.cmdline = "console=ttyAMA0 cryptomgr.notests pv.run=slow-disk".into();
    cfg.disks = vec![DiskConfig {
        path: disk,
        read_only: false,
    }];
    cfg.vconsole = true;
    let console = Console::default();
    let mut vm = Vm::new(&cfg, Box::new(console.clone())).unwrap();
    let (board, out) = (vm.board(), console.clone());
    // Types into hvc0 every 10 ms (host events for another device) and
    // stops the VM if the script never ends.
    let typist = std::thread::spawn(move || {
        let start = Instant::now();
        while !out.text().contains("POCKETVISOR-SCRIPT-EXIT") {
            if start.elapsed() > Duration::from_secs(300) {
                board.set_power(Power::Stopped);
                return;
            }
            board.console_input(b"k");
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    vm.run();
    drop(vm);
    typist.join().unwrap();
    let text = console.text();
    assert!(text.contains("TICKS DONE"), "{text}");
    let ticks: Vec<f64> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("TICK ")?.trim().parse().ok())
        .collect();
    assert!(ticks.len() >= 100, "{text}");
    let gaps: Vec<f64> = ticks.windows(2).map(|w| w[1] - w[0]).collect();
    let worst = gaps.iter().cloned().fold(0.0, f64::max);
    let mut sorted = gaps.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    eprintln!(
        "ticks: {} gaps, median {:.3} s, worst {worst:.3} s",
        gaps.len(),
        sorted[sorted.len() / 2]
    );
    assert!(
        worst < 0.18,
        "the guest stalled for {worst:.3} s while the disk was slow (gaps: {gaps:?})"
    );
}
