//! Progress report and cancel, one small trait shared by Fiji (IJ.showProgress / Esc),
//! the CLI (progress bar / Ctrl-C) and tests.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Receives progress from long computations and tells them when to stop.
///
/// Implementations must be cheap: `fraction` and `cancelled` are called at least once per
/// iteration of every iterative algorithm.
pub trait Progress {
    /// Fraction of the whole job done, 0.0–1.0.
    fn fraction(&mut self, _fraction: f32) {}
    /// A short status line ("RL iteration 12/40").
    fn status(&mut self, _message: &str) {}
    /// A line for the log (device used, warnings such as a cropped PSF).
    fn log(&mut self, _message: &str) {}
    /// True once the user asked to stop.
    fn cancelled(&mut self) -> bool {
        false
    }
    /// A training epoch has ended (losses for a plot, the time left).
    fn epoch(&mut self, _stats: &EpochStats) {}
}

/// One epoch's numbers, reported as it ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// 1-based.
    pub epoch: usize,
    pub epochs: usize,
    /// Mean training loss over the epoch's steps.
    pub loss: f64,
    pub validation_loss: f64,
    pub learning_rate: f64,
    /// Estimated time to the end of training, seconds.
    pub seconds_left: f64,
}

/// Ignores progress and never cancels.
pub struct NoProgress;

impl Progress for NoProgress {}

/// `Err(Error::Cancelled)` when the user asked to stop.
pub fn check_cancel(progress: &mut dyn Progress) -> Result<()> {
    if progress.cancelled() {
        Err(Error::Cancelled)
    } else {
        Ok(())
    }
}

/// Maps the progress of one part of a job onto a range of the whole: part `k` of `n`
/// reports fractions in `[k/n, (k+1)/n]`.
pub struct SubProgress<'a> {
    inner: &'a mut dyn Progress,
    start: f32,
    span: f32,
}

impl<'a> SubProgress<'a> {
    pub fn new(inner: &'a mut dyn Progress, part: usize, parts: usize) -> Self {
        let parts = parts.max(1) as f32;
        SubProgress {
            inner,
            start: part as f32 / parts,
            span: 1.0 / parts,
        }
    }

    /// Reports fractions in `[start, end]` of the whole (e.g. 0 to 0.9 for training that is
    /// followed by a shorter step).
    pub fn range(inner: &'a mut dyn Progress, start: f32, end: f32) -> Self {
        SubProgress {
            inner,
            start,
            span: end - start,
        }
    }
}

impl Progress for SubProgress<'_> {
    fn fraction(&mut self, fraction: f32) {
        self.inner
            .fraction(self.start + self.span * fraction.clamp(0.0, 1.0));
    }
    fn status(&mut self, message: &str) {
        self.inner.status(message)
    }
    fn log(&mut self, message: &str) {
        self.inner.log(message)
    }
    fn cancelled(&mut self) -> bool {
        self.inner.cancelled()
    }
    fn epoch(&mut self, stats: &EpochStats) {
        self.inner.epoch(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps the fractions reported to it.
    #[derive(Default)]
    struct Fractions(Vec<f32>);
    impl Progress for Fractions {
        fn fraction(&mut self, fraction: f32) {
            self.0.push(fraction);
        }
    }

    #[test]
    fn sub_progress_maps_a_part_onto_its_range_of_the_whole() {
        let mut whole = Fractions::default();
        let mut part = SubProgress::new(&mut whole, 1, 4);
        for f in [0.0, 0.5, 1.0, 2.0] {
            part.fraction(f);
        }
        let mut first = SubProgress::range(&mut whole, 0.0, 0.9);
        first.fraction(0.5);
        first.fraction(1.0);
        let want = [0.25, 0.375, 0.5, 0.5, 0.45, 0.9];
        assert_eq!(whole.0.len(), want.len());
        for (got, want) in whole.0.iter().zip(want) {
            assert!((got - want).abs() < 1e-6, "{:?}", whole.0);
        }
    }
}
