//! Rust objects lent to Java as `long` handles: made by [`into_handle`], used through
//! [`handle_mut`], given back exactly once by [`take_handle`] (Java then clears its copy, so a
//! used-up handle is 0). One Java thread uses a handle at a time. The streams of frames that
//! Java feeds a chunk at a time (the localizer, Deep-STORM) are [`FrameStream`]s.

use super::convert::read_all_floats;
use super::guard;
use super::progress::JavaProgress;
use crate::progress::Progress;
use crate::{Error, Result};
use jni::objects::{JFloatArray, JObject};
use jni::sys::jlong;
use jni::JNIEnv;

pub(crate) fn into_handle<T>(value: T) -> jlong {
    Box::into_raw(Box::new(value)) as jlong
}

pub(crate) fn handle_mut<'a, T>(handle: jlong, what: &str) -> Result<&'a mut T> {
    if handle == 0 {
        return Err(Error::Internal(format!(
            "{what} used after it was finished"
        )));
    }
    // SAFETY: a non-zero handle comes from `into_handle::<T>` and has not been taken back
    // (see above).
    Ok(unsafe { &mut *(handle as *mut T) })
}

pub(crate) fn take_handle<T>(handle: jlong, what: &str) -> Result<Box<T>> {
    handle_mut::<T>(handle, what)?;
    // SAFETY: as in `handle_mut`; Java clears the handle, so this happens once.
    Ok(unsafe { Box::from_raw(handle as *mut T) })
}

/// Drops the object behind a handle that was not finished (cancel, error); 0 is ignored.
pub(crate) fn free_handle<T>(handle: jlong, what: &str) {
    if handle != 0 {
        drop(take_handle::<T>(handle, what));
    }
}

/// A stream of whole frames lent to Java through a handle (the localizer, Deep-STORM).
pub(crate) trait FrameStream {
    /// What the handle is called in messages.
    const WHAT: &'static str;
    fn push(&mut self, frames: &[f32], progress: &mut dyn Progress) -> Result<()>;
}

/// The body of every `…Push(long handle, float[] frames, ProgressListener listener)`.
pub(crate) fn push_frames<'l, T: FrameStream>(
    env: &mut JNIEnv<'l>,
    handle: jlong,
    frames: &JFloatArray<'l>,
    listener: &JObject<'l>,
) {
    guard(env, |env| {
        let data = read_all_floats(env, frames, "the frames")?;
        let stream = handle_mut::<T>(handle, T::WHAT)?;
        let mut progress = JavaProgress { env, listener };
        stream.push(&data, &mut progress)
    })
}
