//! The open VM floods the billing port with 10,000 connections, each
//! sending garbage, while legitimate charges go on: every charge is
//! served, the trusted VM neither crashes nor restarts, and answers after.

mod common;

use std::time::Duration;

use common::phone::{TestPhone, VmSpec};
use common::trusted::{pv_trust, service_channels};

#[test]
fn a_flood_from_the_open_vm_does_not_stop_the_services() {
    let vms = [
        VmSpec::new("personal", "open"),
        VmSpec::trusted_services("keys"),
    ];
    let p = TestPhone::up(
        "memory = \"512M\"\nbackground_cpu = 100",
        &vms,
        &service_channels("personal", "keys"),
    );
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
        let line = pv_trust(&p, "personal", "billing charge 1 flood-test");
        assert!(
            line.starts_with("RECEIPT"),
            "a charge failed during the flood: {line}"
        );
        served += 1;
        assert!(served < 500, "the flood never ended");
    }
    assert!(served >= 1);
    let keys = p.vm("keys");
    assert_eq!(
        (
            keys["state"].as_str(),
            keys["restarts"].as_u64(),
            keys["pid"].as_u64()
        ),
        (Some("running"), Some(0), Some(pid))
    );
    assert_eq!(
        pv_trust(&p, "personal", "billing ledger"),
        format!("LEDGER charges={served} total={served}")
    );
    eprintln!("charges served during the flood: {served}");
}
