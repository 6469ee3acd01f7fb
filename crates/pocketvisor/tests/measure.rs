//! `pocketvisor measure MANIFEST VM`: the measured-boot log and measurement
//! of a phone's VM without booting it — the same on every run, different
//! when one byte of the initrd, the command line or the debug flag changes;
//! a VM the manifest lacks is one clear error.

use std::path::Path;
use std::process::Command;

fn manifest(dir: &Path, cmdline: &str, debug: bool) -> std::path::PathBuf {
    let text = format!(
        "[phone]\nname = \"m\"\nstate_dir = \"state\"\nmemory = \"256M\"\n\
         [[vm]]\nname = \"keys\"\nrole = \"trusted\"\nkernel = \"Image\"\ninitrd = \"initrd\"\n\
         cmdline = \"{cmdline}\"\nmem = \"128M\"\ndebug = {debug}\n"
    );
    let path = dir.join(format!("phone-{}-{debug}.toml", cmdline.len()));
    std::fs::write(&path, text).unwrap();
    path
}

fn measure(manifest: &Path, vm: &str) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pocketvisor"))
        .arg("measure")
        .arg(manifest)
        .arg(vm)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn measurement(log: &str) -> String {
    log.lines()
        .last()
        .and_then(|l| l.strip_prefix("measurement "))
        .unwrap_or_else(|| panic!("no measurement in {log}"))
        .to_string()
}

#[test]
fn measurements_are_reproducible_and_follow_every_input() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Image"), vec![7u8; 4096]).unwrap();
    let mut initrd = vec![1u8; 8192];
    std::fs::write(dir.path().join("initrd"), &initrd).unwrap();
    let m = manifest(dir.path(), "console=ttyAMA0", false);

    let (code, log, err) = measure(&m, "keys");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(log.lines().count(), 5, "{log}");
    assert!(log.contains("role=trusted debug=false"), "{log}");
    let first = measurement(&log);
    assert_eq!(first.len(), 64);
    assert_eq!(measure(&m, "keys").1, log, "the same on a second run");

    initrd[4000] ^= 1;
    std::fs::write(dir.path().join("initrd"), &initrd).unwrap();
    let changed = measurement(&measure(&m, "keys").1);
    assert_ne!(changed, first, "one byte of the initrd");
    initrd[4000] ^= 1;
    std::fs::write(dir.path().join("initrd"), &initrd).unwrap();
    assert_eq!(measurement(&measure(&m, "keys").1), first, "restored");

    let other = manifest(dir.path(), "console=ttyAMA0 quiet", false);
    assert_ne!(
        measurement(&measure(&other, "keys").1),
        first,
        "the cmdline"
    );
    let debug = manifest(dir.path(), "console=ttyAMA0", true);
    let (_, debug_log, _) = measure(&debug, "keys");
    assert!(debug_log.contains("debug=true"));
    assert_ne!(measurement(&debug_log), first, "the debug flag");

    let (code, out, err) = measure(&m, "ghost");
    assert_eq!(code, Some(1));
    assert!(out.is_empty());
    assert_eq!(
        err.trim(),
        "pocketvisor: the phone has no VM named \"ghost\""
    );
}
