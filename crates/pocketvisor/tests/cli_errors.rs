//! Bad input to `pocketvisor run` gets exit code 1 and one clear message,
//! and changes nothing; `--help` shows the exit codes.

mod common;

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

/// This test binary's scratch directory (removed when the process ends
/// would need a destructor; each file name is unique within the binary).
fn scratch() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fn temp_file(name: &str, data: &[u8]) -> String {
    let p = scratch().join(name);
    std::fs::write(&p, data).unwrap();
    p.display().to_string()
}

/// A (sparse) file `name` that passes the arm64 Image checks: a header
/// saying `image_size`, and that many bytes.
fn fake_image(name: &str, image_size: u64) -> String {
    let mut h = vec![0u8; 4096];
    h[16..24].copy_from_slice(&image_size.to_le_bytes());
    h[56..60].copy_from_slice(b"ARMd");
    let p = temp_file(name, &h);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(image_size)
        .unwrap();
    p
}

/// A usage error as clap reports it: exit 1, the first line says what.
fn assert_usage_error(args: &[&str], needle: &str) {
    let (code, err) = run(args);
    assert_eq!(code, 1, "{args:?} should fail as bad input:\n{err}");
    let first = err.lines().next().unwrap_or("");
    assert!(
        first.starts_with("error:") && first.contains(needle),
        "{args:?}: expected '{needle}' in:\n{err}"
    );
}

