//! The board's guest-visible state as plain data — the GIC, each CPU's
//! timers, the UART, the RTC and the VM's clock — with save and restore.
//! Devices added with `Board::add_device` are saved by whoever added them.

use serde::{Deserialize, Serialize};

use crate::cpu_power::CpuPower;
use crate::gic::Gic;
use crate::machine::{sync_timers_at, Board};
use crate::pl011::Pl011State;
use crate::pl031::Pl031State;
use crate::timer::Timers;

/// Everything guest-visible the board itself owns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardState {
    /// Number of CPUs the board was built with.
    pub cpus: usize,
    /// Guest RAM size in bytes.
    pub ram_size: u64,
    /// The guest counter (CNTVCT) when the state was saved: a restored VM's
    /// counter continues from here.
    pub counter: u64,
    /// The counter's frequency (CNTFRQ) the guest timed itself by: a VM
    /// whose counter runs at another cannot continue it.
    pub counter_hz: u64,
    /// The interrupt controller.
    pub gic: Gic,
    /// Each CPU's physical and virtual timer.
    pub timers: Vec<Timers>,
    /// The PL011 UART.
    pub uart: Pl011State,
    /// The PL031 RTC.
    pub rtc: Pl031State,
    /// Each CPU's power state (PSCI).
    pub cpu_power: Vec<CpuPower>,
}

impl Board {
    /// The frequency of the counter the guest reads: the model's, or the
    /// host's when the kernel has the interrupt controller (KVM).
    pub fn counter_hz(&self) -> u64 {
        self.irq
            .kernel()
            .map_or(a64::COUNTER_HZ, |k| k.counter_hz())
    }

    /// The board's state. Call while the machine is paused (or not yet
    /// running): a running guest changes it under the caller. With the
    /// interrupt controller in the kernel (KVM), its state is read from
    /// there; the timers and the counter then come from the vCPUs (the
    /// caller fills them in from `Vcpu::timers`).
    pub fn save_state(&self) -> Result<BoardState, String> {
        let (gic, timers) = {
            let mut s = self.irq.lock();
            if let Some(kernel) = self.irq.kernel() {
                kernel.save(&mut s.gic)?;
            }
            (s.gic.clone(), s.timers.clone())
        };
        Ok(BoardState {
            cpus: self.num_cpus(),
            ram_size: self.ram.size(),
            counter: self.counter(),
            counter_hz: self.counter_hz(),
            gic,
            timers,
            uart: self.uart.with(|u| u.state()),
            rtc: self.rtc.with(|r| r.state()),
            cpu_power: self.cpu_power.all(),
        })
    }

    /// Loads a saved state into a board built the same way (CPUs, RAM
    /// size), before its vCPUs run: the guest counter continues from the
    /// saved value. A state that does not fit is refused whole, leaving the
    /// board as it was.
    pub fn restore_state(&self, saved: &BoardState) -> Result<(), String> {
        if saved.cpus != self.num_cpus() || saved.ram_size != self.ram.size() {
            return Err(format!(
                "the state is of a VM with {} CPUs and {} MiB of RAM; this one has {} and {} MiB",
                saved.cpus,
                saved.ram_size >> 20,
                self.num_cpus(),
                self.ram.size() >> 20
            ));
        }
        if saved.counter_hz != self.counter_hz() {
            return Err(format!(
                "the guest's counter ran at {} Hz and this VM's runs at {} Hz: its clocks would run at the wrong speed",
                saved.counter_hz,
                self.counter_hz()
            ));
        }
        if saved.timers.len() != saved.cpus {
            return Err("the state's timers do not match its CPUs".into());
        }
        if saved.cpu_power.len() != saved.cpus {
            return Err("the state's CPU power states do not match its CPUs".into());
        }
        {
            let mut s = self.irq.lock();
            s.gic = saved.gic.clone().check_restored(&s.gic)?;
            s.timers = saved.timers.clone();
            for t in &mut s.timers {
                t.sanitise();
            }
            self.set_counter(saved.counter);
            let now = self.counter();
            for cpu in 0..saved.cpus {
                sync_timers_at(&mut s, cpu, now);
            }
            if let Some(kernel) = self.irq.kernel() {
                kernel.restore(&s.gic)?;
            }
            self.irq.update(&mut s);
        }
        self.uart.with(|u| u.set_state(&saved.uart));
        self.rtc.with(|r| r.set_state(&saved.rtc));
        self.cpu_power.set_all(&saved.cpu_power);
        Ok(())
    }
}
