//! How much memory this process may still take, for the checks made before large
//! allocations (a job that does not fit is tiled or refused with MiB needed and available,
//! never aborted by the allocator): the least of
//! - Linux's `MemAvailable` (free memory plus what the kernel can reclaim),
//! - the room left in the process's memory cgroup and every cgroup above it (v2
//!   `memory.max` − `memory.current`; v1 `memory.limit_in_bytes` − `memory.usage_in_bytes`):
//!   containers, SLURM jobs and systemd units cap memory this way, below what the machine has,
//! - the address-space limit (`ulimit -v`, RLIMIT_AS) minus the process's current size.
//!
//! `None` where none of these is known (systems other than Linux): callers then skip the
//! check.

use std::path::{Path, PathBuf};

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

/// RLIMIT_AS minus the process's current virtual size (/proc/self/statm), bytes; `None`
/// without a limit.
#[cfg(target_os = "linux")]
fn address_space_room() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } != 0
        || limit.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    let pages: u64 = std::fs::read_to_string("/proc/self/statm")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    Some(limit.rlim_cur.saturating_sub(pages * page))
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

    #[test]
    fn available_memory_is_known_on_linux() {
        if cfg!(target_os = "linux") {
            let m = available_memory().expect("Linux reports MemAvailable");
            assert!(m > 0);
        }
    }
}
