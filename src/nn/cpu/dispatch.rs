//! Which CPU kernels run: the one place that reads the `FLUORECON_*` switches and probes the
//! CPU, once per process. Layers and kernels ask [`dispatch()`] and never look themselves.
//!
//! The switches are environment variables, each on when set to anything (even empty), read
//! the first time a network runs. Each one brings back a slower path, to compare results or
//! speed against it; none is needed for correct results:
//!
//! - `FLUORECON_CANDLE_CONV`: candle's convolution instead of [`super::conv`] (every path).
//! - `FLUORECON_GEMM_CONV`: 3×3 convolutions by im2col + gemm instead of the direct AVX-512
//!   kernel and Winograd.
//! - `FLUORECON_DIRECT_CONV`: 3×3 convolutions by the direct AVX-512 kernel, not Winograd.
//! - `FLUORECON_CANDLE_BN`: candle's training-mode batch norm instead of
//!   [`super::batch_norm`].
//! - `FLUORECON_CANDLE_POOL`: candle's max pooling and upsampling instead of [`super::pool`]
//!   (candle's max-pool gradient is not the true one: this reproduces the training of models
//!   made before [`super::pool`] existed).
//! - `FLUORECON_UNFUSED_TRAINING`: the U-Net's training pass op by op instead of as one fused
//!   op.
//!
//! The CPU probe: AVX-512F, which the direct convolution, Winograd, the fused training pass
//! and the ReLU mask's vector form need.

use std::sync::OnceLock;

/// The `FLUORECON_*` switches (see the module comment); all off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Switches {
    /// `FLUORECON_CANDLE_CONV`.
    pub candle_conv: bool,
    /// `FLUORECON_GEMM_CONV`.
    pub gemm_conv: bool,
    /// `FLUORECON_DIRECT_CONV`.
    pub direct_conv: bool,
    /// `FLUORECON_CANDLE_BN`.
    pub candle_batch_norm: bool,
    /// `FLUORECON_CANDLE_POOL`.
    pub candle_pool: bool,
    /// `FLUORECON_UNFUSED_TRAINING`.
    pub unfused_training: bool,
}

impl Switches {
    /// The switches as the environment sets them.
    fn from_env() -> Self {
        let set = |name: &str| std::env::var_os(name).is_some();
        Switches {
            candle_conv: set("FLUORECON_CANDLE_CONV"),
            gemm_conv: set("FLUORECON_GEMM_CONV"),
            direct_conv: set("FLUORECON_DIRECT_CONV"),
            candle_batch_norm: set("FLUORECON_CANDLE_BN"),
            candle_pool: set("FLUORECON_CANDLE_POOL"),
            unfused_training: set("FLUORECON_UNFUSED_TRAINING"),
        }
    }
}

/// The choice of kernels: the switches and what the CPU can do.
#[derive(Debug, Clone, Copy)]
pub struct Dispatch {
    switches: Switches,
    avx512f: bool,
}

/// The switches and the CPU probe, read once.
fn process_wide() -> Dispatch {
    static ONCE: OnceLock<Dispatch> = OnceLock::new();
    *ONCE.get_or_init(|| Dispatch {
        switches: Switches::from_env(),
        #[cfg(target_arch = "x86_64")]
        avx512f: std::arch::is_x86_feature_detected!("avx512f"),
        #[cfg(not(target_arch = "x86_64"))]
        avx512f: false,
    })
}

#[cfg(test)]
thread_local! {
    /// Tests: the switches of this thread's networks (see [`with_switches`]).
    static SWITCHES: std::cell::Cell<Option<Switches>> = const { std::cell::Cell::new(None) };
}

/// The choice of kernels for this process (in tests, for this thread: see
/// `with_switches`).
pub fn dispatch() -> Dispatch {
    #[cfg(test)]
    if let Some(switches) = SWITCHES.with(|s| s.get()) {
        return Dispatch {
            switches,
            ..process_wide()
        };
    }
    process_wide()
}

/// Tests: runs `f` with the switches that `set` makes of the process's, on this thread
/// only (the switches are asked on the thread that runs a layer or a backward pass, before
/// the work is spread over the thread pool). The CPU probe cannot be overridden.
#[cfg(test)]
pub(crate) fn with_switches<R>(set: impl FnOnce(&mut Switches), f: impl FnOnce() -> R) -> R {
    /// Puts the previous switches back, also when `f` panics.
    struct Restore(Option<Switches>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SWITCHES.with(|s| s.set(self.0));
        }
    }
    let mut switches = dispatch().switches;
    set(&mut switches);
    let _restore = Restore(SWITCHES.with(|s| s.replace(Some(switches))));
    f()
}

impl Dispatch {
    /// Whether the CPU has AVX-512F (the direct convolution, Winograd, the fused training
    /// pass and the ReLU mask's vector form need it).
    pub fn avx512f(&self) -> bool {
        self.avx512f
    }

    /// Whether CPU convolutions go through [`super::conv`] rather than candle's.
    pub fn conv(&self) -> bool {
        !self.switches.candle_conv
    }

    /// Whether a k×k convolution in [`super::conv`] takes the direct AVX-512 path (3×3 with
    /// AVX-512F, where Winograd may take over) rather than im2col + gemm.
    pub fn direct_conv(&self, k: usize) -> bool {
        k == 3 && self.avx512f && !self.switches.gemm_conv
    }

    /// Whether the 3×3 layers of the direct path go through Winograd's F(2×2, 3×3) where
    /// their shapes allow it.
    pub fn winograd(&self) -> bool {
        !self.switches.direct_conv
    }

    /// Whether training-mode batch norm on the CPU goes through [`super::batch_norm`].
    pub fn batch_norm(&self) -> bool {
        !self.switches.candle_batch_norm
    }

    /// Whether max pooling and upsampling on the CPU go through [`super::pool`].
    pub fn pool(&self) -> bool {
        !self.switches.candle_pool
    }

    /// Whether the training pass of a U-Net of k×k kernels (of a shape the fused pass
    /// takes) runs as one op on the CPU: its convolutions take the direct path, and
    /// `FLUORECON_UNFUSED_TRAINING` is off.
    pub fn fused_training(&self, k: usize) -> bool {
        self.direct_conv(k) && !self.switches.unfused_training
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_override_this_thread_only_and_come_back() {
        let before = dispatch().switches;
        with_switches(
            |s| s.gemm_conv = true,
            || {
                assert!(!dispatch().direct_conv(3));
                assert!(!dispatch().fused_training(3));
                let other = std::thread::spawn(|| dispatch().switches).join().unwrap();
                assert_eq!(other, before);
            },
        );
        assert_eq!(dispatch().switches, before);
        assert_eq!(
            dispatch().direct_conv(3),
            dispatch().avx512f() && !before.gemm_conv
        );
        assert!(!dispatch().direct_conv(5));
    }
}