fn assert_one_clear_error(args: &[&str], needle: &str) {
    let (code, err) = run(args);
    assert_eq!(code, 1, "{args:?} should fail as bad input:\n{err}");
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
fn kernels_that_cannot_be_booted_say_what_they_are() {
    let elf = temp_file(
        "elf",
        b"\x7fELF\x02\x01\x01 this is not an Image at all, just bytes.........",
    );
    assert_one_clear_error(&["run", "--kernel", &elf], "is an ELF file");
    let gz = temp_file("gz", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03more");
    assert_one_clear_error(&["run", "--kernel", &gz], "gzip-compressed");
    let empty = temp_file("empty", b"");
    assert_one_clear_error(&["run", "--kernel", &empty], "the kernel file is empty");
    assert_one_clear_error(
        &["run", "--kernel", "/dev/zero"],
        "kernel '/dev/zero' is a character device, not a regular file",
    );
    let fifo = scratch().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let k = fake_image("image-for-fifo", 8 << 20);
    assert_one_clear_error(
        &["run", "--kernel", &k, "--initrd", fifo.to_str().unwrap()],
        "is a FIFO",
    );
    // Larger than guest memory: refused without reading it all.
    let big = scratch().join("sparse-big");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    assert_one_clear_error(
        &["run", "--kernel", big.to_str().unwrap(), "--mem", "128M"],
        "more than the 128 MiB that fit in guest memory",
    );
}

#[test]
fn a_truncated_image_has_its_own_error() {
    let image = common::linux_guest_dir().join("Image");
    let data = std::fs::read(&image).unwrap();
    let cut = temp_file("truncated-Image", &data[..data.len() / 2]);
    assert_one_clear_error(&["run", "--kernel", &cut], "the kernel Image is truncated");
}

#[test]
fn a_raw_binary_is_entered_like_an_image() {
    // At RAM + 0x80000 with x0 = the device tree: checks the FDT magic at
    // x0, then PSCI SYSTEM_OFF (exit 0); a wrong x0 ends in an undefined
    // instruction with no vectors (a crash, exit 2).
    let words: [u32; 9] = [
        0xb9400001, // ldr w1, [x0]
        0x5281ba02, // movz w2, #0x0dd0
        0x72bdbfc2, // movk w2, #0xedfe, lsl #16
        0x6b02003f, // cmp w1, w2
        0x54000081, // b.ne fail
        0x52800100, // movz w0, #8
        0x72b08000, // movk w0, #0x8400, lsl #16 (SYSTEM_OFF)
        0xd4000002, // hvc #0
        0x00000000, // fail: udf #0
    ];
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let raw = temp_file("raw.bin", &bytes);
    let (code, err) = run(&["run", "--kernel", &raw, "--mem", "64M"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn usage_errors_are_bad_input_and_help_shows_exit_codes() {
    let k = fake_image("image-usage", 8 << 20);
    assert_usage_error(
        &["run", "--kernel", &k, "--frobnicate"],
        "unexpected argument",
    );
    assert_usage_error(&["run"], "required arguments were not provided");
    assert_usage_error(
        &["run", "--kernel", &k, "--kernel", &k],
        "cannot be used multiple times",
    );
    assert_usage_error(
        &["run", "--kernel", &k, "--mem", "1G", "--mem", "2G"],
        "cannot be used multiple times",
    );
    assert_usage_error(
        &["run", "--kernel", &k, "--rng", "--rng"],
        "cannot be used multiple times",
    );
    let long = "x".repeat(2048);
    assert_one_clear_error(
        &["run", "--kernel", &k, "--cmdline", &long],
        "--cmdline is 2048 bytes",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_pocketvisor"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for line in [
        "Exit codes:",
        "  1    bad input",
        "  2    the guest crashed",
        "  3    stopped by SIGTERM",
        "  130  quit by the user",
    ] {
        assert!(help.contains(line), "--help lacks {line:?}:\n{help}");
    }
}

#[test]
fn memory_beyond_the_host_needs_overcommit() {
    let k = fake_image("image-mem", 8 << 20);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    let twice = format!("{}M", kib * 2 / 1024);
    assert_one_clear_error(
        &["run", "--kernel", &k, "--mem", &twice],
        "add --overcommit",
    );
}

#[test]
fn bad_memory_sizes() {
    let k = fake_image("image-small", 8 << 20);
    assert_one_clear_error(&["run", "--kernel", &k, "--mem", "lots"], "not a size");
    assert_one_clear_error(&["run", "--kernel", &k, "--mem", "16M"], "--mem must be");
    let big = fake_image("image-big", 100 << 20);
    assert_one_clear_error(
        &["run", "--kernel", &big, "--mem", "128M"],
        "guest memory too small",
    );
}

#[test]
fn initrd_problems() {
    let k = fake_image("image-ok", 8 << 20);
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
    let k = fake_image("image-cpus", 8 << 20);
    assert_one_clear_error(&["run", "--kernel", &k, "--cpus", "0"], "--cpus must be");
    assert_one_clear_error(
        &["run", "--kernel", &k, "--cpus", "9"],
        "--cpus must be between 1 and 8",
    );
    assert_one_clear_error(&["run", "--kernel", &k, "--cpus", "x"], "invalid value");
}

#[test]
fn bad_device_options() {
    let k = fake_image("image-devs", 8 << 20);
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
    let deep = scratch().join("no/such/dirs/lan");
    assert_one_clear_error(
        &[
            "run",
            "--kernel",
            &k,
            "--net",
            &format!("socket={}", deep.display()),
        ],
        "its parent directory",
    );
    assert!(!scratch().join("no").exists(), "no directories made");
    assert_one_clear_error(
        &[
            "run",
            "--kernel",
            &k,
            "--net",
            "socket=/tmp/x,mac=00:00:00:00:00:00",
        ],
        "is the all-zero address",
    );
    let disk = temp_file("twice.img", &[0u8; 4096]);
    assert_one_clear_error(
        &["run", "--kernel", &k, "--disk", &disk, "--disk", &disk],
        "is given twice",
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
    assert_one_clear_error(
        &["run", "--kernel", &k, "--api", &not_a_socket],
        "exists and is not a socket",
    );
    assert_eq!(std::fs::read(&not_a_socket).unwrap(), b"keep me");
    let disks: Vec<String> = (0..33)
        .map(|i| temp_file(&format!("small{i}.img"), &[0u8; 4096]))
        .collect();
    let mut many = vec!["run", "--kernel", &k];
    for disk in &disks {
        many.extend(["--disk", disk]);
    }
    assert_one_clear_error(&many, "too many virtio devices: 33 (at most 32)");
    let odd = temp_file("odd.img", &[0u8; 1000]);
    assert_one_clear_error(
        &["run", "--kernel", &k, "--disk", &odd],
        "not a whole number of 512-byte sectors",
    );
}
