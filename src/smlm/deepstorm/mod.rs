//! Deep-STORM (Nehme, Weiss, Michaeli & Shechtman, Optica 2018): a convolutional network
//! that turns one camera frame of blinking molecules into a density map on a grid `upsampling`
//! times finer, in which every molecule is a compact spot of integral [`SPIKE`]. Dense
//! frames whose spots overlap, where fitting one Gaussian per spot fails, are its use.
//!
//! ```text
//!  frame ─ ×up (nearest) ─ enc.0 ─ pool ─ enc.1 ─ pool ─ enc.2 ─ pool ─ middle
//!                                                                           │
//!  density ─ head (1×1, linear) ─ dec.2 ─ up ─ dec.1 ─ up ─ dec.0 ─ up ────┘
//! ```
//!
//! Every block is a 3×3 convolution, batch norm and ReLU; there are no skip connections.
//! The paper's sizes are `filters` 32-64-128, a 512-channel middle and 8× upsampling;
//! [`DeepStormConfig`] makes them settings, and the model shipped in `models/` uses smaller
//! ones that train on a laptop CPU (its model card says which).
//!
//! Input normalisation: ADU → photons with the camera settings, minus the frame's median (the
//! background), divided by the model's `input_scale` (photons). Localizations are the local
//! maxima of the density map blurred by the loss's Gaussian (σ = 1 fine pixel) above a
//! threshold, with sub-pixel positions from a Gaussian (log-parabola) fit of the 3 × 3 peak;
//! their photons and background come from a linear least-squares fit of the frame with the
//! PSF at the found positions, their uncertainty from those photons (Mortensen et al. 2010).
//!
//! Training ([`training`]) is on simulated frames, as in the paper: random emitters on the
//! fine grid, the camera's noise, loss = MSE(G ⊛ prediction, G ⊛ truth) + λ·L1(prediction).

mod localizer;
mod model;
mod net;
mod peaks;
pub mod training;

pub use localizer::{deepstorm_stack, DeepStormLocalizer, DeepStormOptions, DeepStormResult};
pub use model::{normalise_frame, DeepStormInfo, DeepStormModel, METHOD};
pub use net::{new_net, DeepStormConfig, DeepStormNet};
use peaks::single_peak;
pub use peaks::{
    blur, find_peaks, fit_amplitudes, gaussian_kernel, mortensen_px, AmplitudeFit, BLUR_SIGMA,
    SPIKE,
};
pub use training::{train_deepstorm, TrainingSettings};

#[cfg(test)]
mod tests;
