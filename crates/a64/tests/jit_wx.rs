//! The block compiler's code buffer is never writable and executable at
//! the same time: after compiled code has run, /proc/self/maps shows the
//! buffer as two views of one memfd (read+execute, read+write) and no
//! mapping of the process is both writable and executable.

use a64::{Cpu, Exit, FlatMemory};

#[test]
fn code_buffer_is_never_writable_and_executable() {
    // x0 = 0; loop 1000 times: x0 += 3; then wfi.
    let mut mem = FlatMemory::new(0x1000, 0x1000);
    mem.load_code(
        0x1000,
        &[
            0xd2800000, // mov x0, #0
            0xd2807d01, // mov x1, #1000
            0x91000c00, // add x0, x0, #3
            0xf1000421, // subs x1, x1, #1
            0x54ffffc1, // b.ne -8
            0xd503207f, // wfi
        ],
    );
    let mut cpu = Cpu::new_system(0);
    cpu.compile_on_first_run();
    cpu.pc = 0x1000;
    assert_eq!(cpu.run(&mut mem, 100_000), Exit::Wfi);
    assert_eq!(cpu.xreg(0), 3000);

    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    let perms = |line: &str| line.split_whitespace().nth(1).unwrap_or("").to_string();
    let wx: Vec<&str> = maps
        .lines()
        .filter(|l| {
            let p = perms(l);
            p.contains('w') && p.contains('x')
        })
        .collect();
    assert!(
        wx.is_empty(),
        "writable and executable mappings:\n{}",
        wx.join("\n")
    );
    if cfg!(target_arch = "x86_64") && std::env::var_os("PV_NO_JIT").is_none() {
        let jit: Vec<String> = maps
            .lines()
            .filter(|l| l.contains("pocketvisor-jit"))
            .map(perms)
            .collect();
        assert!(
            jit.iter().any(|p| p == "r-xs"),
            "no executable JIT view: {jit:?}"
        );
        assert!(
            jit.iter().any(|p| p == "rw-s"),
            "no writable JIT view: {jit:?}"
        );
    }
}
