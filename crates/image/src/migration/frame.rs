//! What a migration's messages say. Each message is one link message
//! ([`super::link`]): its first byte says what it is.
//!
//! * [`PAGES`]: guest RAM pages, each a 4-byte little-endian page number
//!   (from the RAM's base) and its 4,096 bytes, as many as fit.
//! * [`CONTROL`]: a [`Control`] in postcard.
//!
//! The source sends `Hello`, waits for `Accept` (or `Refuse`), then pages
//! and `Progress` while the guest runs, then — the guest paused — the
//! last pages, its state in `State` pieces and `End`. The target answers
//! `Running` once the guest runs there, or `Failed`. Either end may send
//! `Failed` (the source: `Cancelled`) at any time; the target then
//! forgets everything it received. [`Receiver`] checks a target's side of
//! this: every message in its place, every page inside the guest's RAM.

use serde::{Deserialize, Serialize};

use super::link::MAX_PLAINTEXT;

/// The stream format this build speaks.
pub const FORMAT: u32 = 1;
/// A guest page.
pub const PAGE: usize = 4096;
/// Marks a message of pages.
pub const PAGES: u8 = 1;
/// Marks a [`Control`] message.
pub const CONTROL: u8 = 2;
/// One page in a message: its number and its bytes.
const ENTRY: usize = 4 + PAGE;
/// Pages in one message.
pub const PAGES_PER_MESSAGE: usize = (MAX_PLAINTEXT - 1) / ENTRY;
/// Largest VM state accepted.
pub const MAX_STATE: usize = 16 << 20;
/// Largest manifest entry accepted.
pub const MAX_ENTRY: usize = 64 << 10;

/// A disk the VM uses, as the source sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskInfo {
    /// Its path (shared storage: the target opens the same path).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Whether the guest may only read it.
    pub read_only: bool,
}

/// The control messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// Source: what is coming.
    Hello {
        /// [`FORMAT`].
        format: u32,
        /// The VM's name.
        vm: String,
        /// Its `[[vm]]` manifest entry (TOML, absolute paths).
        entry: String,
        /// Its RAM in bytes.
        mem: u64,
        /// Its disks.
        disks: Vec<DiskInfo>,
        /// Whether the disks' contents follow (`Disk`), or the target
        /// opens the same paths (shared storage).
        copy_disks: bool,
    },
    /// Target: go ahead.
    Accept,
    /// Target: no, and why (nothing was kept).
    Refuse(String),
    /// Source: a pre-copy round is done.
    Progress {
        /// The round (0: all of RAM).
        round: u32,
        /// Bytes of pages sent so far.
        sent: u64,
        /// Bytes the guest dirtied during the round.
        dirtied: u64,
        /// The round's length in microseconds.
        micros: u64,
    },
    /// Source: answer `Synced` once everything before this is taken.
    Sync,
    /// Target: everything before `Sync` is taken.
    Synced,
    /// Source: a piece of the paused VM's state.
    State(Vec<u8>),
    /// Source (copying disks, after the state): bytes of disk `index` at
    /// `offset`; what is never sent reads as zeros.
    Disk {
        /// The disk, in the order of `Hello`.
        index: u32,
        /// Where in it.
        offset: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Source: everything is sent; the disks are released.
    End,
    /// Target: the guest runs here now.
    Running,
    /// Either: the move is off, and why.
    Failed(String),
}

/// Why a migration stream was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError(pub String);

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed migration stream: {}", self.0)
    }
}

impl std::error::Error for StreamError {}

fn bad(what: impl Into<String>) -> StreamError {
    StreamError(what.into())
}

/// Encodes a control message.
pub fn control(c: &Control) -> Vec<u8> {
    let mut out = vec![CONTROL];
    out.extend(postcard::to_stdvec(c).expect("control messages serialize"));
    out
}

/// Builds page messages: add pages, take each full message.
#[derive(Default)]
pub struct PageBatch {
    buf: Vec<u8>,
    count: usize,
}

impl PageBatch {
    /// Adds page `number` (its `bytes`, one page); returns a full message
    /// when this filled one.
    pub fn add(&mut self, number: u32, bytes: &[u8]) -> Option<Vec<u8>> {
        debug_assert_eq!(bytes.len(), PAGE);
        if self.buf.is_empty() {
            self.buf.reserve(1 + PAGES_PER_MESSAGE * ENTRY);
            self.buf.push(PAGES);
        }
        self.buf.extend_from_slice(&number.to_le_bytes());
        self.buf.extend_from_slice(bytes);
        self.count += 1;
        (self.count == PAGES_PER_MESSAGE).then(|| self.take())
    }

