//! File formats used by the command line (the Fiji plugin gets its pixels from ImageJ).

pub mod tiff;
