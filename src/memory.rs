//! How much memory this process may still take, for the checks made before large
//! allocations (a job that does not fit is tiled or refused with MiB needed and available,
//! never aborted by the allocator): the least of
//! - Linux's `MemAvailable` (free memory plus what the kernel can reclaim),
//! - the room left in the process's memory cgroup and every cgroup above it (v2
//!   `memory.max` − `memory.current`; v1 `memory.limit_in_bytes` − `memory.usage_in_bytes`):
//!   containers, SLURM jobs and systemd units cap memory this way, below what the machine has,
//! - the address-space limit (`ulimit -v`, RLIMIT_AS) minus the process's current size,
//! - the data-segment limit (RLIMIT_DATA, which also caps `mmap`ed heap memory since Linux
//!   4.7) minus the process's current data size.
//!
//! `None` where none of these is known (systems other than Linux): callers then skip the
//! check.
//!
//! The rule for sizes that come from outside (a file header, `model.json`, a CSV value, an
//! option): check them with [`check_fits`] before the allocation, and allocate large buffers
//! with [`try_vec`] / [`try_grow`], which turn an allocation failure into
//! [`Error::OutOfMemory`] instead of an abort.

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Bytes → MiB, rounded up (for [`Error::OutOfMemory`]).
pub fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

/// [`Error::OutOfMemory`] for `needed` bytes with `available` bytes left.
pub fn out_of_memory(needed: u64, available: u64) -> Error {
    Error::OutOfMemory {
        needed_mib: mib(needed),
        available_mib: available >> 20,
    }
}

/// Fails with [`Error::OutOfMemory`] when `needed` bytes (`None`: a size that overflows
/// 64 bits) are more than this process may still take ([`available_memory`]).
pub fn check_fits(needed: Option<u64>) -> Result<()> {
    let available = available_memory();
    match (needed, available) {
        (None, a) => Err(out_of_memory(u64::MAX, a.unwrap_or(0))),
        (Some(n), Some(a)) if n > a => Err(out_of_memory(n, a)),
        _ => Ok(()),
    }
}

/// Bytes of `n` values of `T`, `None` on overflow.
pub fn bytes_of<T>(n: usize) -> Option<u64> {
    (n as u64).checked_mul(std::mem::size_of::<T>() as u64)
}

/// A vector of `n` copies of `value`, allocated fallibly: checked against
/// [`available_memory`] first, and an allocator refusal is [`Error::OutOfMemory`], not an
/// abort.
pub fn try_vec<T: Clone>(n: usize, value: T) -> Result<Vec<T>> {
    check_fits(bytes_of::<T>(n))?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        out_of_memory(
            bytes_of::<T>(n).unwrap_or(u64::MAX),
            available_memory().unwrap_or(0),
        )
    })?;
    v.resize(n, value);
    Ok(v)
}

/// Makes room for `additional` more values in `v` (amortised doubling while it fits,
/// exactly what is needed otherwise), failing with [`Error::OutOfMemory`] instead of
/// aborting. Free when the room is already there.
pub fn try_grow<T>(v: &mut Vec<T>, additional: usize) -> Result<()> {
    if v.capacity() - v.len() >= additional {
        return Ok(());
    }
    let needed = v.len().checked_add(additional);
    let Some(needed) = needed else {
        return Err(out_of_memory(u64::MAX, available_memory().unwrap_or(0)));
    };
    let available = available_memory();
    // The growth in bytes (the old buffer is freed once copied, but both exist meanwhile).
    let fits = |target: usize| match available {
        Some(a) => bytes_of::<T>(target).is_some_and(|b| b <= a),
        None => true,
    };
    let doubled = needed.max(v.len().saturating_mul(2));
    let target = if fits(doubled) { doubled } else { needed };
    if !fits(target) {
        return Err(out_of_memory(
            bytes_of::<T>(target).unwrap_or(u64::MAX),
            available.unwrap_or(0),
        ));
    }
    v.try_reserve_exact(target - v.len()).map_err(|_| {
        out_of_memory(
            bytes_of::<T>(target).unwrap_or(u64::MAX),
            available_memory().unwrap_or(0),
        )
    })
}

/// Bytes this process may still allocate (see the module documentation), or `None`.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| mem_available(&t));
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| cgroup_room(&t, Path::new("/sys/fs/cgroup")));
    [meminfo, cgroup, address_space_room()]
        .into_iter()
        .flatten()
        .min()
}

/// `MemAvailable` of a /proc/meminfo text, bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A limit read from a cgroup file: `None` for "max" or the "no limit" values of v1 (2⁶³
/// rounded down to a page), or an unreadable file.
fn read_limit(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: u64 = text.trim().parse().ok()?;
    (v < 1 << 60).then_some(v)
}

