//! One emulated Linux process: the CPU, its address space and the few pieces
//! of kernel state the runner keeps itself.

use std::path::PathBuf;

use a64::Cpu;

use crate::loader::{self, Image};
use crate::signal::{self, SigAltStack};
use crate::space::Space;

/// A guest process.
pub struct Process {
    /// The CPU.
    pub cpu: Cpu,
    /// The address space.
    pub space: Space,
    /// Host path of the running program (what /proc/self/exe names).
    pub exe: PathBuf,
    /// Guest signal actions as the guest set them: (handler, flags, restorer, mask).
    pub sigactions: [[u64; 4]; 65],
    /// The guest's signal mask (bit n-1 = signal n).
    pub sigmask: u64,
    /// The mask to go back to after a call that waited under a temporary one.
    pub saved_sigmask: Option<u64>,
    /// The guest's alternate signal stack.
    pub altstack: SigAltStack,
    /// Guest address of the sigreturn trampoline handlers return to.
    pub sigtramp: u64,
}

/// A fresh CPU in the state Linux gives a new user process.
pub fn user_cpu() -> Cpu {
    let mut cpu = Cpu::new();
    // Linux runs user space with top-byte-ignore for data addresses.
    cpu.tbi0 = true;
    cpu
}

impl Process {
    /// Loads `exe` (already parsed as `img`) with `argv` and `envp` into a new process.
    pub fn new(
        exe: PathBuf,
        img: &Image,
        argv: &[Vec<u8>],
        envp: &[Vec<u8>],
    ) -> Result<Process, String> {
        let mut p = Process {
            cpu: user_cpu(),
            space: Space::new()?,
            exe,
            sigactions: [[0; 4]; 65],
            // The guest starts with the mask the runner was started with.
            sigmask: signal::current_host_mask(),
            saved_sigmask: None,
            altstack: SigAltStack::default(),
            sigtramp: 0,
        };
        p.start(img, argv, envp)?;
        Ok(p)
    }

    /// Replaces the program (execve's point of no return).
    pub fn start(&mut self, img: &Image, argv: &[Vec<u8>], envp: &[Vec<u8>]) -> Result<(), String> {
        self.space.clear();
        let execfn = argv.first().cloned().unwrap_or_default();
        let started = loader::load(&mut self.space, img, argv, envp, &execfn)?;
        self.map_sigtramp()?;
        let mut cpu = user_cpu();
        cpu.insns_retired = self.cpu.insns_retired;
        cpu.pc = started.entry;
        cpu.sp = started.sp;
        // Publish the new CPU's lines before the old CPU (and its lines) go away.
        signal::watch_cpu(&cpu.signals());
        self.cpu = cpu;
        // Handlers do not survive execve; ignored signals stay ignored; the
        // mask does survive. The alternate stack is gone with the old image.
        for (sig, a) in self.sigactions.iter_mut().enumerate() {
            if a[0] > 1 {
                signal::set_host_action(sig as u64, 0);
            }
            if a[0] != 1 {
                *a = [0; 4];
            }
        }
        self.altstack = SigAltStack::default();
        Ok(())
    }
}
