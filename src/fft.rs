//! FFT (being written).
