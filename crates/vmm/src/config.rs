//! What a VM is made of.

use std::path::PathBuf;

use board::layout::RAM_MAX;

/// The most vCPUs a VM may have (each runs on a host thread of its own).
pub const MAX_VCPUS: usize = 8;

/// The configuration of one VM.
#[derive(Clone, Debug)]
pub struct VmConfig {
    /// The arm64 Linux Image to boot.
    pub kernel: PathBuf,
    /// An initramfs, if any.
    pub initrd: Option<PathBuf>,
    /// The kernel command line.
    pub cmdline: String,
    /// Guest RAM in bytes.
    pub mem: u64,
    /// Number of vCPUs.
    pub cpus: usize,
    /// virtio-blk disks, in order (the guest sees vda, vdb, ...).
    pub disks: Vec<DiskConfig>,
    /// Whether to add a virtio-rng device.
    pub rng: bool,
    /// Whether to add a virtio-balloon device.
    pub balloon: bool,
    /// Whether to add a virtio-console (hvc0 output goes to the console writer).
    pub vconsole: bool,
    /// Extra virtio-console ports, each a unix socket on the host.
    pub ports: Vec<PortConfig>,
    /// virtio-net interfaces (the guest sees eth0, eth1, ...).
    pub nets: Vec<NetConfig>,
    /// A virtio-vsock device.
    pub vsock: Option<VsockConfig>,
    /// Allow more guest RAM than the host has (it is committed on touch).
    pub overcommit: bool,
    /// Guest RAM as private memory the host may merge with identical pages
    /// of other VMs (KSM) instead of a memfd (which snapshots use).
    pub share_memory: bool,
    /// Which backend runs the vCPUs (KVM or the software CPU).
    pub accel: hypervisor::Accel,
}

/// A virtio-vsock device: the guest's context ID and the host's unix socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VsockConfig {
    /// The guest's context ID (3 or more).
    pub cid: u64,
    /// Host programs connect here (`CONNECT <port>`); guest connections to
    /// host port P go to `<uds>_P`.
    pub uds: PathBuf,
}

impl std::str::FromStr for VsockConfig {
    type Err = String;

    /// Parses `cid=N,uds=PATH` (in either order).
    fn from_str(s: &str) -> Result<Self, String> {
        let usage = "expected cid=N,uds=PATH";
        let (mut cid, mut uds) = (None, None);
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("cid", n)) => {
                    let n: u64 = n
                        .parse()
                        .map_err(|_| format!("'{n}' is not a vsock cid ({usage})"))?;
                    if !(3..u32::MAX as u64).contains(&n) {
                        return Err(format!(
                            "vsock cid {n} is reserved (use 3 to {})",
                            u32::MAX - 1
                        ));
                    }
                    cid = Some(n);
                }
                Some(("uds", p)) if !p.is_empty() => uds = Some(PathBuf::from(p)),
                _ => return Err(format!("'{s}': {usage}")),
            }
        }
        match (cid, uds) {
            (Some(cid), Some(uds)) => Ok(VsockConfig { cid, uds }),
            _ => Err(format!("'{s}': {usage}")),
        }
    }
}

/// Where a virtio-net interface's frames go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetBackendConfig {
    /// A host TAP interface of this name.
    Tap(String),
    /// A switch directory of unix datagram sockets shared with other VMs.
    Socket(PathBuf),
}

/// One virtio-net interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// Its backend.
    pub backend: NetBackendConfig,
    /// Its MAC address (random when not given).
    pub mac: Option<[u8; 6]>,
}

impl std::str::FromStr for NetConfig {
    type Err = String;

    /// Parses `tap=NAME[,mac=MAC]` or `socket=PATH[,mac=MAC]`.
    fn from_str(s: &str) -> Result<Self, String> {
        let usage = "expected tap=NAME or socket=PATH, optionally followed by ,mac=MAC";
        let mut parts = s.split(',');
        let backend = match parts.next().and_then(|p| p.split_once('=')) {
            Some(("tap", name)) if !name.is_empty() => NetBackendConfig::Tap(name.to_string()),
            Some(("socket", path)) if !path.is_empty() => {
                NetBackendConfig::Socket(PathBuf::from(path))
            }
            _ => return Err(format!("'{s}': {usage}")),
        };
        let mut mac = None;
        for opt in parts {
            match opt.split_once('=') {
                Some(("mac", m)) => mac = Some(virtio::net::parse_mac(m)?),
                _ => return Err(format!("'{s}': unknown option '{opt}' ({usage})")),
            }
        }
        Ok(NetConfig { backend, mac })
    }
}

/// A named virtio-console port served on a host unix socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortConfig {
    /// The name the guest sees.
    pub name: String,
    /// Where the host listens.
    pub socket: PathBuf,
}