    /// The pages added so far as one message, if any.
    pub fn flush(&mut self) -> Option<Vec<u8>> {
        (self.count > 0).then(|| self.take())
    }

    fn take(&mut self) -> Vec<u8> {
        self.count = 0;
        std::mem::take(&mut self.buf)
    }
}

/// What a target does with a message the [`Receiver`] accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The source says hello (the target answers `Accept` or `Refuse`).
    Hello {
        /// The VM's name.
        vm: String,
        /// Its manifest entry.
        entry: String,
        /// Its RAM in bytes.
        mem: u64,
        /// Its disks.
        disks: Vec<DiskInfo>,
        /// Whether their contents follow.
        copy_disks: bool,
    },
    /// Pages to write: (page number, bytes), each inside the RAM.
    Pages(Vec<(u32, &'a [u8])>),
    /// A round's progress.
    Progress {
        /// The round.
        round: u32,
        /// Bytes sent so far.
        sent: u64,
    },
    /// The source asks for `Synced`.
    Sync,
    /// A piece of the state arrived (kept until `End`).
    StatePiece,
    /// Disk bytes to write (inside the disk's size).
    Disk {
        /// The disk.
        index: u32,
        /// Where.
        offset: u64,
        /// What.
        data: Vec<u8>,
    },
    /// The whole state arrived with `End`: start the guest.
    End(Vec<u8>),
    /// The source gave up.
    Failed(String),
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Hello,
    Pages,
    State,
    Done,
}

/// A target's reading of the stream: checks each message's form and
/// place, and that every page lies inside the guest's RAM.
#[derive(Debug)]
pub struct Receiver {
    phase: Phase,
    pages: u64,
    state: Vec<u8>,
    /// The disks' sizes, when their contents come along.
    disks: Vec<u64>,
}

impl Default for Receiver {
    fn default() -> Self {
        Self::new()
    }
}

impl Receiver {
    /// Waits for `Hello`.
    pub fn new() -> Receiver {
        Receiver {
            phase: Phase::Hello,
            pages: 0,
            state: Vec::new(),
            disks: Vec::new(),
        }
    }

    /// Reads one message.
    pub fn accept<'a>(&mut self, message: &'a [u8]) -> Result<Event<'a>, StreamError> {
        if self.phase == Phase::Done {
            return Err(bad("a message after the end"));
        }
        match message.split_first() {
            Some((&PAGES, body)) => self.pages(body),
            Some((&CONTROL, body)) => {
                let c: Control = postcard::from_bytes(body)
                    .map_err(|e| bad(format!("a control message: {e}")))?;
                self.control(c)
            }
            Some((kind, _)) => Err(bad(format!("unknown message kind {kind}"))),
            None => Err(bad("an empty message")),
        }
    }

    fn pages<'a>(&mut self, body: &'a [u8]) -> Result<Event<'a>, StreamError> {
        if !matches!(self.phase, Phase::Pages | Phase::State) {
            return Err(bad("pages before hello"));
        }
        if body.is_empty() || !body.len().is_multiple_of(ENTRY) {
            return Err(bad(format!("a page message of {} bytes", body.len())));
        }
        let mut out = Vec::with_capacity(body.len() / ENTRY);
        for entry in body.chunks_exact(ENTRY) {
            let number = u32::from_le_bytes(entry[..4].try_into().expect("4 bytes"));
            if u64::from(number) >= self.pages {
                return Err(bad(format!(
                    "page {number} is outside the guest's {} pages",
                    self.pages
                )));
            }
            out.push((number, &entry[4..]));
        }
        Ok(Event::Pages(out))
    }

    fn control<'a>(&mut self, c: Control) -> Result<Event<'a>, StreamError> {
        match (c, &self.phase) {
            (
                Control::Hello {
                    format,
                    vm,
                    entry,
                    mem,
                    disks,
                    copy_disks,
                },
                Phase::Hello,
            ) => {
                if format != FORMAT {
                    return Err(bad(format!("format {format} (this build speaks {FORMAT})")));
                }
                if mem == 0 || !mem.is_multiple_of(PAGE as u64) || mem > 1 << 40 {
                    return Err(bad(format!("a RAM size of {mem} bytes")));
                }
                if entry.len() > MAX_ENTRY || vm.is_empty() || vm.len() > 64 {
                    return Err(bad("an oversized VM entry or name"));
                }
                if disks.len() > 16 {
                    return Err(bad("more than 16 disks"));
                }
                self.pages = mem / PAGE as u64;
                if copy_disks {
                    self.disks = disks.iter().map(|d| d.size).collect();
                }
                self.phase = Phase::Pages;
                Ok(Event::Hello {
                    vm,
                    entry,
                    mem,
                    disks,
                    copy_disks,
                })
            }
            (Control::Progress { round, sent, .. }, Phase::Pages) => {
                Ok(Event::Progress { round, sent })
            }
            (Control::Sync, Phase::Pages) => Ok(Event::Sync),
            (Control::State(piece), Phase::Pages | Phase::State) => {
                if self.state.len() + piece.len() > MAX_STATE {
                    return Err(bad("a state larger than 16 MiB"));
                }
                self.state.extend_from_slice(&piece);
                self.phase = Phase::State;
                Ok(Event::StatePiece)
            }
            (
                Control::Disk {
                    index,
                    offset,
                    data,
                },
                Phase::State,
            ) => {
                let size = self
                    .disks
                    .get(index as usize)
                    .ok_or_else(|| bad(format!("disk {index} was not announced")))?;
                if offset
                    .checked_add(data.len() as u64)
                    .is_none_or(|end| end > *size)
                {
                    return Err(bad(format!("bytes past the end of disk {index}")));
                }
                Ok(Event::Disk {
                    index,
                    offset,
                    data,
                })
            }
            (Control::End, Phase::State) => {
                self.phase = Phase::Done;
                Ok(Event::End(std::mem::take(&mut self.state)))
            }
            (Control::Failed(why), _) => {
                self.phase = Phase::Done;
                Ok(Event::Failed(why))
            }
            (c, phase) => Err(bad(format!("{c:?} while waiting for {phase:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(mem: u64) -> Vec<u8> {
        control(&Control::Hello {
            format: FORMAT,
            vm: "v".into(),
            entry: "[[vm]]".into(),
            mem,
            disks: vec![],
            copy_disks: false,
        })
    }

    #[test]
    fn a_whole_stream_reads_in_order() {
        let mut r = Receiver::new();
        assert!(
            matches!(r.accept(&hello(1 << 20)).unwrap(), Event::Hello { mem, .. } if mem == 1 << 20)
        );
        let mut batch = PageBatch::default();
        let page = [7u8; PAGE];
        let mut messages = Vec::new();
        for n in 0..20 {
            messages.extend(batch.add(n, &page));
        }
        messages.extend(batch.flush());
        assert_eq!(messages.len(), 2);
        let mut seen = 0;
        for m in &messages {
            match r.accept(m).unwrap() {
                Event::Pages(p) => {
                    seen += p.len();
                    assert!(p.iter().all(|(_, b)| *b == page));
                }
                e => panic!("{e:?}"),
            }
        }
        assert_eq!(seen, 20);
        r.accept(&control(&Control::State(vec![1, 2]))).unwrap();
        r.accept(&control(&Control::State(vec![3]))).unwrap();
        assert_eq!(
            r.accept(&control(&Control::End)).unwrap(),
            Event::End(vec![1, 2, 3])
        );
        assert!(r.accept(&control(&Control::End)).is_err());
    }

    #[test]
    fn out_of_place_and_out_of_range_are_refused() {
        let mut r = Receiver::new();
        let mut batch = PageBatch::default();
        batch.add(0, &[0; PAGE]);
        let one = batch.flush().unwrap();
        assert!(r.accept(&one).is_err(), "pages before hello");
        assert!(
            r.accept(&control(&Control::End)).is_err(),
            "end before hello"
        );
        r.accept(&hello(PAGE as u64)).unwrap();
        batch.add(1, &[0; PAGE]);
        assert!(r.accept(&batch.flush().unwrap()).is_err(), "page 1 of 1");
        assert!(r.accept(&one[..100]).is_err(), "a torn page");
        assert!(r.accept(&[9, 1, 2]).is_err(), "unknown kind");
        assert!(r.accept(&[]).is_err());
        assert!(
            r.accept(&control(&Control::End)).is_err(),
            "end without state"
        );
        assert!(Receiver::new().accept(&hello(100)).is_err(), "odd RAM size");
    }
}