/// The least room (limit − usage, bytes) in the memory cgroups of a /proc/self/cgroup text,
/// from the process's own cgroup up to the root, under the cgroup file system `root`.
fn cgroup_room(proc_cgroup: &str, root: &Path) -> Option<u64> {
    // v2: "0::/path"; v1: "N:memory:/path" (the controller list may hold several names).
    let (dir, limit, usage) = proc_cgroup.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "memory") {
            Some((
                root.join("memory").join(rel),
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
            ))
        } else if id == "0" && controllers.is_empty() && root.join("cgroup.controllers").exists() {
            Some((root.join(rel), "memory.max", "memory.current"))
        } else {
            None
        }
    })?;
    let mut room: Option<u64> = None;
    let mut at: Option<PathBuf> = Some(dir);
    while let Some(d) = at {
        if let Some(limit) = read_limit(&d.join(limit)) {
            let used = read_limit(&d.join(usage)).unwrap_or(0);
            let here = limit.saturating_sub(used);
            room = Some(room.map_or(here, |r| r.min(here)));
        }
        at = d
            .parent()
            .filter(|p| p.starts_with(root))
            .map(Path::to_path_buf);
    }
    room
}

/// The least of RLIMIT_AS minus the process's current virtual size and RLIMIT_DATA minus
/// its current data size (/proc/self/statm), bytes; `None` without either limit.
#[cfg(target_os = "linux")]
fn address_space_room() -> Option<u64> {
    let limit = |resource| {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass.
        let ok = unsafe { libc::getrlimit(resource, &mut limit) } == 0;
        (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
    };
    let (address_space, data) = (limit(libc::RLIMIT_AS), limit(libc::RLIMIT_DATA));
    if address_space.is_none() && data.is_none() {
        return None;
    }
    // statm: size resident shared text lib data dt, in pages.
    let statm: Vec<u64> = std::fs::read_to_string("/proc/self/statm")
        .ok()?
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    let used = |field: usize| statm.get(field).copied().unwrap_or(0) * page;
    [
        address_space.map(|l| l.saturating_sub(used(0))),
        data.map(|l| l.saturating_sub(used(5))),
    ]
    .into_iter()
    .flatten()
    .min()
}

#[cfg(not(target_os = "linux"))]
fn address_space_room() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_available_is_read_in_bytes() {
        let text = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2048 kB\n";
        assert_eq!(mem_available(text), Some(2048 * 1024));
        assert_eq!(mem_available("MemTotal: 5 kB\n"), None);
    }

    /// A fake cgroup tree: the job's own limit, a tighter parent, an unlimited root.
    #[test]
    fn cgroup_room_is_the_least_over_the_hierarchy() {
        let root = std::env::temp_dir().join(format!("fluorecon-cgroup-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let job = root.join("memory/slurm/job_7");
        std::fs::create_dir_all(&job).unwrap();
        let write = |d: &Path, f: &str, v: &str| std::fs::write(d.join(f), v).unwrap();
        write(
            &root.join("memory"),
            "memory.limit_in_bytes",
            "9223372036854771712\n",
        );
        write(
            &root.join("memory/slurm"),
            "memory.limit_in_bytes",
            "3000\n",
        );
        write(
            &root.join("memory/slurm"),
            "memory.usage_in_bytes",
            "2500\n",
        );
        write(&job, "memory.limit_in_bytes", "2000\n");
        write(&job, "memory.usage_in_bytes", "1000\n");
        let v1 = "4:memory:/slurm/job_7\n0::/\n";
        assert_eq!(cgroup_room(v1, &root), Some(500));
        // v2: "max" is no limit
        let v2root = root.join("v2");
        let unit = v2root.join("user.slice/app");
        std::fs::create_dir_all(&unit).unwrap();
        write(&v2root, "cgroup.controllers", "memory\n");
        write(&unit, "memory.max", "max\n");
        assert_eq!(cgroup_room("0::/user.slice/app\n", &v2root), None);
        write(&unit, "memory.max", "4096\n");
        write(&unit, "memory.current", "1024\n");
        assert_eq!(cgroup_room("0::/user.slice/app\n", &v2root), Some(3072));
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// Sizes no machine has are refused as low memory, never attempted (an attempt aborts).
    #[test]
    fn impossible_sizes_are_out_of_memory_not_aborts() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let e = try_vec(usize::MAX / 2, 0u8).unwrap_err();
        assert!(matches!(e, Error::OutOfMemory { .. }), "{e:?}");
        let e = try_vec(usize::MAX / 4, 0f32).unwrap_err();
        assert!(matches!(e, Error::OutOfMemory { .. }), "{e:?}");
        assert!(e.to_string().contains("not enough memory"), "{e}");
        let mut v = vec![1f32; 10];
        assert!(matches!(
            try_grow(&mut v, usize::MAX - 5),
            Err(Error::OutOfMemory { .. })
        ));
        assert!(matches!(
            try_grow(&mut v, 1 << 60),
            Err(Error::OutOfMemory { .. })
        ));
        assert_eq!(v.len(), 10, "a refused growth leaves the data as it was");
        try_grow(&mut v, 100).unwrap();
        assert!(v.capacity() >= 110);
        assert_eq!(try_vec(5, 2u16).unwrap(), vec![2; 5]);
        assert!(check_fits(None).is_err() && check_fits(Some(1)).is_ok());
    }

    #[test]
    fn available_memory_is_known_on_linux() {
        if cfg!(target_os = "linux") {
            let m = available_memory().expect("Linux reports MemAvailable");
            assert!(m > 0);
        }
    }
}
