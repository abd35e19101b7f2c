//! candle's errors as the crate's: a CUDA failure of a network on a GPU is an
//! [`Error::Device`] (the callers then retry with smaller tiles or on the CPU, and the log
//! says "the GPU is out of memory" rather than a driver code); anything else is an
//! [`Error::Internal`] that says it came from a neural network (the `?` after every candle
//! call in the networks and their methods).

use crate::Error;

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        let text = e.to_string();
        if text.contains("CUDA_ERROR_OUT_OF_MEMORY") {
            Error::Device("the GPU is out of memory".into())
        } else if matches!(e, candle_core::Error::Cuda(_)) || text.contains("CUDA_ERROR") {
            Error::Device(format!("CUDA: {text}"))
        } else {
            Error::Internal(format!("neural network: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_failures_are_device_errors_with_a_plain_message() {
        let cuda =
            |m: &str| candle_core::Error::Cuda(Box::new(std::io::Error::other(m.to_string())));
        let oom = Error::from(cuda(
            "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")",
        ));
        assert_eq!(oom.to_string(), "GPU error: the GPU is out of memory");
        let other = Error::from(cuda(
            "DriverError(CUDA_ERROR_LAUNCH_FAILED, \"launch failed\")",
        ));
        assert!(matches!(other, Error::Device(_)), "{other}");
        let bug = Error::from(candle_core::Error::Msg("shape mismatch".into()));
        assert!(matches!(bug, Error::Internal(_)), "{bug}");
        assert!(crate::device::worth_retrying_on_cpu(&oom));
    }
}
