//! A VM's worker: the process that runs one VM of a phone. It builds the
//! VM from the manifest — its serial console appended to
//! `STATE_DIR/vms/NAME/console.log`, its vsock socket in the same
//! directory — enters the sandbox ([`crate::sandbox`]; trusted VMs are also
//! made non-dumpable), runs the VM, and ends with an exit code that tells
//! the supervisor how the VM ended ([`exit`]). A guest reset ends the
//! worker too (the sandbox forbids opening the kernel again): the
//! supervisor starts a fresh one.

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

use vmm::{Vm, VmEnd};

use crate::manifest::{Manifest, Role};
use crate::sandbox;

/// A worker's exit codes.
pub mod exit {
    /// The guest powered off.
    pub const POWERED_OFF: u8 = 0;
    /// The VM could not be built or sandboxed (the reason is on stderr).
    pub const FAILED: u8 = 1;
    /// The guest crashed.
    pub const CRASHED: u8 = 2;
    /// The worker was stopped (SIGTERM, SIGINT, SIGHUP); disks flushed.
    pub const STOPPED: u8 = 3;
    /// The guest asked for a reset.
    pub const RESET: u8 = 4;
}

/// The directory of VM `name`'s files: `STATE_DIR/vms/NAME`.
pub fn vm_dir(manifest: &Manifest, name: &str) -> PathBuf {
    manifest.state_dir.join("vms").join(name)
}

/// How a worker's VM ended, as its exit code.
pub fn exit_code(end: &VmEnd) -> u8 {
    match end {
        VmEnd::PoweredOff => exit::POWERED_OFF,
        VmEnd::Crashed(_) => exit::CRASHED,
        VmEnd::Stopped => exit::STOPPED,
        VmEnd::Reset => exit::RESET,
    }
}

/// Runs VM `name` of `manifest` in this process: builds it, calls
/// `started` with it (the caller hooks its stop signals to the board), enters
/// the sandbox and runs the VM until it ends.
pub fn run(manifest: &Manifest, name: &str, started: impl FnOnce(&Vm)) -> Result<VmEnd, String> {
    let entry = manifest
        .vm(name)
        .ok_or_else(|| format!("the phone has no VM named \"{name}\""))?;
    let dir = vm_dir(manifest, name);
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot create '{}': {e}", dir.display()))?;
    let log = dir.join("console.log");
    let console = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log)
        .map_err(|e| format!("cannot open '{}': {e}", log.display()))?;
    let config = manifest.vm_config(entry);
    let mut vm = Vm::new(&config, Box::new(console)).map_err(|e| e.to_string())?;
    started(&vm);
    if entry.role == Role::Trusted {
        sandbox::make_non_dumpable()?;
    }
    sandbox::enter(&sandbox::worker_filter()?)?;
    Ok(vm.run())
}
