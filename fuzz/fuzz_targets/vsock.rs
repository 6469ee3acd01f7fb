//! virtio-vsock's queues and stream protocol under fuzzer input.
#![no_main]
use virtio::vsock::Vsock;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let uds = std::env::temp_dir().join(format!("pv-fuzz-vsock-{}", std::process::id()));
    let vsock = Vsock::new(3, &uds, std::sync::Arc::new(|| {})).expect("vsock socket");
    pocketvisor_fuzz::drive(Box::new(vsock), data);
});
