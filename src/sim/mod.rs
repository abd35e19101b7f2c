//! 2D structured-illumination microscopy (SIM) reconstruction: pattern estimation and Wiener
//! reconstruction at twice the widefield resolution.
//!
//! Follows Gustafsson 2000 (J. Microsc. 198:82, the image formation model and Wiener SIM),
//! Wicker et al. 2013 (Opt. Express 21:2032, phase and parameter estimation by band
//! cross-correlation) and Müller et al. 2016 (Nat. Commun. 7:10980, fairSIM: OTF model,
//! attenuated OTF, apodisation, defaults).
//!
//! Conventions: the raw stack is a [`Volume`](crate::Volume) whose planes are the frames,
//! in the order given by [`FrameOrder`] (default PAZ: phase fastest, then angle, then z);
//! each z plane is reconstructed in 2D. Pixel sizes come from [`SimOptics`] (nm); frequencies
//! are in cycles/µm or in pixels of the Fourier grid (FFT index units); angles in degrees from
//! +x towards +y; phases in radians, of the pattern cos(2πk₀·r + φ) with r measured from the
//! centre pixel (x, y) = (nx/2, ny/2), 0-based. Output images have half the raw pixel size
//! (2× as many pixels along x and y); output pixel (2x, 2y) is centred on raw pixel (x, y).
//!
//! - [`otf`]: the OTF model; [`synthetic`]: simulated raw data with known parameters;
//! - [`estimate`]: k₀, phase and modulation per direction; [`directions`]: all directions
//!   at once, consistent with each other; [`outliers`]: hot pixels replaced; [`reconstruct`](mod@reconstruct):
//!   the Wiener filter; [`bands`]: band separation and shifts.
//! - `stack`: [`reconstruct()`](fn@reconstruct), the driver over the planes; `options`;
//!   `frame_order` and its check; `planes`: each plane's Wiener filter on the GPU or the CPU;
//!   `spectrum`: [`fourier_view`].
//!
//! Devices: the Wiener filter of every plane runs on an NVIDIA GPU (`wiener_cuda`, the `cuda`
//! feature) when [`SimOptions::device`] allows and one is usable, else on the CPU, with the
//! same filters and the same result up to float rounding; a GPU failure finishes the stack on
//! the CPU. Pattern estimation always runs on the CPU.

pub mod bands;
pub mod directions;
pub mod estimate;
mod frame_order;
pub mod noise;
mod options;
pub mod otf;
pub mod outliers;
mod planes;
pub mod reconstruct;
mod spectrum;
mod stack;
pub mod synthetic;
#[cfg(feature = "cuda")]
pub mod wiener_cuda;
/// Without the `cuda` feature there is no GPU for the Wiener filter: a
/// [`wiener_cuda::SimGpu`] cannot be made, so the GPU branch of the plane loop is never taken.
#[cfg(not(feature = "cuda"))]
mod wiener_cuda {
    use super::reconstruct::WienerFilters;
    use crate::{device::Device, gpu::Gpu, Result};

    /// The SIM reconstruction on a GPU: none exists in this build (the type has no values).
    pub enum SimGpu {}

    impl SimGpu {
        pub fn new(gpu: Gpu, _: (usize, usize), _: usize, _: usize) -> Result<SimGpu> {
            match gpu {}
        }
        pub fn device(&self) -> Device {
            match *self {}
        }
        pub fn set_filters(&mut self, _: &WienerFilters) -> Result<()> {
            match *self {}
        }
        pub fn reconstruct(&mut self, _: &[Vec<&[f32]>], _: [&mut [f32]; 3]) -> Result<()> {
            match *self {}
        }
    }
}

pub use estimate::{AngleParams, ParamFlags};
pub use frame_order::FrameOrder;
pub use options::{SimOptions, SimResult};
pub use otf::{Otf, SimOptics};
pub use spectrum::fourier_view;
pub use stack::reconstruct;
pub use synthetic::{simulate_sim, PatternTruth, SimAcquisition, SimData};
