//! `pv-trustd`: the reference trusted services, run as `/init` of a
//! minimal trusted VM. It mounts /dev, /proc and /sys, loads the virtio
//! and vsock modules listed in /lib/modules/load-order, opens its data
//! disk (/dev/vda) and secure output (/dev/hvc0), checks that the phone's
//! trust device answers, and serves auth, DRM and billing on their vsock
//! ports ([`pv_trust::wire`]). It prints `PV-TRUSTD-READY` when serving.
//! As /init it never exits: a fatal error powers the VM off.

use std::ffi::CString;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pv_trust::client::VsockTrust;
use pv_trust::server::{listen, Services, PORTS};
use pv_trust::vault::{instance_secret, DiskStorage};

fn mount(source: &str, target: &str, fstype: &str) {
    let _ = std::fs::create_dir_all(target);
    let c = |s: &str| CString::new(s).expect("no NUL");
    let (source, target, fstype) = (c(source), c(target), c(fstype));
    // SAFETY: mount(2) with valid C strings and no data.
    unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
}

/// Loads /lib/modules/NAME.ko for each name in load-order.
fn load_modules() {
    let Ok(order) = std::fs::read_to_string("/lib/modules/load-order") else {
        return;
    };
    for name in order.lines().filter(|l| !l.is_empty()) {
        let path = format!("/lib/modules/{name}.ko");
        let Ok(file) = std::fs::File::open(&path) else {
            println!("pv-trustd: no module {path}");
            continue;
        };
        use std::os::fd::AsRawFd;
        let empty = CString::default();
        // SAFETY: finit_module on an open module file with empty parameters.
        unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), empty.as_ptr(), 0) };
    }
}

fn wait_for(path: &str, limit: Duration) -> bool {
    let start = Instant::now();
    while !Path::new(path).exists() {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn fatal(message: &str) -> ! {
    println!("pv-trustd: {message}");
    let _ = std::io::stdout().flush();
    if std::process::id() == 1 {
        // SAFETY: sync and power off; nothing else runs in this VM.
        unsafe {
            libc::sync();
            libc::reboot(libc::RB_POWER_OFF);
        }
    }
    std::process::exit(1)
}

fn main() {
    println!("pv-trustd: starting");
    if std::process::id() == 1 {
        mount("devtmpfs", "/dev", "devtmpfs");
        mount("proc", "/proc", "proc");
        mount("sysfs", "/sys", "sysfs");
        load_modules();
    }
    if !wait_for("/dev/vda", Duration::from_secs(10)) {
        fatal("no data disk (/dev/vda): sealed state needs one");
    }
    let storage = DiskStorage::open(Path::new("/dev/vda")).unwrap_or_else(|e| fatal(&e));
    let output: Box<dyn Write + Send> = if wait_for("/dev/hvc0", Duration::from_secs(5)) {
        match std::fs::OpenOptions::new().write(true).open("/dev/hvc0") {
            Ok(f) => Box::new(f),
            Err(e) => fatal(&format!("cannot open the secure output /dev/hvc0: {e}")),
        }
    } else {
        fatal("no secure output (/dev/hvc0)")
    };
    let trust = VsockTrust::default();
    // The trust device answers only trusted VMs.
    let mut tries = 0;
    while let Err(e) = instance_secret(&trust, "pv-trustd probe") {
        tries += 1;
        if tries == 50 {
            fatal(&format!("the phone's trust device does not answer: {e}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let services = Arc::new(Services::new(Box::new(trust), Box::new(storage), output));
    // Every port is bound before READY is printed: a client that saw it
    // finds them all listening.
    for port in PORTS {
        if let Err(e) = listen(services.clone(), port) {
            fatal(&format!("cannot listen on vsock port {port}: {e}"));
        }
    }
    println!("PV-TRUSTD-READY ports {PORTS:?}");
    let _ = std::io::stdout().flush();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
