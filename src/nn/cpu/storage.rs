//! The f32 values behind candle's CPU tensors, as the custom ops read them.

use candle_core::Tensor;

/// The f32 values of a contiguous CPU storage: what the custom ops (convolution, pooling,
/// batch norm) read.
pub(super) fn cpu_slice<'a>(
    s: &'a candle_core::CpuStorage,
    l: &candle_core::Layout,
) -> candle_core::Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("the CPU fast path needs contiguous tensors"),
    }
}

/// Runs `f` on the f32 values of a contiguous CPU tensor.
pub(super) fn with_cpu<R>(
    t: &Tensor,
    f: impl FnOnce(&[f32]) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        candle_core::Storage::Cpu(s) => f(cpu_slice(s, layout)?),
        _ => candle_core::bail!("the CPU fast path got a tensor that is not on the CPU"),
    }
}
