//! Guest-to-guest vsock under the phone's channel policy: the listed
//! channel (personal → keys port 5000) carries 1 MiB both ways, every byte
//! checked; a port not listed, a VM pair not listed and the reverse
//! direction are refused with a reset and logged in phone.log; the
//! receiving guest sees the connection coming from the sender's CID.

mod common;

use std::time::Duration;

use common::phone::{TestPhone, VmSpec};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn only_listed_channels_connect() {
    let vms = [
        VmSpec::new("personal", "open"),
        VmSpec::new("work", "corporate"),
        // Debuggable: the test types into its shell.
        VmSpec::new("keys", "trusted").with("debug = true"),
    ];
    let channels = "[[channel]]\nfrom = \"personal\"\nto = \"keys\"\nport = 5000\n";
    let p = TestPhone::up("memory = \"512M\"\nbackground_cpu = 100", &vms, channels);

    // keys echoes on 5000 and 5001, personal listens on 5000 too.
    p.run_in(
        "keys",
        "vsock-tool echo 5000 & vsock-tool echo 5001 &",
        LIMIT,
    );
    p.run_in("work", "vsock-tool echo 5000 &", LIMIT);
    p.run_in("personal", "vsock-tool echo 5000 &", LIMIT);
    std::thread::sleep(Duration::from_millis(500));

    // Allowed: 1 MiB out and back, every byte compared.
    p.run_in("personal", "vsock-tool ping 5 5000 1048576", LIMIT);
    let log = p.console_log("personal");
    assert!(
        log.contains("VSOCK-PING ok 1048576/1048576 bytes back, 0 wrong"),
        "{log}"
    );

    // A port not listed, a pair not listed, and the reverse direction.
    p.run_in("personal", "vsock-tool ping 5 5001 16", LIMIT);
    p.run_in("personal", "vsock-tool ping 4 5000 16", LIMIT);
    p.run_in("keys", "vsock-tool ping 3 5000 16", LIMIT);
    p.run_in("work", "vsock-tool ping 5 5000 16", LIMIT);
    let refused = |vm: &str| {
        p.console_log(vm)
            .matches("Connection reset by peer")
            .count()
    };
    assert_eq!(refused("personal"), 2, "{}", p.console_log("personal"));
    assert_eq!(refused("keys"), 1, "{}", p.console_log("keys"));
    assert_eq!(refused("work"), 1, "{}", p.console_log("work"));
    // A guest cannot reach itself or a CID nobody has.
    p.run_in("personal", "vsock-tool ping 99 5000 16", LIMIT);
    assert_eq!(refused("personal"), 3);

    let log = p.phone_log();
    assert_eq!(log.matches("channel: personal port").count(), 1, "{log}");
    for line in [
        "no [[channel]] from personal to keys port 5001",
        "no [[channel]] from personal to work port 5000",
        "no [[channel]] from keys to personal port 5000",
        "no [[channel]] from work to keys port 5000",
        "-> cid 99 port 5000: no VM has that CID",
    ] {
        assert!(log.contains(line), "phone.log lacks {line:?}:\n{log}");
    }
    // A host program listening on the VM's host port P gets the guest's
    // stream, through the supervisor (the worker itself cannot connect).
    let listener =
        std::os::unix::net::UnixListener::bind(p.state.join("vms/work/vsock.sock_6000")).unwrap();
    let echo = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let mut total = 0;
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).unwrap();
            total += n;
        }
        total
    });
    p.run_in("work", "vsock-tool ping 2 6000 65536", LIMIT);
    assert!(
        p.console_log("work")
            .contains("VSOCK-PING ok 65536/65536 bytes back, 0 wrong"),
        "{}",
        p.console_log("work")
    );
    assert_eq!(echo.join().unwrap(), 65536);
    // Everything still runs.
    for v in p.status()["vms"].as_array().unwrap() {
        assert_eq!(v["state"], "running", "{v}");
    }
}
