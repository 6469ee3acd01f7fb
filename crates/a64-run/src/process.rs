//! One emulated Linux process: the CPU, its address space and the few pieces
//! of kernel state the runner keeps itself.

use std::path::PathBuf;

use a64::Cpu;

use crate::loader::{self, Image};
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
        };
        p.start(img, argv, envp)?;
        Ok(p)
    }

    /// Replaces the program (execve's point of no return).
    pub fn start(&mut self, img: &Image, argv: &[Vec<u8>], envp: &[Vec<u8>]) -> Result<(), String> {
        self.space.clear();
        let execfn = argv.first().cloned().unwrap_or_default();
        let started = loader::load(&mut self.space, img, argv, envp, &execfn)?;
        let retired = self.cpu.insns_retired;
        self.cpu = user_cpu();
        self.cpu.insns_retired = retired;
        self.cpu.pc = started.entry;
        self.cpu.sp = started.sp;
        // Handlers do not survive execve; ignored signals stay ignored.
        for a in self.sigactions.iter_mut() {
            if a[0] != 1 {
                *a = [0; 4];
            }
        }
        Ok(())
    }
}
