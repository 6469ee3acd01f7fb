//! IEEE 754 arithmetic with Arm semantics (FPCR rounding, flush-to-zero,
//! default NaN; FPSR cumulative flags).
