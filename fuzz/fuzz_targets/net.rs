//! virtio-net's receive and transmit queues under fuzzer input.
#![no_main]
use virtio::net::{Inbox, Net, NetBackend, MAX_FRAME};

struct Checked;

impl NetBackend for Checked {
    fn send(&mut self, frame: &[u8]) {
        assert!(
            (14..=MAX_FRAME).contains(&frame.len()),
            "frame of {} bytes",
            frame.len()
        );
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let inbox = Inbox::default();
    for (i, chunk) in data.chunks(97).take(8).enumerate() {
        let mut frame = vec![i as u8; 14];
        frame.extend_from_slice(chunk);
        inbox.deliver(&frame);
    }
    pocketvisor_fuzz::drive(
        Box::new(Net::new([2, 0, 0, 0, 0, 1], Box::new(Checked), inbox)),
        data,
    );
});
