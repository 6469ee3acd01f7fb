//! The KVM backend (aarch64 hosts with `/dev/kvm`): the VM's vCPUs run
//! natively under the host kernel, which also keeps the interrupt
//! controller (an in-kernel vGICv3 at the board's addresses), the generic
//! timers, PSCI and WFI. What stays ours: guest RAM (our memfd, handed to
//! KVM as one user memory region), the board's devices (each MMIO exit is
//! dispatched to `Board::mmio_read/mmio_write`), and device interrupt
//! lines (their levels go to the vGIC with `KVM_IRQ_LINE`).

mod dirty;
mod features;
mod ioevent;
mod irqfd;
mod kick;
mod regs;
mod vcpu;
mod vgic;

use std::sync::Arc;

use board::{layout, Board};
use kvm_bindings::{
    kvm_create_device, kvm_device_attr, kvm_device_type_KVM_DEV_TYPE_ARM_VGIC_V3,
    kvm_userspace_memory_region, kvm_vcpu_init, KVM_ARM_VCPU_POWER_OFF, KVM_ARM_VCPU_PSCI_0_2,
    KVM_DEV_ARM_VGIC_CTRL_INIT, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_DEV_ARM_VGIC_GRP_CTRL,
    KVM_DEV_ARM_VGIC_GRP_NR_IRQS, KVM_VGIC_V3_ADDR_TYPE_DIST, KVM_VGIC_V3_ADDR_TYPE_REDIST,
};
use kvm_ioctls::{DeviceFd, Kvm, VmFd};

pub use vcpu::KvmVcpu;

/// Whether this host can run VMs under KVM: `/dev/kvm` opens and answers
/// with the stable API. `Err` says why not.
pub fn available() -> Result<(), String> {
    let kvm = Kvm::new().map_err(|e| format!("cannot open /dev/kvm: {e}"))?;
    if kvm.get_api_version() != 12 {
        return Err(format!(
            "/dev/kvm speaks API version {}, not 12",
            kvm.get_api_version()
        ));
    }
    Ok(())
}

/// What a VM's vCPUs share: the VM file descriptor and its vGIC.
pub(crate) struct KvmShared {
    pub(crate) vm: VmFd,
    /// The vGIC (its state is read and written through it).
    pub(crate) gic: DeviceFd,
}

/// A VM under KVM: created with [`KvmVm::new`], it hands out its vCPUs.
pub struct KvmVm {
    vcpus: Vec<KvmVcpu>,
    guest_writes: Arc<dirty::KvmWriteLog>,
    shared: Arc<KvmShared>,
}

fn attr(group: u32, attr: u64, addr: u64) -> kvm_device_attr {
    kvm_device_attr {
        group,
        attr,
        addr,
        flags: 0,
    }
}

impl KvmVm {
    /// The KVM VM for `board`: its RAM mapped as the guest's memory, one
    /// vCPU per board CPU (the first at reset, the others powered off
    /// until PSCI CPU_ON), and a vGICv3 at the board's GIC addresses
    /// taking the board's device lines.
    pub fn new(board: Arc<Board>) -> Result<Self, String> {
        let kvm = Kvm::new().map_err(|e| format!("cannot open /dev/kvm: {e}"))?;
        // A 40-bit guest physical space, as the board's map (and our
        // software CPU, PARange = 40 bits) has; the host's own if smaller.
        let ipa = match kvm.get_host_ipa_limit() {
            limit if limit >= 40 => 40,
            _ => 0,
        };
        let vm = kvm
            .create_vm_with_ipa_size(ipa)
            .map_err(|e| format!("KVM cannot create a VM: {e}"))?;
        let ram = &board.ram;
        let host = ram
            .host_ptr(ram.base())
            .ok_or("guest RAM has no host mapping")?;
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: ram.base(),
            memory_size: ram.size(),
            userspace_addr: host.as_ptr() as u64,
        };
        // SAFETY: the region is the board's RAM mapping, which lives as long
        // as the board, and every vCPU (hence every use of the region) holds
        // the board.
        unsafe { vm.set_user_memory_region(region) }
            .map_err(|e| format!("KVM refused the guest memory: {e}"))?;

