//! `pocketvisor`: the mobile hypervisor's command line.

mod api;
mod console;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vmm::{parse_size, DiskConfig, NetConfig, PortConfig, Vm, VmConfig, VmEnd, VsockConfig};

/// Pocketvisor runs several phone operating systems side by side, each in its own VM.
#[derive(Parser, Debug)]
#[command(name = "pocketvisor", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Boot an arm64 Linux kernel in a VM with its serial console on this terminal.
    /// Ctrl-A x quits; Ctrl-A Ctrl-A sends a Ctrl-A.
    Run(RunArgs),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The arm64 Linux Image (Debian's /boot/vmlinuz-* is one).
    #[arg(long)]
    kernel: PathBuf,
    /// An initramfs (cpio, optionally compressed).
    #[arg(long)]
    initrd: Option<PathBuf>,
    /// The kernel command line.
    #[arg(long, default_value = "console=ttyAMA0")]
    cmdline: String,
    /// Guest memory, e.g. 256M or 1G.
    #[arg(long, default_value = "256M", value_parser = parse_size)]
    mem: u64,
    /// Number of virtual CPUs.
    #[arg(long, default_value_t = 1)]
    cpus: usize,
    /// A raw disk image as a virtio-blk disk: PATH or PATH,ro. Repeatable (vda, vdb, ...).
    #[arg(long = "disk", value_name = "PATH[,ro]")]
    disks: Vec<DiskConfig>,
    /// Add a virtio-rng device fed from the host's getrandom.
    #[arg(long)]
    rng: bool,
    /// Add a virtio-balloon device (free page reporting, statistics; the
    /// target is set through --api).
    #[arg(long)]
    balloon: bool,
    /// Add a virtio-console and make its hvc0 the interactive console: hvc0
    /// writes to this terminal and typed input goes to hvc0 (the test
    /// initramfs starts its shell there with pv.shell=hvc0).
    #[arg(long)]
    vconsole: bool,
    /// A named virtio-console port (the guest's /dev/vport0pN) served on a
    /// host unix socket: NAME=PATH. Repeatable; implies --vconsole.
    #[arg(long = "port", value_name = "NAME=PATH")]
    ports: Vec<PortConfig>,
    /// A virtio-net interface: tap=NAME (a host TAP device) or socket=DIR (a
    /// virtual switch: VMs given the same directory share one Ethernet, no
    /// privileges needed); add ,mac=MAC to choose its address. Repeatable.
    #[arg(long = "net", value_name = "tap=NAME|socket=DIR[,mac=MAC]")]
    nets: Vec<NetConfig>,
    /// A virtio-vsock device: the guest's context ID and a host unix socket.
    /// Host programs connect to PATH and send "CONNECT <port>\n" (answered
    /// "OK <n>\n"); guest connections to host port P reach a listener on PATH_P.
    #[arg(long, value_name = "cid=N,uds=PATH")]
    vsock: Option<VsockConfig>,
    /// A unix socket for controlling the running VM; one command per line:
    /// "balloon SIZE" sets the balloon target, "balloon" reports its state.
    #[arg(long, value_name = "PATH")]
    api: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run(args),
    }
}

fn run(args: RunArgs) -> ExitCode {
    let cfg = VmConfig {
        kernel: args.kernel,
        initrd: args.initrd,
        cmdline: args.cmdline,
        mem: args.mem,
        cpus: args.cpus,
        disks: args.disks,
        rng: args.rng,
        balloon: args.balloon,
        vconsole: args.vconsole,
        ports: args.ports,
        nets: args.nets,
        vsock: args.vsock,
    };
    let api = match &args.api {
        Some(path) => match api::Api::bind(path) {
            Ok(api) => Some(api),
            Err(e) => {
                eprintln!(
                    "pocketvisor: cannot listen on --api '{}': {e}",
                    path.display()
                );
                return ExitCode::from(1);
            }
        },
        None => None,
    };
    let mut console: Option<console::Console> = None;
    // A guest reset (e.g. `reboot`) boots the same configuration again.
    let end = loop {
        let hvc: Box<dyn std::io::Write + Send> = Box::new(std::io::stdout());
        let mut vm = match Vm::with_hvc(&cfg, Box::new(std::io::stdout()), Some(hvc)) {
            Ok(vm) => vm,
            Err(e) => {
                if let Some(c) = console.take() {
                    c.detach();
                }
                eprintln!("pocketvisor: {e}");
                return ExitCode::from(1);
            }
        };
        match &console {
            Some(c) => c.retarget(vm.board()),
            None => console = Some(console::attach(vm.board())),
        }
        if let Some(api) = &api {
            api.serve(vm.board(), vm.balloon());
        }
        match vm.run() {
            VmEnd::Reset if !console.as_ref().is_some_and(|c| c.quit_requested()) => continue,
            end => break end,
        }
    };
    let quit_by_user = console.map(|c| c.detach()).unwrap_or(false);
    match end {
        _ if quit_by_user => {
            eprintln!("\r\npocketvisor: quit (Ctrl-A x)");
            ExitCode::from(130)
        }
        VmEnd::PoweredOff | VmEnd::Reset => ExitCode::SUCCESS,
        VmEnd::Crashed(report) => {
            eprintln!("\r\npocketvisor: the guest crashed: {report}");
            ExitCode::from(2)
        }
    }
}
