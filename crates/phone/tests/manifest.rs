//! The phone manifest: the example reads, and every kind of mistake is
//! refused with one error naming its key path.

use std::path::Path;

use phone::{Manifest, Restart, Role};

const GOOD: &str = r#"
[phone]
name = "demo"
state_dir = "state"
memory = "768M"

[[vm]]
name = "personal"
role = "open"
kernel = "linux/Image"
initrd = "linux/initramfs.cpio.gz"
cmdline = "console=ttyAMA0"
mem = "256M"
disks = ["personal.img"]
net = ["socket=lan"]
balloon = true
restart = "on-crash"

[[vm]]
name = "work"
role = "corporate"
kernel = "/boot/Image"
mem = "256M"
foreground = true
restart = "never"

[[vm]]
name = "keys"
role = "trusted"
kernel = "linux/Image"
mem = "128M"
cid = 42

[[channel]]
from = "personal"
to = "keys"
port = 5000
"#;

fn parse(text: &str) -> Result<Manifest, String> {
    Manifest::parse(text, Path::new("/phones")).map_err(|e| e.to_string())
}

/// GOOD with `from` replaced by `to` (the first occurrence).
fn bad(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from}");
    let text = GOOD.replacen(from, to, 1);
    parse(&text).expect_err(&format!("accepted with {to:?}"))
}

#[test]
fn a_good_manifest_reads_with_paths_cids_and_defaults() {
    let m = parse(GOOD).unwrap();
    assert_eq!(m.name, "demo");
    assert_eq!(m.state_dir, Path::new("/phones/state"));
    assert_eq!(m.memory, 768 << 20);
    let names: Vec<_> = m.vms.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["personal", "work", "keys"]);
    let p = &m.vms[0];
    assert_eq!(
        (p.role, p.cid, p.restart, p.foreground),
        (Role::Open, 3, Restart::OnCrash, false)
    );
    assert_eq!(p.config.kernel, Path::new("/phones/linux/Image"));
    assert_eq!(p.config.disks[0].path, Path::new("/phones/personal.img"));
    assert!(p.config.balloon);
    let w = m.vm("work").unwrap();
    assert_eq!(
        (w.role, w.cid, w.restart, w.foreground),
        (Role::Corporate, 4, Restart::Never, true)
    );
    assert_eq!(w.config.kernel, Path::new("/boot/Image"));
    assert_eq!(m.vm("keys").unwrap().cid, 42);
    assert!(m.allows("personal", "keys", 5000));
    assert!(!m.allows("keys", "personal", 5000), "channels are one-way");
    assert!(!m.allows("personal", "keys", 5001));
    let cfg = m.vm_config(m.vm("keys").unwrap());
    let vsock = cfg.vsock.unwrap();
    assert_eq!(
        (vsock.cid, vsock.uds.as_path()),
        (42, Path::new("/phones/state/vms/keys/vsock.sock"))
    );
}

#[test]
fn accel_is_read_and_written_back() {
    let m = parse(&GOOD.replacen("balloon = true", "balloon = true\naccel = \"soft\"", 1)).unwrap();
    assert_eq!(m.vms[0].config.accel, vmm::Accel::Soft);
    assert_eq!(m.vms[1].config.accel, vmm::Accel::Auto);
    assert!(m.vms[0].to_toml().unwrap().contains("accel = \"soft\""));
}

#[test]
fn without_a_foreground_vm_the_first_is() {
    let m = parse(&GOOD.replace("foreground = true\n", "")).unwrap();
    assert!(m.vms[0].foreground && !m.vms[1].foreground);
}

