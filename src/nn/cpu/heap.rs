//! The heap while networks run on the CPU: freed memory kept for reuse, and the kernels'
//! per-thread scratch buffers given back when the last user goes.

/// While a guard from [`reuse_freed_memory`] lives, glibc's `malloc` keeps freed memory
/// for reuse instead of handing it back to the system at once. Networks allocate and free
/// tensors of tens of megabytes at every layer; by default glibc maps each one afresh
/// (above its mmap threshold) and trims the heap as soon as its top is free, so every layer
/// pays page faults and the kernel's zeroing of every page (about 10 % of a training step,
/// 20 % of a large forward pass). Guards nest; when the last one goes, glibc's thresholds go
/// back to their default values (glibc's automatic raising of the mmap threshold stays off,
/// as after any `mallopt`) and the heap is trimmed. A no-op elsewhere than Linux with
/// glibc.
pub struct FreedMemoryReuse(());

static REUSE_GUARDS: std::sync::Mutex<usize> = std::sync::Mutex::new(0);

/// See [`FreedMemoryReuse`].
pub fn reuse_freed_memory() -> FreedMemoryReuse {
    let mut n = REUSE_GUARDS.lock().unwrap_or_else(|e| e.into_inner());
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if *n == 0 {
        // SAFETY: mallopt only changes allocator parameters. 32 MiB is the largest mmap
        // threshold glibc accepts on 64-bit systems.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        }
    }
    *n += 1;
    FreedMemoryReuse(())
}

impl Drop for FreedMemoryReuse {
    fn drop(&mut self) {
        let mut n = REUSE_GUARDS.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        // The per-thread scratch buffers of the Winograd convolution (a few MB per thread)
        // go back too: the thread pool outlives the training or prediction (in Fiji, the
        // whole session). Only pool threads run the convolution's chunks.
        #[cfg(target_arch = "x86_64")]
        if *n == 0 {
            rayon::broadcast(|_| super::winograd::release_scratch());
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        if *n == 0 {
            // SAFETY: back to glibc's default thresholds, then free memory is returned.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 10);
                libc::malloc_trim(0);
            }
        }
    }
}
