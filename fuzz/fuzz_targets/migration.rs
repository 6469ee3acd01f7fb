//! A migration target's reading of the stream under fuzzer input: the
//! bytes cut into messages (a two-byte length before each, as the link
//! frames them) fed to the stream checker after a valid hello. It must
//! refuse or accept, never panic, and every page it lets through must lie
//! inside the guest's RAM.
#![no_main]
use image::migration::frame::{control, Control, Event, Receiver, FORMAT, PAGE};

const MEM: u64 = 64 * PAGE as u64;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut r = Receiver::new();
    let hello = control(&Control::Hello {
        format: FORMAT,
        vm: "fuzz".into(),
        entry: String::new(),
        mem: MEM,
        disks: vec![image::migration::DiskInfo {
            path: "d".into(),
            size: 1 << 16,
            read_only: false,
        }],
        copy_disks: true,
    });
    // Half the inputs start with the fuzzer's own hello.
    if data.first().is_some_and(|b| b & 1 == 0) && r.accept(&hello).is_err() {
        unreachable!("a valid hello is accepted");
    }
    let mut rest = data.get(1..).unwrap_or(&[]);
    while rest.len() >= 2 {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        let Some(message) = rest.get(2..2 + len) else {
            return;
        };
        rest = &rest[2 + len..];
        match r.accept(message) {
            Ok(Event::Pages(pages)) => {
                for (n, bytes) in pages {
                    assert!(u64::from(n) * (PAGE as u64) < MEM);
                    assert_eq!(bytes.len(), PAGE);
                }
            }
            Ok(Event::Disk { offset, data, .. }) => assert!(offset + data.len() as u64 <= 1 << 16),
            Ok(Event::End(_)) | Ok(Event::Failed(_)) | Err(_) => return,
            Ok(_) => {}
        }
    }
});
