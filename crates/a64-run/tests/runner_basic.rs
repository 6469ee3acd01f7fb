//! The runner on small freestanding aarch64 programs (guests/c/*.c without
//! libc), built at test time with aarch64-linux-gnu-gcc.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file this test made in the temporary directory, deleted when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn path(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Builds guests/c/NAME.c freestanding into a temp dir. Every call writes
/// its own file: tests run in parallel and may build the same source.
fn build(name: &str) -> TempFile {
    static BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = TempFile(
        std::env::temp_dir().join(format!("a64-run-test-{}-{n}-{name}", std::process::id())),
    );
    let status = Command::new("aarch64-linux-gnu-gcc")
        .args(["-static", "-nostdlib", "-O2", "-fno-builtin", "-o"])
        .arg(out.path())
        .arg(repo().join(format!("guests/c/{name}.c")))
        .status()
        .expect("aarch64-linux-gnu-gcc is needed for these tests (apt-get install gcc-aarch64-linux-gnu)");
    assert!(status.success(), "building {name}");
    out
}

fn a64_run(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_a64-run"))
        .args(args)
        .output()
        .expect("runs a64-run")
}

#[test]
fn fork_execve_of_self_and_wait4() {
    let exe = build("forkexec");
    let out = a64_run(&[exe.path()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "child running as /proc/self/exe\nparent: wait4 1 status 7\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_guest_segfault_kills_the_runner_with_sigsegv() {
    use std::os::unix::process::ExitStatusExt;
    let exe = build("forkexec");
    let out = a64_run(&[exe.path(), "crash".as_ref()]);
    const SIGSEGV: i32 = 11;
    assert_eq!(
        out.status.signal(),
        Some(SIGSEGV),
        "status {:?}",
        out.status
    );
}

#[test]
fn non_elf_input_gets_one_clear_error() {
    let f = TempFile(std::env::temp_dir().join(format!("a64-run-not-elf-{}", std::process::id())));
    std::fs::write(&f.0, b"hello").unwrap();
    let mut perms = std::fs::metadata(&f.0).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&f.0, perms).unwrap();
    let out = a64_run(&[f.path()]);
    assert_eq!(out.status.code(), Some(127));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not an ELF file"), "{err}");
    assert_eq!(err.lines().count(), 1);
    let out = a64_run(&["/nonexistent/program".as_ref()]);
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such file"));
}

#[test]
fn x86_programs_are_refused_not_run() {
    let out = a64_run(&["/bin/true".as_ref()]);
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an aarch64 executable"));
}
