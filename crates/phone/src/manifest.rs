//! The phone manifest (TOML): the phone's name, state directory and memory
//! budget, its VMs and the guest-to-guest channels its policy opens. The
//! schema is in docs/PHONE.md; `phones/demo.toml` is an example.
//!
//! Reading it refuses, with one error naming the key path
//! (`vm[1].mem: "12Q" is not a size`), unknown keys, bad values, duplicate
//! names or CIDs, channels naming unknown VMs, and VMs that together need
//! more RAM than the phone's budget.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use vmm::{DiskConfig, NetConfig, VmConfig, VsockConfig};

/// Largest manifest read (a phone's manifest is a few KiB).
const MAX_MANIFEST: u64 = 1 << 20;
/// Most VMs on one phone.
pub const MAX_VMS: usize = 16;
/// The first vsock CID given by position (0..2 are reserved by virtio).
const FIRST_CID: u64 = 3;

/// Why a manifest was refused: where (`vm[1].mem`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The key path, empty for the file as a whole.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl std::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ManifestError {}

fn error(path: impl Into<String>, message: impl Into<String>) -> ManifestError {
    ManifestError {
        path: path.into(),
        message: message.into(),
    }
}

/// A size written as text ("256M", "1G", "65536").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        vmm::parse_size(&text)
            .map(Size)
            .map_err(|_| de::Error::custom(format!("\"{text}\" is not a size")))
    }
}

/// What a VM is for; it decides how the phone treats it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The user's open OS.
    Open,
    /// The corporate personality, under company policy.
    Corporate,
    /// A trusted service (keys, DRM, billing): never ballooned, not dumpable.
    Trusted,
}

impl Role {
    /// The role as the manifest writes it: open, corporate or trusted.
    pub fn name(self) -> &'static str {
        match self {
            Role::Open => "open",
            Role::Corporate => "corporate",
            Role::Trusted => "trusted",
        }
    }
}

/// What the supervisor does when a VM ends on its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    /// Leave it stopped or crashed.
    Never,
    /// Start it again after a crash.
    #[default]
    OnCrash,
}

/// The `[phone]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneTable {
    name: String,
    state_dir: PathBuf,
    memory: Size,
    #[serde(default = "default_background_cpu")]
    background_cpu: u32,
    #[serde(default = "yes")]
    share_memory: bool,
    low_memory: Option<Size>,
}

/// A background VM's vCPU quota unless the manifest says otherwise.
const DEFAULT_BACKGROUND_CPU: u32 = 25;
/// Host memory available under which the phone reclaims, unless the
/// manifest says otherwise.
pub const DEFAULT_LOW_MEMORY: u64 = 256 << 20;

fn default_background_cpu() -> u32 {
    DEFAULT_BACKGROUND_CPU
}

/// A `[[vm]]` entry as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VmTable {
    name: String,
    role: Role,
    kernel: PathBuf,
    initrd: Option<PathBuf>,
    #[serde(default)]
    cmdline: String,
    mem: Size,
    #[serde(default = "one")]
    cpus: usize,
    #[serde(default)]
    disks: Vec<String>,
    #[serde(default)]
    net: Vec<String>,
    #[serde(default)]
    balloon: bool,
    #[serde(default)]
    rng: bool,
    #[serde(default)]
    restart: Restart,
    #[serde(default)]
    foreground: bool,
    #[serde(default = "yes")]
    autostart: bool,
    #[serde(default)]
    debug: bool,
    cid: Option<u64>,
    #[serde(default)]
    accel: vmm::Accel,
}

/// A `[[vm]]` entry as [`VmEntry::to_toml`] writes it.
#[derive(Serialize)]
struct VmOut<'a> {
    name: &'a str,
    role: &'static str,
    cid: u64,
    kernel: &'a Path,
    #[serde(skip_serializing_if = "Option::is_none")]
    initrd: Option<&'a Path>,
    cmdline: &'a str,
    mem: String,
    cpus: usize,
    disks: Vec<String>,
    net: Vec<String>,
    balloon: bool,
    rng: bool,
    restart: &'static str,
    autostart: bool,
    accel: String,
}

