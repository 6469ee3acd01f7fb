//! Foreground, background and power: a busy background VM runs under the
//! background CPU quota (25% of a core by default) while a busy foreground
//! VM gets a whole core; switching moves the quota; a paused VM and an idle
//! VM cost (almost) no host CPU. CPU shares are the supervisor's own
//! per-second samples of each worker (what `status` shows).

mod common;

use std::time::Duration;

use common::phone::{wait, TestPhone, VmSpec};

const LIMIT: Duration = Duration::from_secs(120);

/// VM `name`'s CPU share, averaged over a few of the supervisor's samples.
fn cpu(p: &TestPhone, name: &str) -> f64 {
    let mut sum = 0.0;
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(1100));
        sum += p.vm(name)["cpu_percent"].as_f64().unwrap();
    }
    sum / 4.0
}

#[test]
fn background_quota_pause_and_idle() {
    let vms = [
        VmSpec::new("front", "open"),
        VmSpec::new("back", "corporate"),
    ];
    let p = TestPhone::up("memory = \"256M\"", &vms, "");
    assert_eq!(p.vm("back")["cpu_quota"], 25);
    assert!(p.vm("front")["cpu_quota"].is_null());

    // Idle: both guests wait in WFI.
    std::thread::sleep(Duration::from_secs(2));
    let (front_idle, back_idle) = (cpu(&p, "front"), cpu(&p, "back"));
    println!("idle: front {front_idle:.1}%, back {back_idle:.1}%");
    assert!(
        front_idle < 10.0 && back_idle < 10.0,
        "idle VMs cost little"
    );

    // Both busy: the background one is held to its quota.
    for vm in ["front", "back"] {
        p.run_in(vm, "while :; do :; done &", LIMIT);
    }
    let (front, back) = (cpu(&p, "front"), cpu(&p, "back"));
    println!("busy: front {front:.1}%, back {back:.1}% (quota 25%)");
    assert!(back < 40.0, "the background VM keeps to its quota: {back}");
    assert!(
        front > 2.0 * back,
        "the foreground VM gets more: {front} vs {back}"
    );

    // Switch: the quota follows the background.
    assert!(p.cli(&["switch", "back"]).status.success());
    wait("the quota to move", LIMIT, || {
        p.vm("front")["cpu_quota"] == 25
    });
    let (front, back) = (cpu(&p, "front"), cpu(&p, "back"));
    println!("switched: front {front:.1}%, back {back:.1}%");
    assert!(front < 40.0, "front is in the background now: {front}");
    assert!(back > 2.0 * front, "back runs freely: {back} vs {front}");

    // Paused: no host CPU, busy loop or not.
    assert!(p.cli(&["pause", "back"]).status.success());
    // (The first sample after the pause still holds busy time before it.)
    std::thread::sleep(Duration::from_secs(2));
    let paused = cpu(&p, "back");
    println!("paused: back {paused:.1}%");
    assert!(paused < 3.0, "a paused VM costs nothing: {paused}");
    assert!(p.cli(&["resume", "back"]).status.success());
}
