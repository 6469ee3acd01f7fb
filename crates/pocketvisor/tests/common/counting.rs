//! A guest that shows it carries on: it writes a file into its RAM
//! (tmpfs) and a mark on its disk, then counts `TICK n` on its console
//! five times a second. After a snapshot, restore or move, the counter
//! goes on from where it was and the file and mark are there.

use std::time::Duration;

use super::phone::{wait, TestPhone};

const LIMIT: Duration = Duration::from_secs(120);

/// Starts the counting in VM `vm` (with a disk) and waits for 5 ticks.
pub fn start(p: &TestPhone, vm: &str) {
    p.run_in(
        vm,
        "echo secret-$((6*7)) > /tmp/in-ram; echo disk-mark | dd of=/dev/vda bs=512 count=1 conv=fsync 2>/dev/null",
        LIMIT,
    );
    p.run_in(
        vm,
        "(i=0; while :; do i=$((i+1)); echo TICK $i; sleep 0.2; done) &",
        LIMIT,
    );
    wait("ticks", LIMIT, || {
        last_tick(&p.console_log(vm)).unwrap_or(0) >= 5
    });
}

fn tick(line: &str) -> Option<u64> {
    line.trim()
        .strip_prefix("TICK ")
        .and_then(|n| n.trim().parse().ok())
}

/// The last `TICK n` in `text`.
pub fn last_tick(text: &str) -> Option<u64> {
    text.lines().rev().find_map(tick)
}

/// The first `TICK n` in `text`.
pub fn first_tick(text: &str) -> Option<u64> {
    text.lines().find_map(tick)
}

/// Waits for VM `vm`'s console, past byte `from`, to count again; checks
/// it went on from between `low` and `high` (what it showed around the
/// moment it was saved) and that its RAM file and disk mark are there.
pub fn check_carries_on(p: &TestPhone, vm: &str, from: usize, low: u64, high: u64) {
    wait("ticks again", LIMIT, || {
        first_tick(&p.console_log(vm)[from..]).is_some()
    });
    let first = first_tick(&p.console_log(vm)[from..]).unwrap();
    assert!(
        first + 1 >= low && first <= high + 1,
        "the counter went on from {first}; it was saved between {low} and {high}"
    );
    p.run_in(vm, "cat /tmp/in-ram; head -c 9 /dev/vda; echo", LIMIT);
    let log = p.console_log(vm);
    assert!(
        log[from..].contains("secret-42") && log[from..].contains("disk-mark"),
        "{}",
        &log[from..]
    );
}