impl VmEntry {
    /// The entry as a `[[vm]]` table with absolute paths and its CID, for
    /// `STATE_DIR/imported/NAME/vm.toml` (a VM added to a phone by an
    /// import, a clone or a migration). It starts with the phone.
    pub fn to_toml(&self) -> Result<String, String> {
        let c = &self.config;
        let disks = c
            .disks
            .iter()
            .map(|d| {
                let ro = if d.read_only { ",ro" } else { "" };
                format!("{}{ro}", d.path.display())
            })
            .collect();
        let net = c
            .nets
            .iter()
            .map(|n| {
                let backend = match &n.backend {
                    vmm::NetBackendConfig::Tap(t) => format!("tap={t}"),
                    vmm::NetBackendConfig::Socket(p) => format!("socket={}", p.display()),
                };
                match n.mac {
                    Some(m) => format!(
                        "{backend},mac={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                        m[0], m[1], m[2], m[3], m[4], m[5]
                    ),
                    None => backend,
                }
            })
            .collect();
        let out = VmOut {
            name: &self.name,
            role: self.role.name(),
            cid: self.cid,
            kernel: &c.kernel,
            initrd: c.initrd.as_deref(),
            cmdline: &c.cmdline,
            mem: format!("{}K", c.mem >> 10),
            cpus: c.cpus,
            disks,
            net,
            balloon: c.balloon,
            rng: c.rng,
            restart: match self.restart {
                Restart::Never => "never",
                Restart::OnCrash => "on-crash",
            },
            autostart: true,
            accel: c.accel.to_string(),
        };
        #[derive(Serialize)]
        struct File<'a> {
            vm: [VmOut<'a>; 1],
        }
        toml::to_string(&File { vm: [out] }).map_err(|e| e.to_string())
    }
}

fn yes() -> bool {
    true
}

fn one() -> usize {
    1
}

/// A `[[channel]]` entry: guest-to-guest vsock, closed unless listed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// The VM that may connect.
    pub from: String,
    /// The VM it may connect to.
    pub to: String,
    /// The vsock port on `to`.
    pub port: u32,
}

/// The manifest as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    phone: PhoneTable,
    #[serde(default)]
    vm: Vec<VmTable>,
    #[serde(default)]
    channel: Vec<Channel>,
}

/// One VM of the phone, checked, with its paths made absolute.
#[derive(Clone, Debug)]
pub struct VmEntry {
    /// Its name: `[a-z0-9-]+`, unique on the phone.
    pub name: String,
    /// What it is for.
    pub role: Role,
    /// Its vsock context ID.
    pub cid: u64,
    /// What the supervisor does when it crashes.
    pub restart: Restart,
    /// Whether its console is the one shown first.
    pub foreground: bool,
    /// Whether it starts with the phone (else on `phone start`).
    pub autostart: bool,
    /// Whether it may be debugged (measured: a debuggable VM is another VM).
    pub debug: bool,
    /// What to boot and with which devices (no vsock socket yet: the
    /// supervisor places it in the VM's state directory).
    pub config: VmConfig,
}

/// A checked phone manifest.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The phone's name.
    pub name: String,
    /// Where the phone keeps its API socket, logs and per-VM files.
    pub state_dir: PathBuf,
    /// All running guests' RAM together may not exceed this many bytes.
    pub memory: u64,
    /// A background VM's vCPUs may use this percent of a host core.
    pub background_cpu: u32,
    /// When the host has less memory available than this, background VMs
    /// give memory back through their balloons.
    pub low_memory: u64,
    /// The VMs, in manifest order.
    pub vms: Vec<VmEntry>,
    /// The guest-to-guest channels the policy opens.
    pub channels: Vec<Channel>,
    /// The file it was loaded from ([`Manifest::load`]).
    pub source: Option<PathBuf>,
}

/// Whether `name` can name a VM: 1 to 32 of a-z, 0-9 and -.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Longest path of a unix socket (sun_path less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Where VM `name`'s vsock device listens.
fn vsock_path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join("vms").join(name).join("vsock.sock")
}

/// Makes `p` absolute against `base` (the manifest's directory).
fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Where a phone keeps imported VMs: `STATE_DIR/imported/NAME/` with
/// `vm.toml`, a `[[vm]]` entry with absolute paths.
pub fn imported_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("imported")
}

/// The `[[vm]]` entries of the VMs imported into the phone at `state_dir`,
/// as TOML, in name order.
fn imported_entries(state_dir: &Path) -> String {
    let Ok(dir) = std::fs::read_dir(imported_dir(state_dir)) else {
        return String::new();
    };
    let mut names: Vec<_> = dir
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("vm.toml").is_file())
        .collect();
    names.sort();
    names
        .iter()
        .filter_map(|p| std::fs::read_to_string(p.join("vm.toml")).ok())
        .collect::<Vec<_>>()
        .join("\n")
}

