//! The JNI bridge to the Fiji plugin: the only FFI code, one file per Java `Native*` class
//! ([`native`] ↔ `Native.java`, [`native_nn`] ↔ `NativeNn.java`, [`native_smlm`] ↔
//! `NativeSmlm.java`, [`native_deepstorm`] ↔ `NativeDeepStorm.java`), conversions in
//! [`convert`], the Java progress listener in [`progress`], Rust objects lent to Java in
//! [`handles`]. No rules of its own: every entry point converts, calls the core, converts back.
//!
//! Arrays are copied in, the core computes, results are copied out (no critical sections
//! are held while Java is called back). Every `Err` becomes a `fluorecon.FluoreconException`
//! (`fluorecon.CancelledException` for a cancel) and every panic is caught and becomes a
//! `FluoreconException` too: Fiji never crashes because of the engine.

pub(crate) mod convert;
pub(crate) mod handles;
pub mod native;
pub mod native_deepstorm;
pub mod native_nn;
pub mod native_smlm;
pub(crate) mod progress;

use crate::{Error, Result};
use jni::JNIEnv;
use std::panic::{catch_unwind, AssertUnwindSafe};

const EXCEPTION: &str = "fluorecon/FluoreconException";
const CANCELLED: &str = "fluorecon/CancelledException";

impl From<jni::errors::Error> for Error {
    fn from(e: jni::errors::Error) -> Self {
        Error::Internal(format!("JNI: {e}"))
    }
}

/// Runs `body`, turning an `Err` or a panic into a pending Java exception (and the
/// return value into null / the default).
pub(crate) fn guard<'l, T: Default>(
    env: &mut JNIEnv<'l>,
    body: impl FnOnce(&mut JNIEnv<'l>) -> Result<T>,
) -> T {
    let outcome = catch_unwind(AssertUnwindSafe(|| body(&mut *env)));
    let err = match outcome {
        Ok(Ok(v)) => return v,
        Ok(Err(e)) => e,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Error::Internal(msg)
        }
    };
    // A Java exception raised by a callback may be pending: ours replaces it.
    if env.exception_check().unwrap_or(false) {
        let _ = env.exception_clear();
    }
    let class = if matches!(err, Error::Cancelled) {
        CANCELLED
    } else {
        EXCEPTION
    };
    let _ = env.throw_new(class, err.to_string());
    T::default()
}
