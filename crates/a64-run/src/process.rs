//! One emulated Linux process: what its threads share ([`Process`]: the
//! address space, the signal actions, the program) and what each thread
//! has of its own ([`Task`]: a CPU, a signal mask, an alternate stack).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use a64::{Cpu, Domain};

use crate::loader::{self, Image};
use crate::signal::{self, SigAltStack, ThreadSignals};
use crate::space::Space;

/// What the threads of a guest process share.
pub struct Process {
    /// The address space.
    pub space: Space,
    /// The process's CPUs: they share decoded code pages and drop their
    /// translations together when mappings change.
    pub domain: Arc<Domain>,
    /// Host path of the running program (what /proc/self/exe names).
    exe: Mutex<PathBuf>,
    /// Guest signal actions as the guest set them: (handler, flags, restorer, mask).
    sigactions: Mutex<[[u64; 4]; 65]>,
    /// Guest address of the sigreturn trampoline handlers return to.
    sigtramp: AtomicU64,
    /// The threads that have not ended yet.
    threads: Mutex<Threads>,
}

/// The count of live threads and how the first thread (the group leader) ended.
#[derive(Default)]
struct Threads {
    live: usize,
    leader_exit: Option<i32>,
}

/// One guest thread: its CPU and its own part of the kernel's state.
pub struct Task {
    /// The CPU.
    pub cpu: Cpu,
    /// This thread's handle to the address space (the CPU's bus).
    pub space: Space,
    /// The process the thread belongs to.
    pub process: Arc<Process>,
    /// The guest's signal mask (bit n-1 = signal n).
    pub sigmask: u64,
    /// The mask to go back to after a call that waited under a temporary one.
    pub saved_sigmask: Option<u64>,
    /// The guest's alternate signal stack.
    pub altstack: SigAltStack,
    /// Where to write 0 and wake a futex when the thread ends (set_tid_address,
    /// CLONE_CHILD_CLEARTID); 0 for none.
    pub clear_child_tid: u64,
    /// The guest's robust futex list head (set_robust_list); 0 for none.
    pub robust_list: u64,
    /// Signals the host caught for this thread.
    pub signals: Box<ThreadSignals>,
}

/// A fresh CPU in the state Linux gives a new user process.
pub fn user_cpu() -> Cpu {
    let mut cpu = Cpu::new();
    // Linux runs user space with top-byte-ignore for data addresses.
    cpu.tbi0 = true;
    cpu
}

impl Process {
    fn new(space: Space, exe: PathBuf) -> Process {
        Process {
            space,
            domain: Domain::new(),
            exe: Mutex::new(exe),
            sigactions: Mutex::new([[0; 4]; 65]),
            sigtramp: AtomicU64::new(0),
            threads: Mutex::new(Threads {
                live: 1,
                leader_exit: None,
            }),
        }
    }

    /// Host path of the running program.
    pub fn exe(&self) -> PathBuf {
        lock(&self.exe).clone()
    }

    /// Sets the program's host path (execve).
    pub fn set_exe(&self, exe: PathBuf) {
        *lock(&self.exe) = exe;
    }

    /// The guest's action for signal `sig` (1..=64): (handler, flags, restorer, mask).
    pub fn sigaction(&self, sig: u64) -> [u64; 4] {
        lock(&self.sigactions)[sig as usize]
    }

    /// Sets the guest's action for signal `sig` and the host disposition
    /// that goes with it (together, so two threads' calls cannot leave them
    /// disagreeing); returns the previous action.
    pub fn set_sigaction(&self, sig: u64, action: [u64; 4]) -> [u64; 4] {
        let mut actions = lock(&self.sigactions);
        signal::set_host_action(sig, action[0]);
        std::mem::replace(&mut actions[sig as usize], action)
    }

    /// The action to deliver signal `sig` with; a one-shot handler
    /// (SA_RESETHAND) is reset to the default in the same step, so only
    /// one thread runs it.
    pub fn action_for_delivery(&self, sig: u64) -> [u64; 4] {
        let mut actions = lock(&self.sigactions);
        let action = actions[sig as usize];
        if action[0] > 1 && action[1] & signal::SA_RESETHAND != 0 {
            signal::set_host_action(sig, 0);
            actions[sig as usize] = [0; 4];
        }
        action
    }

