//! The networks' variables: a fresh, seeded U-Net, seeded initialisation, copies to another
//! device, and snapshots of the values (the best epoch's weights).

use super::{device, UNet, UNetConfig};
use crate::Error;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Uniform};

/// A copy of the network variables `vars` on `device`, and the network that `build` makes
/// from a variable builder of the copy (every variable it creates must be in `vars`).
pub fn vars_on<N>(
    vars: &VarMap,
    device: &Device,
    build: impl FnOnce(candle_nn::VarBuilder) -> candle_core::Result<N>,
) -> crate::Result<(VarMap, N)> {
    let copy = VarMap::new();
    let net = build(candle_nn::VarBuilder::from_varmap(
        &copy,
        DType::F32,
        device,
    ))?;
    {
        let from = vars.data().lock().expect("var map lock");
        let to = copy.data().lock().expect("var map lock");
        for (name, var) in to.iter() {
            match from.get(name) {
                Some(v) => var.set(&v.as_tensor().to_device(device)?)?,
                None => {
                    return Err(Error::Internal(format!(
                        "network variable '{name}' has no value to copy"
                    )))
                }
            }
        }
    }
    Ok((copy, net))
}

/// Re-initialises every parameter of `vars` from `seed` (candle's CPU random generator
/// cannot be seeded): tensors named `*.weight` of rank ≥ 2 and `*.bias` of convolutions get
/// uniform values in ±1/√fan-in (PyTorch's default for convolutions, so also CAREamics'; He-
/// normal weights, 2.45× larger, trained N2V 2.5 dB worse after the same steps and diverged
/// at lr 2e-3 in the tests' configuration), batch-norm parameters and running statistics
/// keep their constant initial values. Names are visited in sorted
/// order, so the same seed gives the same network.
pub fn seeded_init(vars: &VarMap, seed: u64) -> crate::Result<()> {
    let data = vars.data().lock().expect("var map lock");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Fan-in of each weight, to size the bias of the same layer.
    let mut fan_in = std::collections::HashMap::new();
    for name in &names {
        let var = &data[*name];
        if name.ends_with(".weight") && var.rank() >= 2 {
            let dims = var.dims();
            fan_in.insert(
                name.trim_end_matches(".weight").to_string(),
                dims[1..].iter().product::<usize>(),
            );
        }
    }
    for name in names {
        let var = &data[name];
        let n = var.elem_count();
        let prefix = name
            .trim_end_matches(".weight")
            .trim_end_matches(".bias")
            .to_string();
        let values: Vec<f32> = if name.ends_with(".weight") && var.rank() >= 2 {
            // PyTorch's default for convolutions (He-uniform with a = √5): U(±1/√fan-in).
            let bound = 1.0 / (fan_in[&prefix] as f32).sqrt();
            let uniform = Uniform::new_inclusive(-bound, bound);
            (0..n).map(|_| uniform.sample(&mut rng)).collect()
        } else if name.ends_with(".bias") && fan_in.contains_key(&prefix) {
            let bound = 1.0 / (fan_in[&prefix] as f32).sqrt();
            let uniform = Uniform::new_inclusive(-bound, bound);
            (0..n).map(|_| uniform.sample(&mut rng)).collect()
        } else {
            continue;
        };
        var.set(&Tensor::from_vec(values, var.shape(), var.device())?)?;
    }
    Ok(())
}

/// A copy of every parameter's current value (to keep the best weights while training).
pub fn snapshot(vars: &VarMap) -> crate::Result<Vec<(String, Tensor)>> {
    let data = vars.data().lock().expect("var map lock");
    data.iter()
        .map(|(k, v)| Ok((k.clone(), v.as_tensor().copy()?)))
        .collect()
}

/// Sets every parameter to the values of a [`snapshot`].
pub fn restore(vars: &VarMap, values: &[(String, Tensor)]) -> crate::Result<()> {
    let data = vars.data().lock().expect("var map lock");
    for (k, t) in values {
        if let Some(v) = data.get(k) {
            v.set(t)?;
        }
    }
    Ok(())
}

/// The device the variables of `vars` live on (the CPU for an empty map).
pub fn vars_device(vars: &VarMap) -> Device {
    vars.all_vars()
        .first()
        .map_or(Device::Cpu, |v| v.device().clone())
}

/// Whether the variables of `vars` live on `device` (true for an empty map).
pub fn vars_are_on(vars: &VarMap, device: &Device) -> bool {
    vars.all_vars()
        .first()
        .is_none_or(|v| v.device().same_device(device))
}

/// A fresh variable map and a network built on it (on [`device()`]), randomly initialised
/// from `seed`.
pub fn new_unet(config: &UNetConfig, seed: u64) -> crate::Result<(VarMap, UNet)> {
    config
        .validate()
        .map_err(|e| Error::InvalidInput(super::model_file::first_line(&e)))?;
    super::model_file::check_parameters(config.parameter_count())?;
    let vars = VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&vars, DType::F32, &device());
    let net = UNet::new(config, vb).map_err(|e| Error::InvalidInput(e.to_string()))?;
    seeded_init(&vars, seed)?;
    Ok((vars, net))
}
