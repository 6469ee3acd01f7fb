//! The open VM floods the trusted VM's billing port with 10,000
//! connections, each sending garbage, while the corporate VM goes on
//! charging: every charge is served, the phone refuses the flood beyond its
//! per-VM connection rate (logged), the trusted VM neither crashes nor
//! restarts. Then the open VM is killed outright: the trusted VM still
//! serves, and the open VM, restarted, is served again.

mod common;

use std::time::Duration;

use common::phone::{wait, TestPhone, VmSpec};
use common::trusted::{pv_trust, service_channels};

#[test]
fn a_flood_from_the_open_vm_does_not_stop_the_services() {
    let vms = [
        VmSpec::new("personal", "open").with("restart = \"on-crash\""),
        VmSpec::new("work", "corporate"),
        VmSpec::trusted_services("keys"),
    ];
    let channels = service_channels("personal", "keys") + &service_channels("work", "keys");
    let p = TestPhone::up("memory = \"512M\"\nbackground_cpu = 100", &vms, &channels);
    let cid = p.vm("keys")["cid"].as_u64().unwrap();
    let pid = p.vm("keys")["pid"].as_u64().unwrap();
    p.run_in(
        "personal",
        &format!("pv-trust --cid {cid} flood 5003 10000 &"),
        Duration::from_secs(30),
    );
    let mut served = 0;
    while !p
        .console_log("personal")
        .contains("FLOOD connections=10000")
    {
        let line = pv_trust(&p, "work", "billing charge 1 flood-test");
        assert!(
            line.starts_with("RECEIPT"),
            "a charge failed during the flood: {line}"
        );
        served += 1;
        assert!(served < 500, "the flood never ended");
    }
    eprintln!("charges served during the flood: {served}");
    assert!(served >= 1);
    assert!(
        p.phone_log().contains("new streams a second to keys"),
        "{}",
        p.phone_log()
    );
    let keys = p.vm("keys");
    assert_eq!(
        (
            keys["state"].as_str(),
            keys["restarts"].as_u64(),
            keys["pid"].as_u64()
        ),
        (Some("running"), Some(0), Some(pid))
    );

    // The open VM killed outright.
    let open = p.vm("personal")["pid"].as_u64().unwrap();
    // SAFETY: killing the worker this test's phone started (by PID).
    unsafe { libc::kill(open as i32, libc::SIGKILL) };
    wait("personal to restart", Duration::from_secs(120), || {
        p.vm("personal")["restarts"].as_u64() == Some(1)
    });
    assert_eq!(
        pv_trust(&p, "work", "billing ledger"),
        format!("LEDGER charges={served} total={served}")
    );
    p.wait_for_console_n(
        "personal",
        "Pocketvisor guest shell",
        2,
        Duration::from_secs(120),
    );
    let line = pv_trust(&p, "personal", "billing charge 5 after-restart");
    assert!(line.starts_with("RECEIPT"), "{line}");
    assert_eq!(p.vm("keys")["pid"].as_u64(), Some(pid));
}
