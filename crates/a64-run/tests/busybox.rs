//! Debian's busybox-static (arm64) under `a64-run` against qemu-aarch64:
//! stdout, stderr and exit codes must be byte-identical.
//!
//! qemu-user cannot start a new aarch64 process from inside a guest (that needs
//! binfmt_misc), so the comparison runs each applet as its own process, plus a
//! shell script whose commands stay inside the shell's process. A third test
//! runs a script of 60 applets, most started through fork+execve, on our runner.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The busybox binary, fetched by the project's script on first use.
fn busybox() -> PathBuf {
    let bb = repo().join("guests/cache/user/busybox");
    if !bb.exists() {
        let status = Command::new(repo().join("guests/fetch-user-guests.sh"))
            .status()
            .expect("runs guests/fetch-user-guests.sh");
        assert!(status.success(), "guests/fetch-user-guests.sh failed");
    }
    bb
}

/// qemu-aarch64's full path (the guest's PATH is cleared).
fn qemu() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("qemu-aarch64"))
        .find(|p| p.exists())
        .expect("qemu-aarch64 is needed for these tests (apt-get install qemu-user)")
}

/// Runs busybox with `args` and `stdin` in `dir`, on our CPU (`ours`) or under QEMU.
fn run(ours: bool, dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = if ours {
        Command::new(env!("CARGO_BIN_EXE_a64-run"))
    } else {
        let mut c = Command::new(qemu());
        c.args(["-cpu", "cortex-a76"]);
        c
    };
    cmd.arg(busybox())
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/nonexistent")
        .env("TZ", "UTC")
        .env("LC_ALL", "C");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .expect("starts the emulator (qemu-user installed?)");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("waits");
    let _ = writer.join();
    out
}

fn fixture_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("a64-run-busybox-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tree/sub")).unwrap();
    let nums: String = (1..=2000).map(|i| format!("{i}\n")).collect();
    std::fs::write(dir.join("nums"), nums).unwrap();
    std::fs::write(
        dir.join("words"),
        "pear\napple\nfig\napple\nbanana\nfig\napple\n",
    )
    .unwrap();
    std::fs::write(dir.join("a.txt"), "one\ntwo\nthree\n").unwrap();
    std::fs::write(dir.join("b.txt"), "one\n2\nthree\nfour\n").unwrap();
    std::fs::write(dir.join("tree/x"), "x\n").unwrap();
    std::fs::write(dir.join("tree/sub/y"), "yy\n").unwrap();
    dir
}

fn compare(dir: &Path, args: &[&str], stdin: &[u8]) -> Result<(), String> {
    let (o, q) = (run(true, dir, args, stdin), run(false, dir, args, stdin));
    if o.stdout == q.stdout && o.stderr == q.stderr && o.status.code() == q.status.code() {
        return Ok(());
    }
    Err(format!(
        "busybox {args:?}: ours {:?} / qemu {:?}\n  ours stdout {:?}\n  qemu stdout {:?}\n  ours stderr {:?}\n  qemu stderr {:?}",
        o.status.code(),
        q.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&q.stdout),
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&q.stderr)
    ))
}

