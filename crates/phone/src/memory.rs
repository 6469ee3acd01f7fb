//! Memory for the whole phone, and the host facts the supervisor samples.
//!
//! The memory manager runs once a second. When the host has less memory
//! available than the manifest's `low_memory`, background open and
//! corporate VMs give memory back through their balloons — a step at a
//! time, never more than the guest reports free (less a margin), like
//! Android's low-memory killer reclaiming from background apps first; the
//! foreground VM is left alone and trusted VMs have no balloon. Once the
//! host has twice that available again, what was reclaimed is given back
//! step by step; a VM brought to the foreground gets it back at once.
//! Guest free page reporting (always on) returns freed pages as the guest
//! frees them. A balloon target set through the API is the base the
//! manager adds to.

use std::sync::Arc;

use crate::manifest::Role;
use crate::protocol::ToWorker;
use crate::supervisor::{lock, PhoneError, Shared};

/// How much one step of reclaim inflates a balloon.
const STEP: u64 = 32 << 20;
/// Free memory a guest keeps when its balloon is inflated under pressure.
const GUEST_MARGIN: u64 = 24 << 20;

/// A process's CPU time in clock ticks (user + system), from /proc.
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields count from its ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the whole line (utime, stime) are 11 and 12 here.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Clock ticks per second.
pub(crate) fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// A process's resident memory in bytes, from /proc.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    Some(pages * page)
}

/// The host's available memory in bytes (MemAvailable).
pub fn host_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib << 10)
}

/// Sends VM `i` its balloon target: the API's base plus what the manager
/// reclaimed.
pub(crate) fn apply(shared: &Shared, i: usize) -> Result<(), PhoneError> {
    let target = {
        let t = lock(&shared.table);
        let s = &t.slots[i];
        s.balloon_base + s.reclaimed
    };
    shared.tell(i, &ToWorker::SetBalloon(target))
}

/// Sets VM `i`'s balloon base target (the API's).
pub(crate) fn set_target(shared: &Shared, i: usize, bytes: u64) -> Result<(), PhoneError> {
    let mem = shared.manifest().vms[i].config.mem;
    let most = mem.saturating_sub(vmm::BALLOON_RESERVE);
    if bytes > most {
        return Err(PhoneError::BadRequest(format!(
            "a balloon of {} MiB would leave the guest less than {} MiB (at most {} MiB)",
            bytes >> 20,
            vmm::BALLOON_RESERVE >> 20,
            most >> 20
        )));
    }
    let old = {
        let mut t = lock(&shared.table);
        let s = &mut t.slots[i];
        s.reclaimed = s.reclaimed.min(most - bytes);
        std::mem::replace(&mut s.balloon_base, bytes)
    };
    if let Err(e) = apply(shared, i) {
        lock(&shared.table).slots[i].balloon_base = old;
        return Err(e);
    }
    Ok(())
}

/// VM `i` came to the foreground: it gets back what was reclaimed from it.
pub(crate) fn foreground_changed(shared: &Shared, i: usize) {
    let had = std::mem::take(&mut lock(&shared.table).slots[i].reclaimed);
    if had > 0 && shared.manifest().vms[i].config.balloon {
        shared.log(&format!(
            "memory: {} in the foreground, {} MiB given back",
            shared.manifest().vms[i].name,
            had >> 20
        ));
        let _ = apply(shared, i);
    }
}

/// One round of the memory manager (see the module's documentation).
pub(crate) fn manage(shared: &Arc<Shared>) {
    let Some(available) = host_available() else {
        return;
    };
    let low = shared.manifest().low_memory;
    let pressure = available < low;
    let relaxed = available > low.saturating_mul(2);
    if !pressure && !relaxed {
        return;
    }
    let mut changes = Vec::new();
    {
        let mut t = lock(&shared.table);
        let fg = t.foreground;
        for (i, (s, v)) in t.slots.iter_mut().zip(&shared.manifest().vms).enumerate() {
            if i == fg || v.role == Role::Trusted || !v.config.balloon || s.worker.is_none() {
                continue;
            }
            let Some(b) = s.report.as_ref().and_then(|r| r.balloon.clone()) else {
                continue;
            };
            let most = v.config.mem.saturating_sub(vmm::BALLOON_RESERVE);
            let before = s.reclaimed;
            if pressure {
                // What the guest could free, caches included: inflating
                // makes it drop clean caches, and those pages leave the host.
                let free = b
                    .available
                    .or(b.free)
                    .unwrap_or(0)
                    .saturating_sub(GUEST_MARGIN);
                let room = most.saturating_sub(s.balloon_base + s.reclaimed);
                s.reclaimed += STEP.min(free).min(room);
            } else {
                s.reclaimed = s.reclaimed.saturating_sub(STEP);
            }
            if s.reclaimed != before {
                changes.push((i, before, s.reclaimed));
            }
        }
    }
    for (i, before, now) in changes {
        shared.log(&format!(
            "memory: host has {} MiB available ({} {} MiB): {} reclaimed {} -> {} MiB",
            available >> 20,
            if pressure { "below" } else { "above twice" },
            low >> 20,
            shared.manifest().vms[i].name,
            before >> 20,
            now >> 20
        ));
        let _ = apply(shared, i);
    }
}
