//! One output buffer shared by parallel tasks that each write their own, disjoint part of it
//! (FFT line tiles, convolution output planes, batch-norm channels…).

/// A raw pointer into a buffer that parallel tasks write disjoint parts of. Each use states
/// which part is whose; reading the pointer goes through [`SharedMut::get`] (a method, so
/// that closures capture the whole `Send + Sync` wrapper, not the raw field).
pub struct SharedMut<T>(*mut T);

// SAFETY: the wrapper only carries the pointer across threads; every user writes a set of
// elements that no other task touches (stated at each use), so there is no data race.
unsafe impl<T: Send> Send for SharedMut<T> {}
unsafe impl<T: Send> Sync for SharedMut<T> {}

impl<T> Clone for SharedMut<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for SharedMut<T> {}

impl<T> SharedMut<T> {
    pub fn new(ptr: *mut T) -> Self {
        SharedMut(ptr)
    }

    /// The pointer.
    pub fn get(self) -> *mut T {
        self.0
    }
}