#[test]
fn applets_match_qemu() {
    let dir = fixture_dir("applets");
    let nums = std::fs::read(dir.join("nums")).unwrap();
    let cases: &[(&[&str], &[u8])] = &[
        (&["echo", "hello", "world"], b""),
        (
            &[
                "printf",
                "%s=%05.1f %x %e|%-6s|\\n",
                "pi",
                "3.14159",
                "255",
                "12345.678",
                "ab",
            ],
            b"",
        ),
        (&["seq", "-s", ",", "1", "3", "30"], b""),
        (&["sort", "-n", "-r"], &nums),
        (&["sort", "-u", "words"], b""),
        (&["uniq", "-c"], b"a\na\nb\nc\nc\nc\n"),
        (
            &["awk", "{ s += $1; n++ } END { print s, n, s / n }"],
            &nums,
        ),
        (&["sed", "-e", "s/[0-9]/#/g", "-e", "5q"], &nums),
        (&["grep", "-E", "-c", "^(1|2)[0-9]*7$", "nums"], b""),
        (&["tr", "a-z", "n-za-m"], b"hello, rot13 world\n"),
        (&["cut", "-d:", "-f1,3"], b"a:b:c:d\n1:2:3:4\n"),
        (
            &["od", "-A", "x", "-t", "x1z"],
            b"binary\x00\x01\x02\xff data",
        ),
        (&["md5sum", "nums"], b""),
        (&["sha1sum", "nums"], b""),
        (&["sha256sum", "nums"], b""),
        (&["sha512sum", "nums"], b""),
        (&["crc32", "nums"], b""),
        (&["wc", "nums", "words"], b""),
        (&["head", "-n", "3", "words"], b""),
        (&["tail", "-c", "20", "nums"], b""),
        (&["expr", "12345", "*", "6789", "+", "17"], b""),
        (&["dc", "-e", "2 64 ^ 3 / p 7 k 22 7 / p"], b""),
        (&["bc"], b"scale=20; 4*a(1)\n2^100\n"),
        (&["factor", "600851475143", "1000000007"], b""),
        (&["diff", "-u", "a.txt", "b.txt"], b""),
        (&["cmp", "a.txt", "b.txt"], b""),
        (&["find", "tree", "-type", "f"], b""),
        (&["ls", "-1", "tree"], b""),
        (&["basename", "/a/b/c.tar.gz", ".gz"], b""),
        (&["dirname", "/a/b/c.tar.gz"], b""),
        (&["base64"], b"Pocketvisor runs phones\n"),
        (&["rev"], b"stressed\ndesserts\n"),
        (&["nl", "words"], b""),
        (
            &["fold", "-w", "7"],
            b"the quick brown fox jumps over the lazy dog\n",
        ),
        (&["paste", "-d", ",", "a.txt", "b.txt"], b""),
        (&["expand"], b"a\tb\tc\n"),
        (&["tac", "words"], b""),
        (
            &[
                "date",
                "-u",
                "-d",
                "@1234567890",
                "+%Y-%m-%d %H:%M:%S %j %a",
            ],
            b"",
        ),
        (&["xxd", "-l", "32", "nums"], b""),
        (&["hexdump", "-C", "-n", "32", "nums"], b""),
        (
            &["strings", "-n", "3"],
            b"\x01\x02abc\x00defg\xff\xfehi\x00",
        ),
        (&["test", "3", "-gt", "2"], b""),
        (&["sum", "nums"], b""),
        (&["cal", "2", "2024"], b""),
        (&["tsort"], b"a b\nb c\nc d\n"),
        (&["comm", "a.txt", "b.txt"], b""),
        (&["shuf", "--random-source=nums", "-n", "1", "-e", "x"], b""),
    ];
    let mut failures = Vec::new();
    let mut applets = std::collections::BTreeSet::new();
    for (args, stdin) in cases {
        applets.insert(args[0]);
        if let Err(e) = compare(&dir, args, stdin) {
            failures.push(e);
        }
    }
    // Round trips through the compressors, on both sides.
    for (pack, unpack) in [
        ("gzip", "gunzip"),
        ("bzip2", "bunzip2"),
        ("xz", "unxz"),
        ("lzop", "unlzop"),
    ] {
        let packed = run(false, &dir, &[pack, "-c"], &nums);
        applets.insert(pack);
        applets.insert(unpack);
        if let Err(e) = compare(&dir, &[pack, "-c"], &nums) {
            failures.push(e);
        }
        if let Err(e) = compare(&dir, &[unpack, "-c"], &packed.stdout) {
            failures.push(e);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("{} applets compared", applets.len());
    assert!(applets.len() >= 40, "only {} applets", applets.len());
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn shell_script_matches_qemu() {
    let dir = fixture_dir("shell");
    let script = repo().join("guests/scripts/busybox-shell.sh");
    let script = script.to_str().unwrap();
    let result = compare(&dir, &["sh", script], b"");
    let ours = run(true, &dir, &["sh", script], b"");
    let _ = std::fs::remove_dir_all(&dir);
    result.unwrap();
    assert!(
        String::from_utf8_lossy(&ours.stdout).ends_with("done\n"),
        "the script ran to its end"
    );
}

#[test]
fn applet_script_with_fork_and_exec_runs_to_completion() {
    // qemu-user cannot run this one (its applets are started with execve), so it checks
    // that our runner completes it cleanly; the applets' results are compared above.
    let dir = fixture_dir("exec");
    let script = repo().join("guests/scripts/busybox-applets.sh");
    let out = run(true, &dir, &["sh", script.to_str().unwrap()], b"");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("bzip2 round trip") && stdout.ends_with("done\n"),
        "stdout: {stdout}"
    );
}
