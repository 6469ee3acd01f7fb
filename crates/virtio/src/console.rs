//! virtio-console (device ID 3) with MULTIPORT: port 0 is the console
//! (hvc0 in Linux); further ports are named byte channels
//! (/dev/vport0pN, name in /sys/class/virtio-ports/*/name).

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};

use board::GuestRam;

use crate::device::{read_config_bytes, VirtioDevice};
use crate::queue::{Queue, QueueError};
use crate::state::DeviceState;

const F_MULTIPORT: u64 = 1 << 1;

/// Control events.
mod event {
    pub const DEVICE_READY: u16 = 0;
    pub const DEVICE_ADD: u16 = 1;
    pub const PORT_READY: u16 = 3;
    pub const CONSOLE_PORT: u16 = 4;
    pub const PORT_OPEN: u16 = 6;
    pub const PORT_NAME: u16 = 7;
}

/// The host's side of one port: bytes for the guest go in here.
#[derive(Clone, Default)]
pub struct PortInput {
    pending: Arc<Mutex<VecDeque<u8>>>,
}

impl PortInput {
    /// Queues bytes for the guest (call `Board::poll_devices` afterwards).
    pub fn send(&self, bytes: &[u8]) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: a host that writes faster than the guest reads waits.
        let room = (1usize << 20).saturating_sub(p.len());
        p.extend(&bytes[..bytes.len().min(room)]);
    }

    /// Bytes not yet taken by the guest.
    pub fn backlog(&self) -> usize {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// One port: its name (none for the console), where guest output goes,
/// and its input.
pub struct Port {
    /// Name the guest sees (`None` for port 0, the console).
    pub name: Option<String>,
    /// Where bytes written by the guest go.
    pub output: Box<dyn Write + Send>,
    /// Bytes for the guest.
    pub input: PortInput,
}

/// The console device.
pub struct Console {
    ports: Vec<Port>,
    control_out: VecDeque<Vec<u8>>,
}

fn control(id: u32, event: u16, value: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(8);
    m.extend_from_slice(&id.to_le_bytes());
    m.extend_from_slice(&event.to_le_bytes());
    m.extend_from_slice(&value.to_le_bytes());
    m
}

impl Console {
    /// A console with `ports` (port 0 first: the console itself).
    pub fn new(ports: Vec<Port>) -> Self {
        Console {
            ports,
            control_out: VecDeque::new(),
        }
    }

    /// Port number and direction of queue `index`: (port, is_receive).
    fn port_of(index: usize) -> Option<(usize, bool)> {
        match index {
            0 => Some((0, true)),
            1 => Some((0, false)),
            2 | 3 => None,
            n => Some(((n - 2) / 2, n % 2 == 0)),
        }
    }

    fn rx_queue(port: usize) -> usize {
        if port == 0 {
            0
        } else {
            2 + 2 * port
        }
    }

    fn handle_control(&mut self, msg: &[u8]) {
        if msg.len() < 8 {
            return;
        }
        let id = u32::from_le_bytes(msg[0..4].try_into().expect("4 bytes"));
        let ev = u16::from_le_bytes([msg[4], msg[5]]);
        let value = u16::from_le_bytes([msg[6], msg[7]]);
        match ev {
            event::DEVICE_READY if value == 1 => {
                for p in 0..self.ports.len() {
                    self.control_out
                        .push_back(control(p as u32, event::DEVICE_ADD, 0));
                }
            }
            event::PORT_READY if value == 1 && (id as usize) < self.ports.len() => {
                let port = &self.ports[id as usize];
                if id == 0 {
                    self.control_out
                        .push_back(control(0, event::CONSOLE_PORT, 1));
                }
                if let Some(name) = &port.name {
                    let mut m = control(id, event::PORT_NAME, 1);
                    m.extend_from_slice(name.as_bytes());
                    self.control_out.push_back(m);
                }
                self.control_out.push_back(control(id, event::PORT_OPEN, 1));
            }
            // The guest opening or closing a port, resizes, removals: nothing to do.
            _ => {}
        }
    }
}

impl VirtioDevice for Console {
    fn device_id(&self) -> u32 {
        crate::spec::id::CONSOLE
    }

    fn features(&self) -> u64 {
        F_MULTIPORT
    }

    fn num_queues(&self) -> usize {
        2 * (self.ports.len() + 1)
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let mut config = [0u8; 12];
        config[0..2].copy_from_slice(&80u16.to_le_bytes());
        config[2..4].copy_from_slice(&25u16.to_le_bytes());
        config[4..8].copy_from_slice(&(self.ports.len() as u32).to_le_bytes());
        read_config_bytes(&config, offset, data);
    }

    fn process(
        &mut self,
        index: usize,
        queue: &mut Queue,
        ram: &GuestRam,
    ) -> Result<bool, QueueError> {
        let mut used = false;
        match (index, Self::port_of(index)) {
            (2, _) => {
                while !self.control_out.is_empty() {
                    let Some(chain) = queue.pop(ram)? else { break };
                    let msg = self.control_out.pop_front().expect("not empty");
                    let n = chain.write_at(ram, 0, &msg)?;
                    queue.push_used(ram, chain.head, n as u32)?;
                    used = true;
                }
            }
            (3, _) => {
                while let Some(chain) = queue.pop(ram)? {
                    let msg = chain.read_all(ram, 64)?;
                    self.handle_control(&msg);
                    queue.push_used(ram, chain.head, 0)?;
                    used = true;
                }
            }
            (_, Some((p, true))) if p < self.ports.len() => {
                let input = self.ports[p].input.clone();
                let mut pending = input.pending.lock().unwrap_or_else(|e| e.into_inner());
                while !pending.is_empty() {
                    let Some(chain) = queue.pop(ram)? else { break };
                    let room = chain.writable_len().min(1 << 16) as usize;
                    let n = room.min(pending.len());
                    let take: Vec<u8> = pending.drain(..n).collect();
                    let n = chain.write_at(ram, 0, &take)?;
                    queue.push_used(ram, chain.head, n as u32)?;
                    used = true;
                }
            }
            (_, Some((p, false))) if p < self.ports.len() => {
                while let Some(chain) = queue.pop(ram)? {
                    let bytes = chain.read_all(ram, 1 << 16)?;
                    let out = &mut self.ports[p].output;
                    // A host reader that went away must not stop the guest.
                    let _ = out.write_all(&bytes);
                    let _ = out.flush();
                    queue.push_used(ram, chain.head, 0)?;
                    used = true;
                }
            }
            _ => return Err(QueueError::Malformed("no such console queue")),
        }
        Ok(used)
    }

    fn save_state(&self) -> DeviceState {
        DeviceState::Console {
            ports: self.ports.len(),
            control_out: self.control_out.iter().cloned().collect(),
        }
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), String> {
        match state {
            DeviceState::Console { ports, control_out } if *ports == self.ports.len() => {
                // Bounded like the device's own queue: a few messages per port.
                if control_out.len() > 8 * self.ports.len() + 8 {
                    return Err("too many saved console control messages".into());
                }
                self.control_out = control_out.iter().cloned().collect();
                Ok(())
            }
            DeviceState::Console { ports, .. } => Err(format!(
                "the saved console had {ports} ports, this one has {}",
                self.ports.len()
            )),
            other => Err(crate::state::mismatch("console", other)),
        }
    }

    fn reset(&mut self) {
        self.control_out.clear();
    }

    fn pending_queues(&mut self) -> u64 {
        let mut q = 0u64;
        if !self.control_out.is_empty() {
            q |= 1 << 2;
        }
        for (p, port) in self.ports.iter().enumerate() {
            let rx = Self::rx_queue(p);
            if rx < 64 && port.input.backlog() > 0 {
                q |= 1 << rx;
            }
        }
        q
    }
}
