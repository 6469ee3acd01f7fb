//! Bad input to `pocketvisor run` gets a non-zero exit and one clear message.

use std::process::Command;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pocketvisor"))
        .args(args)
        .output()
        .expect("run pocketvisor");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_file(name: &str, data: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("pv-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p.display().to_string()
}

/// A minimal file that passes the arm64 Image header checks.
fn fake_image(image_size: u64) -> Vec<u8> {
    let mut h = vec![0u8; 4096];
    h[16..24].copy_from_slice(&image_size.to_le_bytes());
    h[56..60].copy_from_slice(b"ARMd");
    h
}

fn assert_one_clear_error(args: &[&str], needle: &str) {
    let (code, err) = run(args);
    assert_ne!(code, 0, "{args:?} should fail");
    assert!(
        err.contains(needle),
        "{args:?}: expected '{needle}' in:\n{err}"
    );
    assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
    assert!(
        err.trim().lines().count() <= 3,
        "{args:?}: one message, not:\n{err}"
    );
}

#[test]
fn missing_kernel() {
    assert_one_clear_error(
        &["run", "--kernel", "/nonexistent/Image"],
        "cannot read kernel '/nonexistent/Image'",
    );
}

#[test]
fn not_an_image() {
    let elf = temp_file(
        "elf",
        b"\x7fELF\x02\x01\x01 this is not an Image at all, just bytes.........",
    );
    assert_one_clear_error(&["run", "--kernel", &elf], "not an arm64 Linux Image");
}

#[test]
fn bad_memory_sizes() {
    let k = temp_file("image-small", &fake_image(8 << 20));
    assert_one_clear_error(&["run", "--kernel", &k, "--mem", "lots"], "not a size");
    assert_one_clear_error(&["run", "--kernel", &k, "--mem", "16M"], "--mem must be");
    let big = temp_file("image-big", &fake_image(100 << 20));
    assert_one_clear_error(
        &["run", "--kernel", &big, "--mem", "128M"],
        "guest memory too small",
    );
}

#[test]
fn initrd_problems() {
    let k = temp_file("image-ok", &fake_image(8 << 20));
    assert_one_clear_error(
        &["run", "--kernel", &k, "--initrd", "/nonexistent/initrd"],
        "cannot read initrd",
    );
    let initrd = temp_file("initrd-big", &vec![0u8; 80 << 20]);
    assert_one_clear_error(
        &["run", "--kernel", &k, "--initrd", &initrd, "--mem", "96M"],
        "does not fit",
    );
}

#[test]
fn bad_cpu_counts() {
    let k = temp_file("image-cpus", &fake_image(8 << 20));
    assert_one_clear_error(&["run", "--kernel", &k, "--cpus", "0"], "--cpus must be");
    assert_one_clear_error(&["run", "--kernel", &k, "--cpus", "x"], "invalid value");
}

#[test]
fn bad_device_options() {
    let k = temp_file("image-devs", &fake_image(8 << 20));
    assert_one_clear_error(
        &["run", "--kernel", &k, "--disk", "/nonexistent.img"],
        "cannot open disk",
    );
    assert_one_clear_error(
        &["run", "--kernel", &k, "--disk", "x.img,fast"],
        "unknown disk option",
    );
    assert_one_clear_error(
        &["run", "--kernel", &k, "--port", "no-equals"],
        "is not NAME=PATH",
    );
    assert_one_clear_error(
        &["run", "--kernel", &k, "--net", "wifi=home"],
        "expected tap=NAME or socket=PATH",
    );
    assert_one_clear_error(
        &[
            "run",
            "--kernel",
            &k,
            "--net",
            "socket=/tmp/x,mac=01:00:5e:00:00:01",
        ],
        "is a multicast address",
    );
    assert_one_clear_error(
        &[
            "run",
            "--kernel",
            &k,
            "--net",
            "tap=this-name-is-far-too-long",
        ],
        "is not an interface name",
    );
    assert_one_clear_error(
        &["run", "--kernel", &k, "--net", "socket=/proc/version/lan"],
        "network switch '/proc/version/lan'",
    );
    assert_one_clear_error(
        &["run", "--kernel", &k, "--vsock", "cid=2,uds=/tmp/v"],
        "vsock cid 2 is reserved",
    );
    assert_one_clear_error(
        &["run", "--kernel", &k, "--vsock", "cid=3"],
        "expected cid=N,uds=PATH",
    );
    let not_a_socket = temp_file("not-a-socket", b"keep me");
    assert_one_clear_error(
        &[
            "run",
            "--kernel",
            &k,
            "--vsock",
            &format!("cid=3,uds={not_a_socket}"),
        ],
        "exists and is not a socket",
    );
    assert_eq!(std::fs::read(&not_a_socket).unwrap(), b"keep me");
    let disk = temp_file("small.img", &[0u8; 4096]);
    let mut many = vec!["run", "--kernel", &k];
    for _ in 0..33 {
        many.extend(["--disk", &disk]);
    }
    assert_one_clear_error(&many, "too many virtio devices: 33 (at most 32)");
    let odd = temp_file("odd.img", &[0u8; 1000]);
    assert_one_clear_error(
        &["run", "--kernel", &k, "--disk", &odd],
        "not a whole number of 512-byte sectors",
    );
}
