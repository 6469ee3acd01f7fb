//! What a phone measures of a VM: its kernel, initrd, command line and the
//! manifest settings its software can see ([`trust::MeasuredConfig`]),
//! never host paths. The worker of a trusted VM measures the very bytes
//! it then loads; `pocketvisor measure` reads the same files to predict
//! the measurement without booting.

use trust::{MeasuredConfig, MeasurementLog};
use vmm::BootImages;

use crate::manifest::{Manifest, VmEntry};

/// The measured configuration of `entry`.
pub fn measured_config(manifest: &Manifest, entry: &VmEntry) -> MeasuredConfig {
    let config = manifest.vm_config(entry);
    MeasuredConfig {
        mem: config.mem,
        cpus: config.cpus,
        role: entry.role.name().to_string(),
        debug: entry.debug,
        disks_read_only: config.disks.iter().map(|d| d.read_only).collect(),
        nets: config.nets.len(),
        balloon: config.balloon,
        rng: config.rng,
        vsock_cid: config.vsock.as_ref().map(|v| v.cid),
    }
}

/// The measurement log of `entry` booting `images`.
pub fn measure(manifest: &Manifest, entry: &VmEntry, images: &BootImages) -> MeasurementLog {
    MeasurementLog::of(
        &images.kernel,
        images.initrd.as_deref(),
        &manifest.vm_config(entry).cmdline,
        &measured_config(manifest, entry),
    )
}

/// Reads VM `name`'s kernel and initrd and measures them.
pub fn measure_files(manifest: &Manifest, name: &str) -> Result<MeasurementLog, String> {
    let entry = manifest
        .vm(name)
        .ok_or_else(|| format!("the phone has no VM named \"{name}\""))?;
    let images = BootImages::read(&manifest.vm_config(entry)).map_err(|e| e.to_string())?;
    Ok(measure(manifest, entry, &images))
}
