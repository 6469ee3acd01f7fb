//! The exit codes of `pocketvisor run`: one table, shown by `--help` and
//! in README.md. Scripts depend on them.

/// The guest powered off (or rebooted into power-off).
pub const POWERED_OFF: u8 = 0;
/// Bad input or usage: nothing was started (or the VM could not be built).
pub const BAD_INPUT: u8 = 1;
/// The guest crashed: its kernel panicked (without `panic=N`), or it
/// failed in a way the VMM cannot continue (a report is printed).
pub const CRASHED: u8 = 2;
/// The VMM was stopped by SIGTERM, SIGINT or SIGHUP, or its console
/// terminal was closed; the VM was stopped in order (disks flushed).
pub const STOPPED: u8 = 3;
/// The user quit with Ctrl-A x.
pub const QUIT: u8 = 130;

/// The table as `--help` shows it.
pub const TABLE: &str = "Exit codes:
  0    the guest powered off
  1    bad input or usage (nothing was run)
  2    the guest crashed (kernel panic without panic=N, or a fatal guest error)
  3    stopped by SIGTERM, SIGINT or SIGHUP, or the console was closed
       (the VM is stopped in order: disks flushed, terminal restored, sockets removed)
  130  quit by the user (Ctrl-A x)";
