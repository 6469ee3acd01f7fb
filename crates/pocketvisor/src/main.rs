//! `pocketvisor`: the mobile hypervisor's command line.

mod api;
mod console;
mod exit;
mod image_cli;
mod migrate_cli;
mod phone_cli;
mod stop;
mod trust_cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vmm::{parse_size, DiskConfig, NetConfig, PortConfig, Vm, VmConfig, VmEnd, VsockConfig};

/// Pocketvisor runs several phone operating systems side by side, each in its own VM.
#[derive(Parser, Debug)]
#[command(name = "pocketvisor", version, about, after_help = exit::TABLE)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Boot an arm64 Linux kernel in a VM with its serial console on this terminal.
    /// Ctrl-A x quits; Ctrl-A Ctrl-A sends a Ctrl-A.
    #[command(after_help = exit::TABLE)]
    Run(RunArgs),
    /// Several VMs side by side from one manifest (see docs/PHONE.md).
    #[command(subcommand)]
    Phone(PhoneCommand),
    /// Prints the measured-boot log of a phone's VM and its measurement,
    /// without booting it (what a trusted VM is measured as).
    Measure {
        /// The phone's manifest.
        manifest: PathBuf,
        /// The VM's name in it.
        vm: String,
    },
    /// Checks attestation evidence (see docs/TRUST.md).
    #[command(subcommand)]
    Attest(AttestCommand),
    /// Portable VM images.
    #[command(subcommand)]
    Image(ImageCommand),
}

