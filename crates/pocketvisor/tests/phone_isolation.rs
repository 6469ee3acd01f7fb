//! What another process of the phone's own user can see of its VMs: the
//! whole phone runs as an unprivileged user (65534), and a process of that
//! same user reads an open VM's worker through /proc (it may: same user,
//! dumpable) but not the trusted VM's, whose worker is non-dumpable.
//! (Everything else here runs as root, which bypasses these rules, so the
//! phone and the attacker both drop to the unprivileged user.)

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::phone::{manifest_text, wait, TestPhone, VmSpec};

const USER: &str = "65534";

/// `setpriv` as the unprivileged user.
fn as_user() -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        &format!("--reuid={USER}"),
        &format!("--regid={USER}"),
        "--clear-groups",
    ]);
    c
}

#[test]
fn the_same_user_cannot_read_a_trusted_worker() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to drop to another user");
        return;
    }
    // Everything the unprivileged phone needs, where it may read it.
    let p = TestPhone::prepare("memory = \"256M\"", &[], "");
    let dir = p.dir.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let guest = common::linux_guest_dir();
    for f in ["Image", "initramfs.cpio.gz"] {
        std::fs::copy(guest.join(f), dir.join(f)).unwrap();
    }
    let exe = dir.join("pocketvisor");
    std::fs::copy(env!("CARGO_BIN_EXE_pocketvisor"), &exe).unwrap();
    let vms = [VmSpec::new("open", "open"), VmSpec::new("keys", "trusted")];
    let text = manifest_text("memory = \"256M\"", &vms, "")
        .replace(
            &guest.join("Image").display().to_string(),
            &dir.join("Image").display().to_string(),
        )
        .replace(
            &guest.join("initramfs.cpio.gz").display().to_string(),
            &dir.join("initramfs.cpio.gz").display().to_string(),
        );
    std::fs::write(&p.manifest, text).unwrap();
    for f in std::fs::read_dir(dir).unwrap() {
        let f = f.unwrap().path();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    // `pocketvisor phone ARGS PATH` as the unprivileged user; it succeeds.
    let phone_as_user = |args: &[&str], path: &std::path::Path| {
        let out = as_user()
            .arg(&exe)
            .arg("phone")
            .args(args)
            .arg(path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    phone_as_user(&["up", "--detach"], &p.manifest);
    for name in ["open", "keys"] {
        p.wait_for_console(name, "Pocketvisor guest shell", Duration::from_secs(120));
    }
    let pid = |name: &str| p.vm(name)["pid"].as_u64().unwrap();
    let (open, keys) = (pid("open"), pid("keys"));
    let owner = |pid: u64| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/proc/{pid}/environ"))
            .unwrap()
            .uid()
    };
    assert_eq!(owner(open), 65534, "the workers run as the phone's user");
    // The same user reads the open VM's worker's environment, not the
    // trusted one's (and not its memory).
    let read = |what: String| {
        as_user()
            .args(["head", "-c", "1", &what])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    };
    let open_env = read(format!("/proc/{open}/environ"));
    assert!(
        open_env.status.success(),
        "{}",
        String::from_utf8_lossy(&open_env.stderr)
    );
    for file in ["environ", "mem"] {
        let keys_read = read(format!("/proc/{keys}/{file}"));
        assert!(
            !keys_read.status.success(),
            "read the trusted worker's {file}"
        );
        let err = String::from_utf8_lossy(&keys_read.stderr);
        assert!(err.contains("Permission denied"), "{err}");
    }
    // The phone goes down for its own user too.
    phone_as_user(&["down", "--phone"], &p.state);
    wait("the workers to end", Duration::from_secs(30), || {
        !common::phone::alive(open as u32) && !common::phone::alive(keys as u32)
    });
}