#[test]
fn mistakes_are_refused_naming_the_key() {
    for (from, to, want) in [
        (
            "mem = \"256M\"\nfore",
            "mem = \"12Q\"\nfore",
            "vm[1].mem: \"12Q\" is not a size",
        ),
        (
            "role = \"open\"",
            "role = \"root\"",
            "vm[0].role: unknown variant `root`",
        ),
        (
            "balloon = true",
            "balloon = true\nballon = true",
            "vm[0].ballon: unknown field `ballon`",
        ),
        (
            "balloon = true",
            "balloon = true\naccel = \"tcg\"",
            "vm[0].accel: unknown variant `tcg`, expected one of `auto`, `soft`, `kvm`",
        ),
        (
            "name = \"demo\"",
            "name = \"demo\"\ncolour = 1",
            "phone.colour: unknown field `colour`",
        ),
        (
            "name = \"work\"",
            "name = \"personal\"",
            "vm[1].name: \"personal\" is used twice",
        ),
        (
            "name = \"work\"",
            "name = \"Work!\"",
            "vm[1].name: \"Work!\" is not [a-z0-9-]+",
        ),
        ("cid = 42", "cid = 3", "vm[2].cid: 3 is used twice"),
        (
            "cid = 42",
            "cid = 4\nballoon = true",
            "vm[2].cid: 4 is used twice",
        ),
        (
            "cid = 42",
            "cid = 42\nballoon = true",
            "vm[2].balloon: a trusted VM is never ballooned",
        ),
        ("cid = 42", "cid = 2", "vm[2].cid: 2 is reserved"),
        (
            "memory = \"768M\"",
            "memory = \"512M\"",
            "phone.memory: the VMs that start with the phone need 640 MiB together, more than the phone's 512 MiB",
        ),
        (
            "memory = \"768M\"",
            "memory = \"200M\"",
            "vm[0].mem: 256 MiB is more than the phone's whole budget of 200 MiB",
        ),
        (
            "memory = \"768M\"",
            "memory = \"768M\"\nbackground_cpu = 0",
            "phone.background_cpu: 0 is not a percentage of a core (1 to 100)",
        ),
        (
            "memory = \"768M\"",
            "memory = \"768M\"\nlow_memory = \"lots\"",
            "phone.low_memory: \"lots\" is not a size",
        ),
        (
            "to = \"keys\"",
            "to = \"nobody\"",
            "channel[0].to: no VM named \"nobody\"",
        ),
        (
            "from = \"personal\"",
            "from = \"keys\"",
            "channel[0].to: a channel joins two different VMs",
        ),
        ("port = 5000", "port = -1", "channel[0].port: invalid value"),
        (
            "restart = \"never\"",
            "restart = \"always\"",
            "vm[1].restart: unknown variant `always`",
        ),
        (
            "disks = [\"personal.img\"]",
            "disks = [\"p.img,rx\"]",
            "vm[0].disks[0]: unknown disk option 'rx'",
        ),
        (
            "net = [\"socket=lan\"]",
            "net = [\"wifi\"]",
            "vm[0].net[0]: 'wifi': expected tap=NAME or socket=PATH",
        ),
        ("mem = \"128M\"", "mem = \"16M\"", "vm[2]: --mem must be"),
        (
            "mem = \"256M\"\nfore",
            "mem = 256\nfore",
            "vm[1].mem: invalid type: integer `256`, expected a string",
        ),
        (
            "[phone]",
            "[phone\n",
            "line 2, column 7: unclosed table, expected `]`",
        ),
    ] {
        let got = bad(from, to);
        assert!(
            got.starts_with(want) || got.contains(want),
            "{to:?}: got {got:?}, want {want:?}"
        );
    }
    let two_fg = GOOD.replace("cid = 42", "cid = 42\nforeground = true");
    assert_eq!(
        parse(&two_fg).unwrap_err(),
        "vm[2].foreground: only one VM can be in the foreground"
    );
    let got = parse("[phone]\nname = \"x\"\nstate_dir = \"s\"\nmemory = \"1G\"\n").unwrap_err();
    assert_eq!(got, "vm: the phone has no VM");
    let clash = GOOD.replacen("foreground = true", "foreground = true\ncid = 3", 1);
    let got = parse(&clash).unwrap_err();
    assert_eq!(got, "vm[1].cid: 3 is used twice", "{got}");
    let clash = GOOD.replacen("name = \"personal\"", "name = \"personal\"\ncid = 4", 1);
    let got = parse(&clash).unwrap_err();
    assert_eq!(
        got,
        "vm[1].cid: 4 is used twice (given by position: set cid)"
    );
    let deep = GOOD.replacen(
        "state_dir = \"state\"",
        &format!("state_dir = \"{}\"", "d".repeat(80)),
        1,
    );
    let got = parse(&deep).unwrap_err();
    assert!(
        got.starts_with("phone.state_dir: too long: VM personal (vm[0])"),
        "{got}"
    );
    let got = parse("").unwrap_err();
    assert!(got.contains("missing field `phone`"), "{got}");
}

#[test]
fn the_example_manifest_reads() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../phones/demo.toml");
    let m = Manifest::load(&example).unwrap();
    assert_eq!(m.vms.len(), 3);
    let roles: Vec<Role> = m.vms.iter().map(|v| v.role).collect();
    assert_eq!(roles, [Role::Open, Role::Corporate, Role::Trusted]);
    assert!(!m.channels.is_empty());
}

#[test]
fn a_manifest_that_is_not_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let got = Manifest::load(dir.path()).unwrap_err().to_string();
    assert!(got.contains("not a regular file"), "{got}");
    let got = Manifest::load(&dir.path().join("missing.toml"))
        .unwrap_err()
        .to_string();
    assert!(got.contains("cannot read manifest"), "{got}");
}

#[test]
fn vms_that_wait_for_phone_start_are_outside_the_startup_budget() {
    let m = parse(GOOD).unwrap();
    assert_eq!(m.background_cpu, 25);
    assert_eq!(m.low_memory, phone::manifest::DEFAULT_LOW_MEMORY);
    assert!(m.vms.iter().all(|v| v.autostart));
    // Pages are shared between VMs, never a trusted VM's.
    assert!(m.vm("personal").unwrap().config.share_memory);
    assert!(!m.vm("keys").unwrap().config.share_memory);
    let private = parse(&GOOD.replacen(
        "memory = \"768M\"",
        "memory = \"768M\"\nshare_memory = false",
        1,
    ))
    .unwrap();
    assert!(private.vms.iter().all(|v| !v.config.share_memory));
    // 640 MiB of VMs in 512 MiB: only if the 256 MiB one waits.
    let tight = GOOD.replacen(
        "memory = \"768M\"",
        "memory = \"512M\"\nbackground_cpu = 40\nlow_memory = \"1G\"",
        1,
    );
    assert!(parse(&tight).is_err());
    let waits = tight.replacen(
        "restart = \"never\"",
        "restart = \"never\"\nautostart = false",
        1,
    );
    let m = parse(&waits).unwrap();
    assert!(!m.vm("work").unwrap().autostart);
    assert_eq!((m.background_cpu, m.low_memory), (40, 1 << 30));
}
