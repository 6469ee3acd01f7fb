//! virtio-rng's queue handling under fuzzer input.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pocketvisor_fuzz::drive(Box::new(virtio::rng::Rng), data);
});