    /// Guest address of the sigreturn trampoline.
    pub fn sigtramp(&self) -> u64 {
        self.sigtramp.load(Ordering::Relaxed)
    }

    /// How many threads have not ended yet.
    pub fn live_threads(&self) -> usize {
        lock(&self.threads).live
    }

    /// Counts a new thread in.
    pub fn thread_started(&self) {
        lock(&self.threads).live += 1;
    }

    /// Counts a thread out (`leader`: the first thread, whose exit code the
    /// process ends with). Returns the process's exit code when this was
    /// the last thread.
    pub fn thread_ended(&self, leader: bool, code: i32) -> Option<i32> {
        let mut t = lock(&self.threads);
        t.live -= 1;
        if leader {
            t.leader_exit = Some(code);
        }
        (t.live == 0).then(|| t.leader_exit.unwrap_or(code))
    }

    /// Runs `fork` with every lock of the process held (the space's edit
    /// lock and map, the signal actions, the program path, the thread
    /// count), so the child (which has only the calling thread) finds none
    /// held by a thread it lacks.
    pub fn fork_locked<T>(&self, fork: impl FnOnce() -> T) -> T {
        let _edit = self.space.edit();
        let _map = self.space.hold_map();
        let _actions = lock(&self.sigactions);
        let _exe = lock(&self.exe);
        let _threads = lock(&self.threads);
        fork()
    }

    /// In a forked child: the process of the one thread that went on.
    pub fn forked_child(&self) -> Arc<Process> {
        let child = Process::new(self.space.clone(), self.exe());
        *lock(&child.sigactions) = *lock(&self.sigactions);
        child.sigtramp.store(self.sigtramp(), Ordering::Relaxed);
        Arc::new(child)
    }
}

/// Locks `m`, going on if a thread panicked while holding it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Task {
    /// Loads `exe` (already parsed as `img`) with `argv` and `envp` into a
    /// new process: its first thread.
    pub fn new(
        exe: PathBuf,
        img: &Image,
        argv: &[Vec<u8>],
        envp: &[Vec<u8>],
    ) -> Result<Task, String> {
        let space = Space::new()?;
        let process = Arc::new(Process::new(space.clone(), exe));
        let mut t = Task::with_cpu(process, user_cpu());
        // The guest starts with the mask the runner was started with.
        t.sigmask = signal::current_host_mask();
        t.start(img, argv, envp)?;
        Ok(t)
    }

    /// A thread of `process` running `cpu` (which joins the process's CPUs),
    /// with an empty mask and no alternate stack.
    pub fn with_cpu(process: Arc<Process>, mut cpu: Cpu) -> Task {
        cpu.join_domain(process.domain.clone());
        let signals = Box::new(ThreadSignals::new(&cpu.signals()));
        Task {
            cpu,
            space: process.space.clone(),
            process,
            sigmask: 0,
            saved_sigmask: None,
            altstack: SigAltStack::default(),
            clear_child_tid: 0,
            robust_list: 0,
            signals,
        }
    }

    /// Replaces the program (execve's point of no return) in a process
    /// with this one thread.
    pub fn start(&mut self, img: &Image, argv: &[Vec<u8>], envp: &[Vec<u8>]) -> Result<(), String> {
        self.space.clear();
        let execfn = argv.first().cloned().unwrap_or_default();
        let started = loader::load(&mut self.space, img, argv, envp, &execfn)?;
        let tramp = signal::map_sigtramp(&self.space)?;
        self.process.sigtramp.store(tramp, Ordering::Relaxed);
        let mut fresh = user_cpu();
        fresh.pc = started.entry;
        fresh.sp = started.sp;
        let mut state = fresh.state();
        state.insns_retired = self.cpu.insns_retired;
        // The CPU (and the lines the signal handler watches) stays; its
        // state becomes a new process's, its decoded code is dropped.
        self.cpu.set_state(&state);
        self.cpu.flush_code_cache();
        // Handlers do not survive execve; ignored signals stay ignored; the
        // mask does survive. The alternate stack is gone with the old image.
        for sig in 1..=64u64 {
            if self.process.sigaction(sig)[0] > 1 {
                self.process.set_sigaction(sig, [0; 4]);
            }
        }
        self.altstack = SigAltStack::default();
        self.clear_child_tid = 0;
        self.robust_list = 0;
        Ok(())
    }
}
