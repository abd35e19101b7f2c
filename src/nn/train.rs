//! The training loop shared by every network: Adam, ReduceLROnPlateau on the validation
//! loss, progress and the time left per epoch, cancel, and the weights of the best
//! validation epoch kept at the end (as Keras' `ModelCheckpoint(save_best_only)` in CSBDeep).

use super::{restore, snapshot};
use crate::progress::{check_cancel, Progress};
use crate::{invalid, Result};
use candle_core::Tensor;
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// What is being learnt: the loss of a training batch and of the validation data.
pub trait Objective {
    /// Loss of one freshly drawn, augmented training batch: a scalar attached to the graph
    /// of the trainable parameters (batch norm in training mode).
    fn training_loss(&mut self, rng: &mut ChaCha8Rng) -> Result<Tensor>;
    /// Mean loss over the held-out validation data, inference mode, the same data every
    /// epoch.
    fn validation_loss(&mut self) -> Result<f64>;
}

/// Optimiser and schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainOptions {
    pub epochs: usize,
    pub steps_per_epoch: usize,
    /// Adam step size at the start.
    pub learning_rate: f64,
    /// ReduceLROnPlateau: multiply the learning rate by `lr_factor` after `lr_patience`
    /// epochs without a better validation loss (CSBDeep: 0.5, 10), never below `min_lr`.
    pub lr_factor: f64,
    pub lr_patience: usize,
    pub min_lr: f64,
    /// Seed of everything random in training (initial weights, patches, masks).
    pub seed: u64,
    /// Where to train (the networks run on the CPU for now; a CUDA request is logged with the
    /// reason). Not part of a model file: the same model trains anywhere.
    #[serde(skip)]
    pub device: crate::device::DeviceRequest,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 100,
            steps_per_epoch: 400,
            learning_rate: 4e-4,
            lr_factor: 0.5,
            lr_patience: 10,
            min_lr: 1e-7,
            seed: 1,
            device: crate::device::DeviceRequest::Auto,
        }
    }
}

impl TrainOptions {
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 || self.steps_per_epoch == 0 {
            return invalid!("training needs at least one epoch of at least one step");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate < 1.0) {
            return invalid!(
                "the learning rate must be between 0 and 1, not {}",
                self.learning_rate
            );
        }
        if !(self.lr_factor > 0.0 && self.lr_factor <= 1.0) {
            return invalid!("the learning-rate factor must be in (0, 1]");
        }
        Ok(())
    }
}

pub use crate::progress::EpochStats;

/// The whole history, stored in `model.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    pub history: Vec<EpochStats>,
    /// 1-based epoch whose weights were kept (lowest validation loss).
    pub best_epoch: usize,
    pub best_validation_loss: f64,
    pub seconds: f64,
}

