//! The GPU API of a build without the `cuda` feature: the same names as [`super::cuda`]'s,
//! so that the methods' call sites compile without a `cfg`; there is no GPU to open.

use crate::device::{CudaStatus, Device};
use crate::{Error, Result};

/// A GPU: none exists in this build (the type has no values).
pub enum Gpu {}

impl Gpu {
    pub fn open(_ordinal: usize) -> Result<Gpu> {
        Err(Error::Device(
            "this library was built without the 'cuda' feature".into(),
        ))
    }

    pub fn device(&self) -> Device {
        match *self {}
    }
}

/// Why there is no GPU.
pub fn probe() -> std::result::Result<CudaStatus, String> {
    Err("this library was built without the 'cuda' feature".into())
}
