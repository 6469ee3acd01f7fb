//! Choosing the backend that runs a VM's vCPUs: `--accel kvm|soft|auto`.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use board::Board;

use crate::soft::SoftVm;
use crate::{Vcpu, Vcpus};

/// Which backend a VM asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// KVM where it works (an aarch64 host with a usable `/dev/kvm`), else
    /// the software CPU.
    #[default]
    Auto,
    /// Our software AArch64 CPU, on any host.
    Soft,
    /// KVM; an error where it cannot work.
    Kvm,
}

impl FromStr for Accel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Accel::Auto),
            "soft" => Ok(Accel::Soft),
            "kvm" => Ok(Accel::Kvm),
            other => Err(format!("unknown accelerator {other:?}: kvm, soft or auto")),
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Accel::Auto => "auto",
            Accel::Soft => "soft",
            Accel::Kvm => "kvm",
        })
    }
}

/// The backend a VM got, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    /// `Accel::Soft` or `Accel::Kvm`.
    pub accel: Accel,
    /// Why: what was asked, and for `auto` what decided it.
    pub reason: String,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.accel, self.reason)
    }
}

/// Whether KVM can run this VM here; `Err` says why not.
fn kvm_usable() -> Result<(), String> {
    #[cfg(target_arch = "aarch64")]
    {
        crate::kvm::available()
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        Err(format!(
            "KVM runs arm64 guests only on aarch64 hosts; this host is {}",
            std::env::consts::ARCH
        ))
    }
}

/// Picks the backend for `accel`: `Err` when KVM is asked for and cannot work.
pub fn choose(accel: Accel) -> Result<Backend, String> {
    Ok(match accel {
        Accel::Soft => Backend {
            accel: Accel::Soft,
            reason: "asked for".into(),
        },
        Accel::Kvm => {
            kvm_usable().map_err(|why| format!("--accel kvm cannot work here: {why}"))?;
            Backend {
                accel: Accel::Kvm,
                reason: "asked for".into(),
            }
        }
        Accel::Auto => match kvm_usable() {
            Ok(()) => Backend {
                accel: Accel::Kvm,
                reason: "auto: /dev/kvm works".into(),
            },
            Err(why) => Backend {
                accel: Accel::Soft,
                reason: format!("auto: {why}"),
            },
        },
    })
}

/// The vCPUs of a VM on `board` (one per board CPU, the first at reset),
/// run by `backend` (as [`choose`] picked it).
pub fn create_vcpus(board: &Arc<Board>, backend: &Backend) -> Result<Vcpus, String> {
    Ok(match backend.accel {
        #[cfg(target_arch = "aarch64")]
        Accel::Kvm => {
            let mut vm = crate::kvm::KvmVm::new(board.clone())?;
            Vcpus {
                guest_writes: Some(vm.guest_writes()),
                io_events: Some(vm.io_events()),
                list: vm
                    .take_vcpus()
                    .into_iter()
                    .map(|v| Box::new(v) as Box<dyn Vcpu>)
                    .collect(),
            }
        }
        _ => {
            let soft = SoftVm::new(board.clone());
            Vcpus {
                list: (0..board.num_cpus())
                    .map(|i| Box::new(soft.create_vcpu(i)) as Box<dyn Vcpu>)
                    .collect(),
                guest_writes: None,
                io_events: None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for a in [Accel::Auto, Accel::Soft, Accel::Kvm] {
            assert_eq!(a.to_string().parse::<Accel>(), Ok(a));
        }
        assert!("tcg"
            .parse::<Accel>()
            .unwrap_err()
            .contains("kvm, soft or auto"));
    }

    #[test]
    #[cfg(not(target_arch = "aarch64"))]
    fn kvm_is_refused_off_aarch64() {
        let err = choose(Accel::Kvm).unwrap_err();
        assert!(err.contains("only on aarch64 hosts"), "{err}");
        let auto = choose(Accel::Auto).unwrap();
        assert_eq!(auto.accel, Accel::Soft);
        assert!(auto.reason.starts_with("auto: "), "{}", auto.reason);
    }
}
