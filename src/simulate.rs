//! Simulated data (being written).
