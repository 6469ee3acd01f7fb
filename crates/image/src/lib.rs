//! `image`: portable VM image files (`.pvi`), the carrier that moves a VM
//! to another phone. See [`format`] for the layout; [`write`] and [`read`]
//! stream it (memory use does not grow with the image), [`keys`] derives
//! the content key from a passphrase or for a recipient.
//!
//! Every byte after the header is authenticated twice: each chunk by
//! AES-256-GCM (with the file id, its index, its section and whether it is
//! the last in the associated data, so chunks cannot be reordered, dropped,
//! duplicated or moved between files), and the whole by the exporting
//! phone's Ed25519 signature over the header and every chunk.

pub mod format;
pub mod keys;
pub mod migration;
pub mod read;
pub mod write;

pub use format::{Header, ImageError, KeyHeader, SectionHeader};
pub use keys::{ContentKey, KeySource};
pub use read::ImageReader;
pub use write::{write_image, Describe, Section};
