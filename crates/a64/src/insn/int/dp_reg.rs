//! Data processing, register: shifted/extended add/subtract and logical,
//! add/subtract with carry, conditional compare and select, one-, two- and
//! three-source operations (multiply, divide, CLZ, REV, CRC32, ...).

use crate::decode::Encoding;

pub(crate) const ENCODINGS: &[Encoding] = &[];