#[derive(Subcommand, Debug)]
enum AttestCommand {
    /// Verifies evidence from a trusted VM: the certificate chain up to the
    /// phone's root key, the signatures, the nonce and (with --expect) the
    /// measurement. Prints the verified claims as JSON (exit 0), or the
    /// reason it was rejected (exit 1).
    Verify {
        /// The evidence (what `phone attest` or the trust device gave).
        #[arg(long, value_name = "FILE")]
        evidence: PathBuf,
        /// The challenge the evidence must answer, as hex.
        #[arg(long, value_name = "HEX")]
        nonce: String,
        /// The phone's root public key (what `phone identity` prints).
        #[arg(long, value_name = "FILE")]
        root_key: PathBuf,
        /// The measurement the VM must run (what `measure` prints).
        #[arg(long, value_name = "MEASUREMENT")]
        expect: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ImageCommand {
    /// Exports a running VM of a phone as one portable image file: a
    /// snapshot of it, its kernel, initrd and disks, compressed, encrypted
    /// to a passphrase or a recipient phone, signed by this phone. Trusted
    /// VMs are refused.
    Export {
        #[command(flatten)]
        vm: VmArgs,
        /// The image file to write (never replaced).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Encrypt to the passphrase in this file (Argon2id).
        #[arg(long, value_name = "F", conflicts_with = "recipient")]
        passphrase_file: Option<PathBuf>,
        /// Encrypt to this phone (what `phone identity --recipient` prints there).
        #[arg(long, value_name = "PUBKEY")]
        recipient: Option<String>,
        /// A cold image: the VM's configuration and disks, no running state
        /// (the VM must be stopped); it boots afresh where it is imported.
        #[arg(long)]
        cold: bool,
    },
    /// Shows an image's header (VM, size, signer, cipher) without its key.
    Inspect {
        /// The image file.
        file: PathBuf,
    },
    /// Verifies an image whole, then adds its VM to a phone's state
    /// directory. A phone that is up takes it at once (a snapshot image
    /// resumes, a cold one boots); otherwise it does at its next
    /// `phone up`.
    Import {
        /// The image file.
        file: PathBuf,
        #[command(flatten)]
        phone: PhoneDir,
        /// The passphrase, if the image is encrypted to one.
        #[arg(long, value_name = "F")]
        passphrase_file: Option<PathBuf>,
        /// Another phone whose images to accept: what `phone identity`
        /// prints there, or a file holding it; this phone's own are always
        /// accepted.
        #[arg(long, value_name = "KEY")]
        trust_signer: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum PhoneCommand {
    /// Starts the phone in the background — its supervisor and every VM —
    /// and shows the foreground VM's console: Ctrl-A 1..9 switches VM,
    /// Ctrl-A x detaches (the phone keeps running), Ctrl-A q shuts it down.
    Up {
        /// The phone's manifest (see docs/PHONE.md).
        manifest: PathBuf,
        /// Return once the phone answers, without showing a console.
        #[arg(long)]
        detach: bool,
    },
    /// One row per VM (state, process, CPU, memory, balloon, restarts).
    Status {
        #[command(flatten)]
        phone: PhoneDir,
        /// As JSON: {"phone": NAME, "vms": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// Starts a stopped or crashed VM (if the phone's memory budget has room).
    Start(VmArgs),
    /// Stops a VM in order (its disks flushed).
    Stop(VmArgs),
    /// Pauses a VM: its vCPUs and devices stop, using no host CPU.
    Pause(VmArgs),
    /// Resumes a paused VM.
    Resume(VmArgs),
    /// Brings a VM to the foreground: its console is the one `phone up`
    /// shows, and it runs without the background CPU quota.
    Switch(VmArgs),
    /// Attaches this terminal to a VM's console (Ctrl-A x detaches).
    Console(VmArgs),
    /// Sets a VM's balloon target, e.g. 64M (0 lets all memory go back to the guest).
    Balloon {
        #[command(flatten)]
        vm: VmArgs,
        /// The balloon's size.
        #[arg(value_parser = parse_size)]
        size: u64,
    },
    /// Prints the phone's root public key: what relying parties trust when
    /// they verify its VMs' evidence.
    Identity {
        #[command(flatten)]
        phone: PhoneDir,
        /// Print instead the X25519 key other phones encrypt images to
        /// (`image export --recipient`).
        #[arg(long)]
        recipient: bool,
    },
    /// Writes evidence for a running trusted VM answering a nonce.
    Attest {
        #[command(flatten)]
        vm: VmArgs,
        /// The challenge, as hex (1 to 64 bytes).
        #[arg(long, value_name = "HEX")]
        nonce: String,
        /// Where to write the evidence.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Moves a running VM live to another phone (`phone receive` there):
    /// its RAM is copied while it runs, then it pauses, the rest and its
    /// state follow, and it continues there. Ctrl-C cancels (it runs on
    /// here).
    Migrate {
        #[command(flatten)]
        vm: VmArgs,
        /// The target phone's ADDRESS:PORT.
        #[arg(long, value_name = "ADDR:PORT")]
        to: String,
        /// The target phone's identity key (what `phone identity` prints
        /// there), or a file holding it.
        #[arg(long, value_name = "FILE")]
        target_key: PathBuf,
        /// The pause to aim at, in milliseconds.
        #[arg(long, value_name = "MS")]
        max_downtime: Option<u32>,
        /// Send the disks' contents too (while the guest is paused), for a
        /// phone that does not share their storage.
        #[arg(long)]
        copy_disks: bool,
        /// No progress display.
        #[arg(long)]
        quiet: bool,
    },
    /// Waits for one VM to migrate in from the phone whose identity key is
    /// given (authenticated both ways; it joins this phone and runs).
    Receive {
        #[command(flatten)]
        phone: PhoneDir,
        /// Where to listen: ADDRESS:PORT.
        #[arg(long, value_name = "ADDR:PORT")]
        listen: String,
        /// The source phone's identity key, or a file holding it.
        #[arg(long, value_name = "FILE")]
        source_key: PathBuf,
        /// No progress display.
        #[arg(long)]
        quiet: bool,
    },
    /// Snapshots a VM of a running phone into a new directory (pause,
    /// write its state and the RAM pages that hold data, resume). Trusted
    /// VMs are refused.
    Snapshot {
        #[command(flatten)]
        vm: VmArgs,
        /// The snapshot directory to create (its parent must exist).
        #[arg(long, value_name = "SNAPDIR")]
        out: PathBuf,
    },
    /// Starts a stopped VM from a snapshot of it: the guest continues where
    /// the snapshot was taken (its disks must be as they were then). With
    /// --as, starts a clone of it under a new name instead (its own CID and
    /// MAC addresses) that joins the phone.
    Restore {
        /// The snapshot directory.
        snapshot: PathBuf,
        #[command(flatten)]
        phone: PhoneDir,
        /// Start a clone of the VM named NAME.
        #[arg(long = "as", value_name = "NAME")]
        as_name: Option<String>,
        /// Give the clone copies of the disks (in its directory under
        /// STATE_DIR/imported) instead of the same files.
        #[arg(long, requires = "as_name")]
        copy_disks: bool,
        /// Run the clone on this backend (kvm, soft or auto) instead of the
        /// original's: a snapshot taken under KVM continues on the software
        /// CPU, and the reverse.
        #[arg(long, requires = "as_name", value_name = "kvm|soft|auto")]
        accel: Option<vmm::Accel>,
    },
    /// Stops every VM in order (disks flushed) and ends the phone.
    Down {
        #[command(flatten)]
        phone: PhoneDir,
    },
    /// The phone's supervisor and API in this process (what `up` starts).
    #[command(hide = true)]
    Supervise {
        /// The phone's manifest.
        #[arg(long)]
        manifest: PathBuf,
    },
    /// Runs one VM of a phone in this process, sandboxed: what the phone's
    /// supervisor starts for each VM (exit codes: 0 powered off, 1 could not
    /// start, 2 crashed, 3 stopped, 4 reset).
    #[command(hide = true)]
    Worker {
        /// The phone's manifest.
        #[arg(long)]
        manifest: PathBuf,
        /// The VM's name in the manifest.
        #[arg(long)]
        vm: String,
        /// Started by a supervisor: take the protocol sockets at
        /// descriptors 3 to 5.
        #[arg(long)]
        supervised: bool,
        /// Continue the VM from this snapshot directory instead of booting.
        #[arg(long, value_name = "SNAPDIR")]
        restore: Option<PathBuf>,
        /// Continue a VM migrated in: its RAM and state come from the
        /// supervisor.
        #[arg(long, requires = "supervised", conflicts_with = "restore")]
        incoming: bool,
    },
}

/// Names a running phone.
#[derive(clap::Args, Debug)]
struct PhoneDir {
    /// The running phone's state directory (its manifest's state_dir).
    #[arg(long = "phone", value_name = "DIR")]
    dir: PathBuf,
}

/// Names one VM of a running phone.
#[derive(clap::Args, Debug)]
struct VmArgs {
    /// The VM's name.
    vm: String,
    #[command(flatten)]
    phone: PhoneDir,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The arm64 Linux Image (Debian's /boot/vmlinuz-* is one). A file
    /// without an Image header is loaded as a raw binary at RAM base +
    /// 0x80000 and entered like an Image (x0 = device tree), as QEMU does.
    #[arg(long)]
    kernel: PathBuf,
    /// An initramfs (cpio, optionally compressed).
    #[arg(long)]
    initrd: Option<PathBuf>,
    /// The kernel command line (at most 2047 bytes).
    #[arg(long, default_value = "console=ttyAMA0")]
    cmdline: String,
    /// Guest memory, e.g. 256M or 1G (at most the host's RAM unless --overcommit).
    #[arg(long, default_value = "256M", value_parser = parse_size)]
    mem: u64,
    /// Allow --mem beyond the host's physical RAM (pages are committed on touch).
    #[arg(long)]
    overcommit: bool,
    /// Number of virtual CPUs, 1 to 8; each runs on a host thread of its
    /// own (the software CPU; KVM takes 1 for now).
    #[arg(long, default_value_t = 1)]
    cpus: usize,
    /// What runs the vCPUs: kvm (hardware virtualization: an aarch64 host
    /// with /dev/kvm), soft (our software AArch64 CPU, any host) or auto
    /// (kvm where it works, else soft). The choice is printed on stderr.
    #[arg(long, default_value = "auto", value_name = "kvm|soft|auto")]
    accel: vmm::Accel,
    /// A raw disk image as a virtio-blk disk: PATH or PATH,ro. Repeatable (vda, vdb, ...).
    /// A writable disk is locked for this VM alone; read-only disks can be
    /// shared by any number of VMs that all give ,ro.
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
    /// "balloon SIZE" sets the balloon target, "balloon" reports its state,
    /// "pause" and "resume" stop and continue the VM, "state" tells which.
    /// Created mode 0600; an existing file or a live socket is never replaced.
    #[arg(long, value_name = "PATH")]
    api: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print to stdout and succeed; every usage
            // error is bad input.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::POWERED_OFF
            });
        }
    };
    // A VMM bug must not leave the user's terminal in raw mode.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        console::restore_terminal();
        default_hook(info);
    }));
    match cli.command {
        Command::Run(args) => run(args),
        Command::Phone(p) => phone(p),
        Command::Measure { manifest, vm } => trust_cli::measure(&manifest, &vm),
        Command::Attest(AttestCommand::Verify {
            evidence,
            nonce,
            root_key,
            expect,
        }) => trust_cli::verify(&evidence, &nonce, &root_key, expect.as_deref()),
        Command::Image(ImageCommand::Export {
            vm,
            out,
            passphrase_file,
            recipient,
            cold,
        }) => image_cli::export(
            &vm.phone.dir,
            &vm.vm,
            &out,
            passphrase_file.as_deref(),
            recipient.as_deref(),
            cold,
        ),
        Command::Image(ImageCommand::Inspect { file }) => image_cli::inspect(&file),
        Command::Image(ImageCommand::Import {
            file,
            phone,
            passphrase_file,
            trust_signer,
        }) => image_cli::import(&file, &phone.dir, passphrase_file.as_deref(), &trust_signer),
    }
}

