//! The one error type of Fluorecon. Messages are written for the person at the microscope:
//! they say what is wrong with the input and what to do about it.

/// Every fallible Fluorecon function returns this.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input cannot be processed as given (wrong size, NaN pixels, bad parameter…).
    #[error("{0}")]
    InvalidInput(String),
    /// The user pressed Esc (Fiji) or Ctrl-C (CLI). Nothing was written.
    #[error("cancelled by the user")]
    Cancelled,
    /// The job would not fit in memory.
    #[error("not enough memory: this needs about {needed_mib} MiB but only {available_mib} MiB are available; crop the image, process fewer planes at once or use a machine with more memory")]
    OutOfMemory { needed_mib: u64, available_mib: u64 },
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    File { path: String, message: String },
    /// A GPU failure (reported, then the caller falls back to the CPU).
    #[error("GPU error: {0}")]
    Device(String),
    /// A bug or an environment problem (JNI failure, caught panic): please report it.
    #[error("internal error in Fluorecon's engine: {0} (please report this)")]
    Internal(String),
}

impl Error {
    /// An error about the file or folder `path`.
    pub fn file(path: &std::path::Path, message: impl Into<String>) -> Error {
        Error::File {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}

/// Shorthand used across the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// `Err(Error::InvalidInput(format!(..)))`.
#[macro_export]
macro_rules! invalid {
    ($($arg:tt)*) => {
        Err($crate::Error::InvalidInput(format!($($arg)*)))
    };
}