impl Manifest {
    /// Reads and checks the manifest at `path`, with the VMs imported into
    /// its phone's state directory.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::metadata(path)
            .and_then(|m| {
                if !m.is_file() {
                    Err(std::io::Error::other("not a regular file"))
                } else if m.len() > MAX_MANIFEST {
                    Err(std::io::Error::other(format!(
                        "larger than {} KiB",
                        MAX_MANIFEST >> 10
                    )))
                } else {
                    std::fs::read_to_string(path)
                }
            })
            .map_err(|e| {
                error(
                    "",
                    format!("cannot read manifest '{}': {e}", path.display()),
                )
            })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base = std::fs::canonicalize(&base).unwrap_or(base);
        let mut manifest = Self::parse(&text, &base)?;
        manifest.source = Some(path.to_path_buf());
        // VMs imported into this phone (`image import`) join the manifest's.
        let imported = imported_entries(&manifest.state_dir);
        if imported.is_empty() {
            return Ok(manifest);
        }
        let mut merged = Self::parse(&format!("{text}\n{imported}"), &base).map_err(|e| {
            error(
                "",
                format!(
                    "with the VMs imported into {}: {e}",
                    manifest.state_dir.display()
                ),
            )
        })?;
        merged.source = manifest.source;
        Ok(merged)
    }

    /// A CID no VM of the phone has: one past the highest.
    pub fn free_cid(&self) -> u64 {
        self.vms
            .iter()
            .map(|v| v.cid + 1)
            .max()
            .unwrap_or(FIRST_CID)
    }

    /// Checks manifest text whose relative paths are relative to `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Manifest, ManifestError> {
        let de = toml::Deserializer::parse(text).map_err(|e| {
            let at = e.span().map(|s| line_and_column(text, s.start));
            let message = toml_message(&e);
            match at {
                Some((line, column)) => {
                    error("", format!("line {line}, column {column}: {message}"))
                }
                None => error("", message),
            }
        })?;
        let file: ManifestFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            error(path, toml_message(e.inner()))
        })?;
        Self::check(file, base)
    }

    fn check(file: ManifestFile, base: &Path) -> Result<Manifest, ManifestError> {
        let p = &file.phone;
        if !valid_name(&p.name) {
            return Err(error(
                "phone.name",
                format!("\"{}\" is not [a-z0-9-]+ (1 to 32 characters)", p.name),
            ));
        }
        if file.vm.is_empty() {
            return Err(error("vm", "the phone has no VM"));
        }
        if file.vm.len() > MAX_VMS {
            return Err(error(
                "vm",
                format!("{} VMs; a phone holds at most {MAX_VMS}", file.vm.len()),
            ));
        }
        let mut names = HashSet::new();
        let mut cids = HashSet::new();
        let mut vms = Vec::new();
        let mut total = 0u64;
        for (i, v) in file.vm.iter().enumerate() {
            let at = |key: &str| format!("vm[{i}].{key}");
            if !valid_name(&v.name) {
                return Err(error(
                    at("name"),
                    format!("\"{}\" is not [a-z0-9-]+ (1 to 32 characters)", v.name),
                ));
            }
            if !names.insert(v.name.clone()) {
                return Err(error(at("name"), format!("\"{}\" is used twice", v.name)));
            }
            let cid = v.cid.unwrap_or(FIRST_CID + i as u64);
            if !(FIRST_CID..u32::MAX as u64).contains(&cid) {
                return Err(error(
                    at("cid"),
                    format!("{cid} is reserved (use 3 to {})", u32::MAX - 1),
                ));
            }
            if !cids.insert(cid) {
                let how = if v.cid.is_some() {
                    ""
                } else {
                    " (given by position: set cid)"
                };
                return Err(error(at("cid"), format!("{cid} is used twice{how}")));
            }
            if v.role == Role::Trusted && v.balloon {
                return Err(error(at("balloon"), "a trusted VM is never ballooned"));
            }
            let mut config = VmConfig::new(resolve(base, &v.kernel));
            config.initrd = v.initrd.as_deref().map(|p| resolve(base, p));
            config.cmdline = v.cmdline.clone();
            config.mem = v.mem.0;
            if v.cpus == 0 || v.cpus > vmm::MAX_VCPUS {
                return Err(error(
                    at("cpus"),
                    format!("must be between 1 and {}, not {}", vmm::MAX_VCPUS, v.cpus),
                ));
            }
            config.cpus = v.cpus;
            config.balloon = v.balloon;
            config.rng = v.rng;
            config.accel = v.accel;
            // A trusted VM never shares pages with another VM: merged pages
            // would let others time its memory.
            config.share_memory = p.share_memory && v.role != Role::Trusted;
            for (k, d) in v.disks.iter().enumerate() {
                let mut disk: DiskConfig = d
                    .parse()
                    .map_err(|e| error(format!("vm[{i}].disks[{k}]"), e))?;
                disk.path = resolve(base, &disk.path);
                config.disks.push(disk);
            }
            for (k, n) in v.net.iter().enumerate() {
                let mut net: NetConfig = n
                    .parse()
                    .map_err(|e| error(format!("vm[{i}].net[{k}]"), e))?;
                if let vmm::NetBackendConfig::Socket(dir) = &net.backend {
                    net.backend = vmm::NetBackendConfig::Socket(resolve(base, dir));
                }
                config.nets.push(net);
            }
            config.check().map_err(|e| error(format!("vm[{i}]"), e))?;
            if config.mem > p.memory.0 {
                return Err(error(
                    format!("vm[{i}].mem"),
                    format!(
                        "{} MiB is more than the phone's whole budget of {} MiB",
                        config.mem >> 20,
                        p.memory.0 >> 20
                    ),
                ));
            }
            if v.autostart {
                total = total.saturating_add(config.mem);
            }
            vms.push(VmEntry {
                name: v.name.clone(),
                role: v.role,
                cid,
                restart: v.restart,
                foreground: v.foreground,
                autostart: v.autostart,
                debug: v.debug,
                config,
            });
        }
        if total > p.memory.0 {
            return Err(error(
                "phone.memory",
                format!(
                    "the VMs that start with the phone need {} MiB together, more than the phone's {} MiB (set autostart = false on some)",
                    total >> 20,
                    p.memory.0 >> 20
                ),
            ));
        }
        match vms.iter().filter(|v| v.foreground).count() {
            0 => vms[0].foreground = true,
            1 => {}
            _ => {
                let second = vms
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.foreground)
                    .nth(1)
                    .map_or(0, |(i, _)| i);
                return Err(error(
                    format!("vm[{second}].foreground"),
                    "only one VM can be in the foreground",
                ));
            }
        }
        if !(1..=100).contains(&p.background_cpu) {
            return Err(error(
                "phone.background_cpu",
                format!(
                    "{} is not a percentage of a core (1 to 100)",
                    p.background_cpu
                ),
            ));
        }
        let mut seen = HashSet::new();
        for (i, c) in file.channel.iter().enumerate() {
            for (key, name) in [("from", &c.from), ("to", &c.to)] {
                if !names.contains(name) {
                    return Err(error(
                        format!("channel[{i}].{key}"),
                        format!("no VM named \"{name}\""),
                    ));
                }
            }
            if c.from == c.to {
                return Err(error(
                    format!("channel[{i}].to"),
                    "a channel joins two different VMs",
                ));
            }
            if !seen.insert(c.clone()) {
                return Err(error(format!("channel[{i}]"), "listed twice"));
            }
        }
        let state_dir = resolve(base, &p.state_dir);
        // The longest socket a VM gets: its vsock device's connections to
        // host ports, `STATE_DIR/vms/NAME/vsock.sock_PORT`.
        for (i, v) in vms.iter().enumerate() {
            let longest = vsock_path(&state_dir, &v.name).as_os_str().len() + "_4294967295".len();
            if longest > MAX_SOCKET_PATH {
                return Err(error(
                    "phone.state_dir",
                    format!(
                        "too long: VM {} (vm[{i}]) would get socket paths of {longest} bytes, more than the {MAX_SOCKET_PATH} a unix socket takes",
                        v.name
                    ),
                ));
            }
        }
        Ok(Manifest {
            name: p.name.clone(),
            state_dir,
            memory: p.memory.0,
            background_cpu: p.background_cpu,
            low_memory: p.low_memory.map_or(DEFAULT_LOW_MEMORY, |s| s.0),
            vms,
            channels: file.channel,
            source: None,
        })
    }

    /// Where VM `name`'s vsock device listens (`STATE_DIR/vms/NAME/vsock.sock`;
    /// guest connections to host port P go to that path with `_P` added).
    pub fn vsock_path(&self, name: &str) -> PathBuf {
        vsock_path(&self.state_dir, name)
    }

    /// The VM named `name`.
    pub fn vm(&self, name: &str) -> Option<&VmEntry> {
        self.vms.iter().find(|v| v.name == name)
    }

    /// Whether the policy lets VM `from` connect to port `port` of VM `to`.
    pub fn allows(&self, from: &str, to: &str, port: u32) -> bool {
        self.channels
            .iter()
            .any(|c| c.from == from && c.to == to && c.port == port)
    }

    /// The configuration VM `entry` runs with: its own, plus a vsock device
    /// on a socket in its state directory; a trusted VM also gets a virtio
    /// console (its hvc0 is the secure output only the phone reads).
    pub fn vm_config(&self, entry: &VmEntry) -> VmConfig {
        let mut config = entry.config.clone();
        config.vconsole |= entry.role == Role::Trusted;
        config.vsock = Some(VsockConfig {
            cid: entry.cid,
            uds: vsock_path(&self.state_dir, &entry.name),
        });
        config
    }
}

/// The 1-based line and column of byte `offset` of `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, column)
}

/// A TOML or serde error's message without TOML's source excerpt (the key
/// path says where).
fn toml_message(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    let first = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.contains('|'));
    first.unwrap_or(&text).trim().to_string()
}