/// Trains the parameters in `vars` on `objective`. Reports each epoch through `progress`
/// (fraction, status, a log line and [`Progress::epoch`]); checks for cancel after every step
/// (`Err(Cancelled)`, the variables are then left in an unspecified state). At the end
/// the variables hold the weights of the epoch with the lowest validation loss.
pub fn train(
    vars: &VarMap,
    objective: &mut dyn Objective,
    options: &TrainOptions,
    progress: &mut dyn Progress,
) -> Result<TrainReport> {
    options.validate()?;
    let _heap = super::reuse_freed_memory();
    let start = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ 0x5EED_7A1E);
    // AdamW without weight decay is Adam.
    let mut adam = AdamW::new(
        vars.all_vars(),
        ParamsAdamW {
            lr: options.learning_rate,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut lr = options.learning_rate;
    let mut report = TrainReport {
        best_validation_loss: f64::INFINITY,
        ..Default::default()
    };
    let mut best = None;
    let mut plateau = Plateau::new(options.lr_patience);
    let total_steps = options.epochs * options.steps_per_epoch;
    for epoch in 1..=options.epochs {
        let mut sum = 0.0;
        for step in 0..options.steps_per_epoch {
            check_cancel(progress)?;
            let loss = objective.training_loss(&mut rng)?;
            let value = loss.to_scalar::<f32>()? as f64;
            if !value.is_finite() {
                return invalid!(
                    "training diverged (loss {value} in epoch {epoch}); try a smaller learning \
                     rate"
                );
            }
            adam.backward_step(&loss)?;
            sum += value;
            let done = (epoch - 1) * options.steps_per_epoch + step + 1;
            progress.fraction(done as f32 / total_steps as f32);
        }
        check_cancel(progress)?;
        let validation_loss = objective.validation_loss()?;
        let elapsed = start.elapsed().as_secs_f64();
        let stats = EpochStats {
            epoch,
            epochs: options.epochs,
            loss: sum / options.steps_per_epoch as f64,
            validation_loss,
            learning_rate: lr,
            seconds_left: elapsed / epoch as f64 * (options.epochs - epoch) as f64,
        };
        if validation_loss < report.best_validation_loss {
            report.best_validation_loss = validation_loss;
            report.best_epoch = epoch;
            best = Some(snapshot(vars)?);
        }
        progress.status(&format!(
            "Training epoch {epoch}/{}: loss {:.5}, validation {:.5}, {} left",
            options.epochs,
            stats.loss,
            validation_loss,
            format_seconds(stats.seconds_left)
        ));
        progress.log(&format!(
            "epoch {epoch}/{}: loss {:.6}, validation loss {:.6}, learning rate {:.2e}",
            options.epochs, stats.loss, validation_loss, lr
        ));
        progress.epoch(&stats);
        report.history.push(stats);
        if plateau.stalled(validation_loss) {
            let new_lr = (lr * options.lr_factor).max(options.min_lr);
            if new_lr < lr {
                lr = new_lr;
                adam.set_learning_rate(lr);
                progress.log(&format!("learning rate reduced to {lr:.2e}"));
            }
        }
    }
    if let Some(best) = best {
        restore(vars, &best)?;
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// "1:05" style minutes:seconds (or h:mm:ss).
pub fn format_seconds(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// ReduceLROnPlateau's bookkeeping (Keras: mode min, min_delta 1e-4 relative, cooldown 0).
struct Plateau {
    patience: usize,
    best: f64,
    waited: usize,
}

impl Plateau {
    fn new(patience: usize) -> Self {
        Plateau {
            patience,
            best: f64::INFINITY,
            waited: 0,
        }
    }

    /// Feeds one epoch's validation loss; true when the learning rate should drop.
    fn stalled(&mut self, loss: f64) -> bool {
        if loss < self.best * (1.0 - 1e-4) {
            self.best = loss;
            self.waited = 0;
            return false;
        }
        self.waited += 1;
        if self.waited >= self.patience.max(1) {
            self.waited = 0;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::device;
    use candle_core::DType;
    use candle_nn::{Init, VarBuilder};

    #[test]
    fn plateau_waits_patience_epochs() {
        let mut p = Plateau::new(3);
        assert!(!p.stalled(1.0));
        assert!(!p.stalled(1.0));
        assert!(!p.stalled(1.0));
        assert!(p.stalled(1.0), "third epoch without improvement");
        assert!(!p.stalled(0.5));
    }

    /// Least squares y = a·x + b fitted by Adam: the loop must find a = 3, b = −1.
    struct Line {
        a: Tensor,
        b: Tensor,
        x: Tensor,
        y: Tensor,
    }

    impl Objective for Line {
        fn training_loss(&mut self, _rng: &mut ChaCha8Rng) -> Result<Tensor> {
            let pred = self.x.broadcast_mul(&self.a)?.broadcast_add(&self.b)?;
            Ok((pred - &self.y)?.sqr()?.mean_all()?)
        }
        fn validation_loss(&mut self) -> Result<f64> {
            Ok(self
                .training_loss(&mut ChaCha8Rng::seed_from_u64(0))?
                .to_scalar::<f32>()? as f64)
        }
    }

    #[test]
    fn adam_fits_a_line_and_keeps_best_epoch() {
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &device());
        let a = vb.get_with_hints(1, "a", Init::Const(0.0)).unwrap();
        let b = vb.get_with_hints(1, "b", Init::Const(0.0)).unwrap();
        let xs: Vec<f32> = (0..20).map(|i| i as f32 / 10.0).collect();
        let ys: Vec<f32> = xs.iter().map(|x| 3.0 * x - 1.0).collect();
        let mut line = Line {
            a,
            b,
            x: Tensor::new(xs.as_slice(), &device()).unwrap(),
            y: Tensor::new(ys.as_slice(), &device()).unwrap(),
        };
        let opts = TrainOptions {
            epochs: 20,
            steps_per_epoch: 50,
            learning_rate: 0.1,
            ..Default::default()
        };
        /// Counts the epochs reported.
        struct Epochs(usize);
        impl Progress for Epochs {
            fn epoch(&mut self, _: &EpochStats) {
                self.0 += 1;
            }
        }
        let mut epochs = Epochs(0);
        let report = train(&vars, &mut line, &opts, &mut epochs).unwrap();
        assert_eq!(epochs.0, 20);
        let a = line.a.to_vec1::<f32>().unwrap()[0];
        let b = line.b.to_vec1::<f32>().unwrap()[0];
        assert!(
            (a - 3.0).abs() < 0.02 && (b + 1.0).abs() < 0.02,
            "a={a} b={b}"
        );
        let best = report
            .history
            .iter()
            .map(|e| e.validation_loss)
            .fold(f64::INFINITY, f64::min);
        assert_eq!(report.best_validation_loss, best);
    }

    struct Cancels(usize);
    impl Progress for Cancels {
        fn cancelled(&mut self) -> bool {
            self.0 += 1;
            self.0 > 5
        }
    }

    #[test]
    fn cancel_stops_training() {
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &device());
        let a = vb.get_with_hints(1, "a", Init::Const(0.0)).unwrap();
        let mut line = Line {
            a: a.clone(),
            b: a,
            x: Tensor::new(&[1f32], &device()).unwrap(),
            y: Tensor::new(&[1f32], &device()).unwrap(),
        };
        let r = train(&vars, &mut line, &TrainOptions::default(), &mut Cancels(0));
        assert!(matches!(r, Err(crate::Error::Cancelled)));
    }
}
