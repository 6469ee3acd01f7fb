//! virtio-console's queues (console, control and a named port) under fuzzer input.
#![no_main]
use virtio::console::{Console, Port, PortInput};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let ports = (0..2)
        .map(|i| {
            let input = PortInput::default();
            input.send(&data[..data.len().min(300)]);
            Port {
                name: (i > 0).then(|| "chan".to_string()),
                output: Box::new(std::io::sink()),
                input,
            }
        })
        .collect();
    pocketvisor_fuzz::drive(Box::new(Console::new(ports)), data);
});
