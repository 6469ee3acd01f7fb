//! Placeholder module: filled in by its owner.

use crate::decode::Encoding;

pub(crate) const ENCODINGS: &[Encoding] = &[];
