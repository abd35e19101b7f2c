//! candle's errors as the crate's: an [`Error::Internal`] that says it came from a neural
//! network (the `?` after every candle call in the networks and their methods).

use crate::Error;

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Internal(format!("neural network: {e}"))
    }
}