        let mut init = kvm_vcpu_init::default();
        vm.get_preferred_target(&mut init)
            .map_err(|e| format!("KVM has no preferred vCPU target: {e}"))?;
        init.features[0] |= 1 << KVM_ARM_VCPU_PSCI_0_2;
        // What our software CPU offers: KVM vCPUs offer no more where the
        // host lets us say so, so VMs move between the backends.
        let soft_features = a64::Cpu::new_system(0).id_registers();
        let mut fds = Vec::new();
        for index in 0..board.num_cpus() {
            let fd = vm
                .create_vcpu(index as u64)
                .map_err(|e| format!("KVM cannot create vCPU {index}: {e}"))?;
            let mut init = init;
            if index > 0 {
                init.features[0] |= 1 << KVM_ARM_VCPU_POWER_OFF;
            }
            fd.vcpu_init(&init)
                .map_err(|e| format!("KVM cannot initialise vCPU {index}: {e}"))?;
            // Before the first run: KVM fixes the ID registers then.
            features::restrict(&fd, &soft_features)?;
            fds.push(fd);
        }
        let gic = create_gic(&vm)?;
        let shared = Arc::new(KvmShared { vm, gic });
        // Device lines as irqfds where KVM takes them (else KVM_IRQ_LINE).
        let lines = irqfd::SpiLines::new(&shared.vm, layout::NUM_SPIS).ok();
        board.use_kernel_irqchip(Box::new(vgic::Vgic {
            vm: shared.clone(),
            lines,
        }))?;
        let vcpus = fds
            .into_iter()
            .enumerate()
            .map(|(index, fd)| KvmVcpu::new(fd, index, board.clone(), shared.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let guest_writes = Arc::new(dirty::KvmWriteLog {
            vm: shared.clone(),
            region,
            on: std::sync::Mutex::new(false),
        });
        Ok(KvmVm {
            vcpus,
            guest_writes,
            shared,
        })
    }

    /// The VM's vCPUs, in index order (call once).
    pub fn take_vcpus(&mut self) -> Vec<KvmVcpu> {
        std::mem::take(&mut self.vcpus)
    }

    /// The guest's stores to its RAM, from KVM's dirty log (off until the
    /// first take).
    pub fn guest_writes(&self) -> Arc<dyn crate::GuestWriteLog> {
        self.guest_writes.clone()
    }

    /// KVM's ioeventfds for the VM.
    pub fn io_events(&self) -> Arc<dyn crate::IoEvents> {
        Arc::new(ioevent::KvmIoEvents {
            vm: self.shared.clone(),
        })
    }
}

/// The in-kernel vGICv3: distributor and redistributors where the board's
/// device tree says they are, 32 private interrupts plus the board's SPIs.
/// Initialised last, once every vCPU exists (KVM requires it).
fn create_gic(vm: &VmFd) -> Result<DeviceFd, String> {
    let mut dev = kvm_create_device {
        type_: kvm_device_type_KVM_DEV_TYPE_ARM_VGIC_V3,
        fd: 0,
        flags: 0,
    };
    let gic = vm
        .create_device(&mut dev)
        .map_err(|e| format!("KVM cannot create a GICv3 (the host needs a GICv3): {e}"))?;
    let dist: u64 = layout::GIC_DIST;
    let redist: u64 = layout::GIC_REDIST;
    let irqs: u32 = 32 + layout::NUM_SPIS;
    let set = |a: kvm_device_attr, what: &str| {
        gic.set_device_attr(&a)
            .map_err(|e| format!("KVM refused the vGIC's {what}: {e}"))
    };
    set(
        attr(
            KVM_DEV_ARM_VGIC_GRP_ADDR,
            KVM_VGIC_V3_ADDR_TYPE_DIST as u64,
            &dist as *const u64 as u64,
        ),
        "distributor address",
    )?;
    set(
        attr(
            KVM_DEV_ARM_VGIC_GRP_ADDR,
            KVM_VGIC_V3_ADDR_TYPE_REDIST as u64,
            &redist as *const u64 as u64,
        ),
        "redistributor address",
    )?;
    set(
        attr(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &irqs as *const u32 as u64),
        "number of interrupts",
    )?;
    set(
        attr(
            KVM_DEV_ARM_VGIC_GRP_CTRL,
            KVM_DEV_ARM_VGIC_CTRL_INIT as u64,
            0,
        ),
        "initialisation",
    )?;
    Ok(gic)
}
