//! The live migration stream between two phones: [`link`] is the
//! encrypted, mutually authenticated connection, [`frame`] what travels
//! on it and how a target checks it.

pub mod frame;
pub mod link;

pub use frame::{control, Control, DiskInfo, Event, PageBatch, Receiver, StreamError};
pub use link::{Link, LinkError, Side};