fn phone(command: PhoneCommand) -> ExitCode {
    use PhoneCommand as P;
    match command {
        P::Up { manifest, detach } => phone_cli::up(&manifest, detach),
        P::Status { phone, json } => phone_cli::status(&phone.dir, json),
        P::Start(a) => phone_cli::action(&a.phone.dir, "start", &a.vm),
        P::Stop(a) => phone_cli::action(&a.phone.dir, "stop", &a.vm),
        P::Pause(a) => phone_cli::action(&a.phone.dir, "pause", &a.vm),
        P::Resume(a) => phone_cli::action(&a.phone.dir, "resume", &a.vm),
        P::Switch(a) => phone_cli::action(&a.phone.dir, "switch", &a.vm),
        P::Console(a) => phone_cli::console(&a.phone.dir, &a.vm),
        P::Balloon { vm, size } => phone_cli::balloon(&vm.phone.dir, &vm.vm, size),
        P::Down { phone } => phone_cli::down(&phone.dir),
        P::Identity { phone, recipient } => trust_cli::identity(&phone.dir, recipient),
        P::Attest { vm, nonce, out } => trust_cli::attest(&vm.phone.dir, &vm.vm, &nonce, &out),
        P::Snapshot { vm, out } => phone_cli::snapshot(&vm.phone.dir, &vm.vm, &out),
        P::Migrate {
            vm,
            to,
            target_key,
            max_downtime,
            copy_disks,
            quiet,
        } => migrate_cli::migrate(
            &vm.phone.dir,
            &vm.vm,
            &to,
            &target_key,
            max_downtime,
            copy_disks,
            quiet,
        ),
        P::Receive {
            phone,
            listen,
            source_key,
            quiet,
        } => migrate_cli::receive(&phone.dir, &listen, &source_key, quiet),
        P::Restore {
            snapshot,
            phone,
            as_name,
            copy_disks,
            accel,
        } => phone_cli::restore(&phone.dir, &snapshot, as_name.as_deref(), copy_disks, accel),
        P::Supervise { manifest } => phone_cli::supervise(&manifest),
        P::Worker {
            manifest,
            vm,
            supervised,
            restore,
            incoming,
        } => {
            let start = match &restore {
                Some(dir) => phone::worker::Start::Restore(dir),
                None if incoming => phone::worker::Start::Incoming,
                None => phone::worker::Start::Boot,
            };
            phone_worker(&manifest, &vm, supervised, start)
        }
    }
}