impl std::str::FromStr for PortConfig {
    type Err = String;

    /// Parses `NAME=PATH`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('=') {
            Some((name, path))
                if !name.is_empty()
                    && !path.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) =>
            {
                Ok(PortConfig {
                    name: name.to_string(),
                    socket: PathBuf::from(path),
                })
            }
            _ => Err(format!(
                "'{s}' is not NAME=PATH (NAME of letters, digits, '.', '_' or '-')"
            )),
        }
    }
}

/// One virtio-blk disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskConfig {
    /// Raw image file.
    pub path: PathBuf,
    /// Whether the guest may only read it.
    pub read_only: bool,
}

impl std::str::FromStr for DiskConfig {
    type Err = String;

    /// Parses `PATH[,ro]`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (path, read_only) = match s.rsplit_once(',') {
            Some((p, "ro")) => (p, true),
            Some((p, "rw")) => (p, false),
            Some((_, opt)) => {
                return Err(format!("unknown disk option '{opt}' (expected PATH[,ro])"))
            }
            None => (s, false),
        };
        if path.is_empty() {
            return Err("empty disk path (expected PATH[,ro])".into());
        }
        Ok(DiskConfig {
            path: PathBuf::from(path),
            read_only,
        })
    }
}

impl VmConfig {
    /// Smallest guest RAM accepted.
    pub const MIN_MEM: u64 = 64 << 20;
    /// Longest kernel command line: arm64's COMMAND_LINE_SIZE less its NUL.
    pub const MAX_CMDLINE: usize = 2047;

    /// A configuration with defaults (256 MiB, one vCPU, no devices) for `kernel`.
    pub fn new(kernel: PathBuf) -> Self {
        VmConfig {
            kernel,
            initrd: None,
            cmdline: "console=ttyAMA0".into(),
            mem: 256 << 20,
            cpus: 1,
            disks: Vec::new(),
            rng: false,
            balloon: false,
            vconsole: false,
            ports: Vec::new(),
            nets: Vec::new(),
            vsock: None,
            overcommit: false,
            share_memory: false,
            accel: hypervisor::Accel::Auto,
        }
    }

    /// Checks what can be checked without touching the host's files: sizes,
    /// counts, the command line, and that nothing is given twice.
    pub fn check(&self) -> Result<(), String> {
        if self.cpus == 0 || self.cpus > MAX_VCPUS {
            return Err(format!(
                "--cpus must be between 1 and {MAX_VCPUS}, not {}",
                self.cpus
            ));
        }
        if self.mem < Self::MIN_MEM || !self.mem.is_multiple_of(4096) || self.mem > RAM_MAX {
            return Err(format!(
                "--mem must be a whole number of pages between {} MiB and {} GiB, not {} bytes",
                Self::MIN_MEM >> 20,
                RAM_MAX >> 30,
                self.mem
            ));
        }
        let host = hostio::host_memory();
        if !self.overcommit && host > 0 && self.mem > host {
            return Err(format!(
                "--mem {} MiB is more than the host's {} MiB of RAM (add --overcommit to allow it)",
                self.mem >> 20,
                host >> 20
            ));
        }
        if self.cmdline.len() > Self::MAX_CMDLINE {
            return Err(format!(
                "--cmdline is {} bytes, more than the {} an arm64 kernel accepts",
                self.cmdline.len(),
                Self::MAX_CMDLINE
            ));
        }
        if self.cmdline.contains('\0') {
            return Err("--cmdline contains a NUL byte".into());
        }
        twice(self.disks.iter().map(|d| absolute(&d.path)), |p| {
            format!("disk '{}' is given twice", p.display())
        })?;
        twice(self.ports.iter().map(|p| p.name.clone()), |n| {
            format!("port name '{n}' is given twice")
        })?;
        let sockets = self.ports.iter().map(|p| absolute(&p.socket));
        twice(
            sockets.chain(self.vsock.iter().map(|v| absolute(&v.uds))),
            |p| format!("socket path '{}' is given twice", p.display()),
        )?;
        twice(self.nets.iter().filter_map(|n| n.mac), |m| {
            format!("MAC address {} is given twice", virtio::net::format_mac(&m))
        })?;
        twice(
            self.nets.iter().filter_map(|n| match &n.backend {
                NetBackendConfig::Tap(name) => Some(name.clone()),
                NetBackendConfig::Socket(_) => None,
            }),
            |t| format!("TAP device '{t}' is given twice"),
        )?;
        Ok(())
    }
}

