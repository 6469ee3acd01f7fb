//! Times saving and restoring a running VM: boots Debian's kernel with the
//! test initramfs to its shell, then, several times, pauses it, saves its
//! `VmState` (to bytes) and RAM (a sparse image file), drops it, and builds
//! it again from the two with `Vm::restore`, checking the guest still
//! answers on its console. Prints the median times. Used by bench/snapshot.sh.
//!
//! Usage: snapshot_timing GUEST_DIR MEM_MIB ROUNDS

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmm::board_types::Power;
use vmm::{Vm, VmConfig, VmState};

// The tests' readable console.
#[path = "../tests/common/mod.rs"]
mod common;
use common::Console;

impl Console {
    fn wait_for(&self, what: &str, limit: Duration) {
        let start = Instant::now();
        while !self.text().contains(what) {
            assert!(start.elapsed() < limit, "the guest never printed {what:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Runs `vm` on a thread; returns its control, board and thread.
fn start(
    mut vm: Vm,
) -> (
    vmm::VmControl,
    Arc<vmm::board_types::Board>,
    std::thread::JoinHandle<()>,
) {
    let (control, board) = (vm.control(), vm.board());
    let thread = std::thread::spawn(move || {
        vm.run();
    });
    (control, board, thread)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let guest = PathBuf::from(args.get(1).expect("GUEST_DIR"));
    let mem: u64 = args.get(2).map_or(256, |s| s.parse().expect("MEM_MIB"));
    let rounds: usize = args.get(3).map_or(5, |s| s.parse().expect("ROUNDS"));
    let mut cfg = VmConfig::new(guest.join("Image"));
    cfg.initrd = Some(guest.join("initramfs.cpio.gz"));
    cfg.cmdline = "console=ttyAMA0 quiet cryptomgr.notests".into();
    cfg.mem = mem << 20;

    let console = Console::default();
    let vm = Vm::new(&cfg, Box::new(console.clone())).expect("build the VM");
    let (mut control, mut board, mut thread) = start(vm);
    console.wait_for("Pocketvisor guest shell", Duration::from_secs(300));
    std::thread::sleep(Duration::from_millis(500));

    let (mut save_ms, mut state_ms, mut restore_ms) = (Vec::new(), Vec::new(), Vec::new());
    let (mut state_len, mut ram_len) = (0, 0);
    for round in 0..rounds {
        // A new file each round: the restored VM maps the last one.
        let ram_file = tempfile::tempfile().expect("a temporary file");
        let t = Instant::now();
        control.pause();
        let bytes = control.save_state().expect("save").to_bytes();
        state_ms.push(t.elapsed().as_secs_f64() * 1e3);
        ram_len = control.ram().save_to(&ram_file).expect("save RAM");
        save_ms.push(t.elapsed().as_secs_f64() * 1e3);
        state_len = bytes.len();
        board.set_power(Power::Stopped);
        thread.join().expect("vCPU thread");

        let t = Instant::now();
        let state = VmState::from_bytes(&bytes).expect("read the state");
        let console = Console::default();
        let vm =
            Vm::restore(&cfg, Box::new(console.clone()), None, &state, &ram_file).expect("restore");
        restore_ms.push(t.elapsed().as_secs_f64() * 1e3);
        (control, board, thread) = start(vm);
        // The restored guest answers on its console.
        let marker = format!("round-{round}-ok");
        board.console_input(format!("echo {}\n", marker.replace('-', "_")).as_bytes());
        console.wait_for(&marker.replace('-', "_"), Duration::from_secs(30));
    }
    board.set_power(Power::Stopped);
    thread.join().expect("vCPU thread");
    println!(
        "SNAPSHOT mem_MiB={mem} state_bytes={state_len} ram_image_MiB={:.1} save_ms={:.1} state_only_ms={:.2} restore_ms={:.1} rounds={rounds}",
        ram_len as f64 / (1 << 20) as f64,
        median(&mut save_ms),
        median(&mut state_ms),
        median(&mut restore_ms),
    );
}