/// `pocketvisor phone worker`: one VM of a phone, sandboxed.
fn phone_worker(
    manifest: &std::path::Path,
    name: &str,
    supervised: bool,
    start: phone::worker::Start<'_>,
) -> ExitCode {
    if supervised {
        phone::worker::close_unexpected_fds();
    }
    use phone::worker::{exit as code, exit_code, run};
    let manifest = match phone::Manifest::load(manifest) {
        Ok(m) => m,
        Err(e) => return bad_input(&e.to_string()),
    };
    let stop = match stop::StopHandle::install() {
        Ok(s) => s,
        Err(e) => return bad_input(&format!("cannot install signal handlers: {e}")),
    };
    match run(&manifest, name, supervised, start, |vm| {
        stop.watch(vm.board())
    }) {
        Ok(end) => {
            if let VmEnd::Crashed(report) = &end {
                say(&format!("pocketvisor: VM {name} crashed: {report}"));
            }
            ExitCode::from(exit_code(&end))
        }
        Err(e) => {
            say(&format!("pocketvisor: VM {name}: {e}"));
            ExitCode::from(code::FAILED)
        }
    }
}

/// A line for the user on stderr, which may be gone (a closed terminal):
/// then the line is lost, and the exit code still says what happened.
pub(crate) fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn bad_input(message: &str) -> ExitCode {
    say(&format!("pocketvisor: {message}"));
    ExitCode::from(exit::BAD_INPUT)
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
        overcommit: args.overcommit,
        share_memory: false,
        accel: args.accel,
    };
    if let Err(e) = cfg.check() {
        return bad_input(&e);
    }
    let stop = match stop::StopHandle::install() {
        Ok(s) => s,
        Err(e) => return bad_input(&format!("cannot install signal handlers: {e}")),
    };
    let api = match &args.api {
        Some(path) => match api::Api::bind(path) {
            Ok(api) => Some(api),
            Err(e) => return bad_input(&format!("--api: {e}")),
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
                return bad_input(&e.to_string());
            }
        };
        match &console {
            Some(c) => c.retarget(vm.board()),
            None => {
                say(&format!("pocketvisor: vCPUs on {}", vm.backend()));
                console = Some(console::attach(vm.board(), stop.clone()))
            }
        }
        stop.watch(vm.board());
        if let Some(api) = &api {
            api.serve(api::Target {
                control: vm.control(),
            });
        }
        match vm.run() {
            VmEnd::Reset
                if !stop.requested() && !console.as_ref().is_some_and(|c| c.quit_requested()) =>
            {
                continue
            }
            // Leaving the loop drops the VM: disks finish and flush first.
            end => break end,
        }
    };
    let quit_by_user = console.map(|c| c.detach()).unwrap_or(false);
    drop(api);
    match end {
        _ if quit_by_user => {
            say("\r\npocketvisor: quit (Ctrl-A x)");
            ExitCode::from(exit::QUIT)
        }
        VmEnd::Stopped | VmEnd::Reset => {
            say(&format!("\r\npocketvisor: {}", stop.reason()));
            ExitCode::from(exit::STOPPED)
        }
        VmEnd::PoweredOff => ExitCode::from(exit::POWERED_OFF),
        VmEnd::Crashed(report) => {
            say(&format!("\r\npocketvisor: the guest crashed: {report}"));
            ExitCode::from(exit::CRASHED)
        }
    }
}
