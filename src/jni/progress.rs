//! `fluorecon.ProgressListener` seen from Rust: the core's [`Progress`] implemented with the
//! listener's `fraction`, `status`, `log` and `cancelled` (ImageJ's progress bar, status
//! line, Log window and Esc), and for training the epochs delivered to the listener's
//! `epoch` method (the loss plot of `TrainingProgress`). A null listener ignores everything;
//! a listener that throws does not stop the computation.

use crate::progress::EpochStats;
use crate::progress::Progress;
use jni::objects::{JObject, JValue};
use jni::JNIEnv;

/// The core's [`Progress`] on a Java `ProgressListener`.
pub(crate) struct JavaProgress<'a, 'l> {
    pub(crate) env: &'a mut JNIEnv<'l>,
    pub(crate) listener: &'a JObject<'l>,
}

impl JavaProgress<'_, '_> {
    fn call_string(&mut self, method: &str, message: &str) {
        if self.listener.is_null() {
            return;
        }
        if let Ok(s) = self.env.new_string(message) {
            let _ = self.env.call_method(
                self.listener,
                method,
                "(Ljava/lang/String;)V",
                &[JValue::Object(&s)],
            );
            let _ = self.env.delete_local_ref(s);
        }
        self.clear_exception();
    }

    /// A listener that throws must not abort the computation: forget its exception.
    fn clear_exception(&mut self) {
        if self.env.exception_check().unwrap_or(false) {
            let _ = self.env.exception_clear();
        }
    }
}

impl Progress for JavaProgress<'_, '_> {
    fn fraction(&mut self, fraction: f32) {
        if self.listener.is_null() {
            return;
        }
        let _ = self.env.call_method(
            self.listener,
            "fraction",
            "(D)V",
            &[JValue::Double(fraction as f64)],
        );
        self.clear_exception();
    }
    fn status(&mut self, message: &str) {
        self.call_string("status", message)
    }
    fn log(&mut self, message: &str) {
        self.call_string("log", message)
    }
    fn cancelled(&mut self) -> bool {
        if self.listener.is_null() {
            return false;
        }
        let r = self
            .env
            .call_method(self.listener, "cancelled", "()Z", &[])
            .and_then(|v| v.z());
        self.clear_exception();
        r.unwrap_or(false)
    }
}

/// Java's progress for training: also delivers each epoch to the listener's
/// `epoch(int, int, double, double, double)` method (epoch, epochs, loss, validation loss,
/// seconds left), for the loss plot.
pub(crate) struct TrainingProgress<'a, 'l> {
    java: JavaProgress<'a, 'l>,
}

impl<'a, 'l> TrainingProgress<'a, 'l> {
    pub(crate) fn new(env: &'a mut JNIEnv<'l>, listener: &'a JObject<'l>) -> Self {
        TrainingProgress {
            java: JavaProgress { env, listener },
        }
    }
}

impl Progress for TrainingProgress<'_, '_> {
    fn fraction(&mut self, f: f32) {
        self.java.fraction(f)
    }
    fn status(&mut self, m: &str) {
        self.java.status(m)
    }
    fn log(&mut self, m: &str) {
        self.java.log(m)
    }
    fn cancelled(&mut self) -> bool {
        self.java.cancelled()
    }
    fn epoch(&mut self, e: &EpochStats) {
        if self.java.listener.is_null() {
            return;
        }
        let _ = self.java.env.call_method(
            self.java.listener,
            "epoch",
            "(IIDDD)V",
            &[
                JValue::Int(e.epoch as i32),
                JValue::Int(e.epochs as i32),
                JValue::Double(e.loss),
                JValue::Double(e.validation_loss),
                JValue::Double(e.seconds_left),
            ],
        );
        // A listener without `epoch` raises NoSuchMethodError: ignore it.
        self.java.clear_exception();
    }
}
