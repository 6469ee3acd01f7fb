//! Moving a VM to another phone as one image file: phone A exports its
//! running, counting VM encrypted to phone B and signed by A; B refuses a
//! tampered copy, the image without A as a trusted signer, and a wrong
//! passphrase, writing nothing; then imports it while down, and at `phone
//! up` the VM resumes: its counter goes on from the export, the file in
//! its RAM and the mark on its disk are there. A copy exported with a
//! passphrase, imported into a third phone that is up, resumes at once.
//! A keeps running.

mod common;

use std::time::Duration;

use common::counting::{check_carries_on, last_tick};
use common::phone::{pocketvisor, wait, TestPhone, VmSpec};

const LIMIT: Duration = Duration::from_secs(120);

fn image(args: &[&str]) -> std::process::Output {
    pocketvisor().arg("image").args(args).output().unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_vm_moves_to_another_phone_and_carries_on() {
    let mut vm = VmSpec::new("personal", "open");
    vm.data_disk = Some("personal.img");
    let a = TestPhone::up("memory = \"256M\"", &[vm], "");
    common::counting::start(&a, "personal");

    let home = [VmSpec::new("home", "open")];
    let b = TestPhone::up("memory = \"512M\"", &home, "");
    let recipient = String::from_utf8(b.cli_ok(&["identity", "--recipient"]).stdout).unwrap();
    b.down();
    let a_key = a.dir.path().join("a.key");
    std::fs::write(&a_key, a.cli_ok(&["identity"]).stdout).unwrap();

    let before = last_tick(&a.console_log("personal")).unwrap();
    let file = a.dir.path().join("personal.pvi");
    let (fs, a_state) = (file.to_str().unwrap(), a.state.to_str().unwrap());
    let export = || {
        image(&[
            "export",
            "personal",
            "--phone",
            a_state,
            "--out",
            fs,
            "--recipient",
            recipient.trim(),
        ])
    };
    let out = export();
    assert!(out.status.success(), "{}", stderr(&out));
    let at = last_tick(&a.console_log("personal")).unwrap();
    let shown = String::from_utf8(image(&["inspect", fs]).stdout).unwrap();
    assert!(
        shown.contains("vm       personal (open, 128 MiB RAM)"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("key      recipient {}", recipient.trim())),
        "{shown}"
    );
    let out = export();
    assert!(stderr(&out).contains("never replaces"), "{}", stderr(&out));

    // Refusals write nothing.
    let b_state = b.state.to_str().unwrap();
    let imported = b.state.join("imported/personal");
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    let bad = a.dir.path().join("bad.pvi");
    std::fs::write(&bad, &bytes).unwrap();
    let key = a_key.to_str().unwrap();
    let out = image(&[
        "import",
        bad.to_str().unwrap(),
        "--phone",
        b_state,
        "--trust-signer",
        key,
    ]);
    assert!(stderr(&out).contains("tampered"), "{}", stderr(&out));
    let out = image(&["import", fs, "--phone", b_state]);
    assert!(stderr(&out).contains("unknown signer"), "{}", stderr(&out));
    let pass = a.dir.path().join("pass");
    std::fs::write(&pass, "open sesame\n").unwrap();
    let pfile = a.dir.path().join("p.pvi");
    let p_low = last_tick(&a.console_log("personal")).unwrap();
    let out = image(&[
        "export",
        "personal",
        "--phone",
        a_state,
        "--out",
        pfile.to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let p_high = last_tick(&a.console_log("personal")).unwrap();
    std::fs::write(&pass, "open sesame!\n").unwrap();
    let out = image(&[
        "import",
        pfile.to_str().unwrap(),
        "--phone",
        b_state,
        "--trust-signer",
        key,
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    assert!(stderr(&out).contains("wrong key"), "{}", stderr(&out));
    assert!(!imported.exists());
    assert!(std::fs::read_dir(b.state.join("imported")).map_or(true, |d| d.count() == 0));

    // The real import, then B comes up and the VM carries on.
    let out = image(&["import", fs, "--phone", b_state, "--trust-signer", key]);
    assert!(out.status.success(), "{}", stderr(&out));
    b.bring_up(&home);
    check_carries_on(&b, "personal", 0, before, at);

    // The passphrase image into a third phone that is up: it resumes at once.
    let c = TestPhone::up("memory = \"512M\"", &[VmSpec::new("work", "open")], "");
    std::fs::write(&pass, "open sesame\n").unwrap();
    let out = image(&[
        "import",
        pfile.to_str().unwrap(),
        "--phone",
        c.state.to_str().unwrap(),
        "--trust-signer",
        key,
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("it resumed"),
        "{}",
        stderr(&out)
    );
    assert_ne!(c.vm("personal")["state"], "stopped");
    check_carries_on(&c, "personal", 0, p_low, p_high);

    // A's VM never stopped.
    wait("A's ticks", LIMIT, || {
        last_tick(&a.console_log("personal")).unwrap() > at + 5
    });
}

#[test]
fn a_cold_image_boots_on_the_other_phone() {
    let mut spare = VmSpec::new("spare", "open").with("autostart = false");
    spare.data_disk = Some("spare.img");
    let a = TestPhone::up(
        "memory = \"256M\"",
        &[VmSpec::new("main", "open"), spare],
        "",
    );
    let disk = a.dir.path().join("spare.img");
    let mut bytes = std::fs::read(&disk).unwrap();
    bytes[..9].copy_from_slice(b"cold-mark");
    std::fs::write(&disk, &bytes).unwrap();
    let pass = a.dir.path().join("pass");
    std::fs::write(&pass, "cold storage\n").unwrap();
    let file = a.dir.path().join("spare.pvi");
    let export = |vm: &str| {
        image(&[
            "export",
            vm,
            "--phone",
            a.state.to_str().unwrap(),
            "--out",
            file.to_str().unwrap(),
            "--passphrase-file",
            pass.to_str().unwrap(),
            "--cold",
        ])
    };
    // A running VM is refused: its disks are not at rest.
    let out = export("main");
    assert!(stderr(&out).contains("stop it first"), "{}", stderr(&out));
    let out = export("spare");
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = String::from_utf8(image(&["inspect", file.to_str().unwrap()]).stdout).unwrap();
    assert!(shown.contains("cold"), "{shown}");

    let b = TestPhone::up("memory = \"512M\"", &[VmSpec::new("home", "open")], "");
    let a_key = a.dir.path().join("a.key");
    std::fs::write(&a_key, a.cli_ok(&["identity"]).stdout).unwrap();
    let out = image(&[
        "import",
        file.to_str().unwrap(),
        "--phone",
        b.state.to_str().unwrap(),
        "--trust-signer",
        a_key.to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // It boots afresh there, with its disk.
    b.wait_for_console("spare", "Pocketvisor guest shell", LIMIT);
    b.run_in("spare", "head -c 9 /dev/vda; echo", LIMIT);
    assert!(b.console_log("spare").contains("cold-mark"));
}
