//! Training data of N2V and CARE: normalised images cut into patches, split into training
//! and validation, drawn with random rotate/flip, stacked into tensors.

use crate::nn::augment::{cut, split_patches, PatchAt};
use crate::nn::device;
use crate::{invalid, Result};
use candle_core::Tensor;
use ndarray::Array3;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Checks patch side, depth (3D) and batch size against a network of `unet`'s depth.
pub(crate) fn check_patches(
    unet: &crate::nn::UNetConfig,
    patch: usize,
    patch_z: usize,
    batch: usize,
) -> Result<()> {
    let m = unet.size_multiple();
    if patch < 8 || patch % m != 0 {
        return invalid!(
            "the patch size must be a multiple of {m} (2^depth) and at least 8, not {patch}"
        );
    }
    if unet.dims == 3 && (patch_z == 0 || patch_z % m != 0) {
        return invalid!("the patch depth must be a multiple of {m} (2^depth), not {patch_z}");
    }
    if batch == 0 {
        return invalid!("the batch size must be at least 1");
    }
    // Activations of one training step, an upper bound: every convolution of every level
    // keeps its output, batch-norm and ReLU results and their gradients (f32), on the way
    // down and up.
    let voxels = (patch as f64).powi(2) * if unet.dims == 3 { patch_z as f64 } else { 1.0 };
    let per_voxel: f64 = (0..=unet.depth)
        .map(|l| (unet.base_filters << l) as f64 / 2f64.powi((unet.dims * l) as i32))
        .sum();
    let bytes = batch as f64 * voxels * per_voxel * unet.convs_per_level as f64 * 2.0 * 6.0 * 4.0;
    crate::memory::check_fits(Some(bytes.min(u64::MAX as f64) as u64)).map_err(|e| match e {
        crate::Error::OutOfMemory {
            needed_mib,
            available_mib,
        } => crate::Error::InvalidInput(format!(
            "a training batch of {batch} patches of {patch} pixels needs about {needed_mib} MiB \
             but only {available_mib} MiB are available: use a smaller batch or patch size"
        )),
        e => e,
    })
}

pub(crate) struct PatchSet {
    /// Normalised network inputs.
    pub inputs: Vec<Array3<f32>>,
    /// Normalised targets (CARE) or none (N2V: the input is its own target).
    pub targets: Option<Vec<Array3<f32>>>,
    /// (z, y, x) size of a patch; z = 1 for 2D networks.
    pub patch: (usize, usize, usize),
    pub train: Vec<PatchAt>,
    pub validation: Vec<PatchAt>,
    /// Network dimensionality, 2 or 3.
    pub dims: usize,
}

impl PatchSet {
    pub fn new(
        inputs: Vec<Array3<f32>>,
        targets: Option<Vec<Array3<f32>>>,
        patch: (usize, usize, usize),
        dims: usize,
        validation_fraction: f64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self> {
        if !(0.0..0.9).contains(&validation_fraction) {
            return invalid!(
                "the validation fraction must be between 0 and 0.9, not {validation_fraction}"
            );
        }
        let shapes: Vec<_> = inputs.iter().map(|a| a.dim()).collect();
        let (train, validation) = split_patches(&shapes, patch, validation_fraction, rng)?;
        Ok(PatchSet {
            inputs,
            targets,
            patch,
            train,
            validation,
            dims,
        })
    }

    /// A random training patch (input, target) under a random one of the 8 symmetries.
    pub fn draw(&self, rng: &mut ChaCha8Rng) -> (Array3<f32>, Option<Array3<f32>>) {
        let at = self.train[rng.gen_range(0..self.train.len())];
        let t = rng.gen_range(0..8u8);
        self.get(at, t)
    }

    /// The patch at `at` under symmetry `t`.
    pub fn get(&self, at: PatchAt, t: u8) -> (Array3<f32>, Option<Array3<f32>>) {
        let input = cut(&self.inputs[at.image], at.corner, self.patch, t);
        let target = self
            .targets
            .as_ref()
            .map(|ts| cut(&ts[at.image], at.corner, self.patch, t));
        (input, target)
    }

    /// Stacks patches into a (batch, 1, [z,] y, x) tensor.
    pub fn tensor(&self, patches: &[Array3<f32>]) -> Result<Tensor> {
        let (pz, py, px) = self.patch;
        let mut data = Vec::with_capacity(patches.len() * pz * py * px);
        for p in patches {
            data.extend(p.iter().copied());
        }
        let shape: Vec<usize> = if self.dims == 2 {
            vec![patches.len(), 1, py, px]
        } else {
            vec![patches.len(), 1, pz, py, px]
        };
        Ok(Tensor::from_vec(data, shape, &device())?)
    }
}
