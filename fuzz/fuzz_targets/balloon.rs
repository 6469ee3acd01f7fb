//! virtio-balloon's queue handling under fuzzer input.
#![no_main]
use virtio::balloon::{Balloon, BalloonControl};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let control = BalloonControl::default();
    control.set_target(data.len() as u64 * 4096);
    pocketvisor_fuzz::drive(Box::new(Balloon::new(control)), data);
});