/// `path` made absolute against the current directory (no symlinks resolved).
fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The first item that occurs twice, as an error made by `say`.
fn twice<T: Eq + std::hash::Hash + Clone>(
    items: impl Iterator<Item = T>,
    say: impl Fn(T) -> String,
) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for item in items {
        if !seen.insert(item.clone()) {
            return Err(say(item));
        }
    }
    Ok(())
}

/// Parses a memory size: a number of bytes with an optional K, M, G suffix
/// (binary units, optional trailing "B" or "iB"); a bare number means MiB.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let stripped = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (digits, shift) = match stripped.char_indices().last() {
        Some((i, 'k')) => (&stripped[..i], 10),
        Some((i, 'm')) => (&stripped[..i], 20),
        Some((i, 'g')) => (&stripped[..i], 30),
        Some((i, 't')) => (&stripped[..i], 40),
        _ => (stripped, 20),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a size (try 256M or 1G)"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("'{text}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disks() {
        let d: DiskConfig = "/tmp/a.img,ro".parse().unwrap();
        assert_eq!(
            d,
            DiskConfig {
                path: "/tmp/a.img".into(),
                read_only: true
            }
        );
        let d: DiskConfig = "b.img".parse().unwrap();
        assert!(!d.read_only);
        assert!("x.img,fast".parse::<DiskConfig>().is_err());
        assert!(",ro".parse::<DiskConfig>().is_err());
    }

    #[test]
    fn nets() {
        let n: NetConfig = "socket=/tmp/lan".parse().unwrap();
        assert_eq!(n.backend, NetBackendConfig::Socket("/tmp/lan".into()));
        assert_eq!(n.mac, None);
        let n: NetConfig = "tap=tap0,mac=02:00:00:00:00:07".parse().unwrap();
        assert_eq!(n.backend, NetBackendConfig::Tap("tap0".into()));
        assert_eq!(n.mac, Some([2, 0, 0, 0, 0, 7]));
        for bad in [
            "tap=",
            "socket",
            "wifi=x",
            "tap=t0,mac=zz",
            "tap=t0,speed=1",
            "tap=t0,mac=00:00:00:00:00:00",
            "tap=t0,mac=33:33:00:00:00:01",
        ] {
            assert!(bad.parse::<NetConfig>().is_err(), "{bad}");
        }
    }

    #[test]
    fn vsocks() {
        let v: VsockConfig = "cid=3,uds=/tmp/v.sock".parse().unwrap();
        assert_eq!((v.cid, v.uds), (3, PathBuf::from("/tmp/v.sock")));
        let v: VsockConfig = "uds=x,cid=4000".parse().unwrap();
        assert_eq!(v.cid, 4000);
        for bad in [
            "cid=2,uds=x",
            "cid=3",
            "uds=x",
            "cid=three,uds=x",
            "cid=3,uds=x,y=1",
            "cid=4294967295,uds=x",
        ] {
            assert!(bad.parse::<VsockConfig>().is_err(), "{bad}");
        }
    }

    #[test]
    fn checks() {
        let ok = VmConfig::new("Image".into());
        assert_eq!(ok.check(), Ok(()));
        let with = |f: &dyn Fn(&mut VmConfig)| {
            let mut c = ok.clone();
            f(&mut c);
            c.check().unwrap_err()
        };
        assert!(with(&|c| c.cmdline = "x".repeat(2048)).contains("more than the 2047"));
        assert!(with(&|c| c.mem = 1 << 50).contains("--mem must be"));
        let host = hostio::host_memory();
        assert!(with(&|c| c.mem = (host + (1 << 30)) & !0xfff).contains("--overcommit"));
        let mut over = ok.clone();
        over.mem = (host + (1 << 30)) & !0xfff;
        over.overcommit = true;
        assert_eq!(over.check(), Ok(()));
        let disk: DiskConfig = "a.img".parse().unwrap();
        assert!(with(&|c| c.disks = vec![disk.clone(), disk.clone()]).contains("given twice"));
        let port: PortConfig = "p=/tmp/x".parse().unwrap();
        let port2: PortConfig = "q=/tmp/x".parse().unwrap();
        assert!(with(&|c| c.ports = vec![port.clone(), port.clone()]).contains("port name"));
        assert!(with(&|c| c.ports = vec![port.clone(), port2.clone()]).contains("socket path"));
        let net: NetConfig = "socket=/tmp/l,mac=02:00:00:00:00:01".parse().unwrap();
        assert!(with(&|c| c.nets = vec![net.clone(), net.clone()]).contains("MAC address"));
        let mut eight = ok.clone();
        eight.cpus = 8;
        assert_eq!(eight.check(), Ok(()));
        assert!(with(&|c| c.cpus = 9).contains("between 1 and 8"));
        assert!(with(&|c| c.cpus = 0).contains("between 1 and 8"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512"), Ok(512 << 20));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("-1M").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
