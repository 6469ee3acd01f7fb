//! virtio-blk's queue handling under fuzzer input (a small scratch disk).
#![no_main]
use virtio::blk::Block;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static DISK: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let disk = DISK.get_or_init(|| {
        let p = std::env::temp_dir().join(format!("pv-fuzz-blk-{}", std::process::id()));
        std::fs::write(&p, vec![0u8; 64 << 10]).expect("scratch disk");
        p
    });
    let read_only = data.first().is_some_and(|b| b & 1 == 1);
    let blk = Block::open(disk, read_only).expect("open scratch disk");
    pocketvisor_fuzz::drive(Box::new(blk), data);
});
