//! What the integration tests share: a temporary folder, running the built `fluorecon`
//! binary, reading a simulator's `truth.csv`, and whether a GPU is here. Each test crate uses
//! part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// A fresh folder under the system's temporary folder, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("fluorecon-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    /// The path of `f` inside the folder.
    pub fn path(&self, f: &str) -> String {
        self.0.join(f).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the `fluorecon` binary built for these tests, or the one in $FLUORECON_CLI
/// (scripts/gpu-tests.sh runs the tests as prebuilt binaries on another machine, where
/// cargo's path does not exist).
pub fn fluorecon(args: &[&str]) -> Output {
    let mut cmd = cli();
    cmd.args(args).output().expect("the fluorecon binary runs")
}

/// A command for the `fluorecon` binary of [`fluorecon`], without arguments.
pub fn cli() -> Command {
    Command::new(
        std::env::var_os("FLUORECON_CLI").unwrap_or_else(|| env!("CARGO_BIN_EXE_fluorecon").into()),
    )
}

/// Limits the child's address space (RLIMIT_AS) to `bytes`, so that an unchecked size aborts
/// there instead of being absorbed by this machine's memory.
pub fn limit_address_space(cmd: &mut Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Runs `fluorecon`, which must succeed; returns what it wrote to stderr.
pub fn ok(args: &[&str]) -> String {
    let o = fluorecon(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "fluorecon {args:?} failed:\n{err}");
    err
}

/// Runs `fluorecon`, which must fail with exit code 1 (an error); returns its stderr.
pub fn fails(args: &[&str]) -> String {
    let o = fluorecon(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "fluorecon {args:?}:\n{err}");
    err
}

/// (frame, x [nm], y [nm]) of every emitter of a `fluorecon simulate-smlm` truth CSV.
pub fn read_truth(path: &str) -> Vec<(u32, f64, f64)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<f64> = l.split(',').map(|v| v.parse().unwrap()).collect();
            (f[0] as u32, f[2], f[3])
        })
        .collect()
}

/// True when this build can use a GPU here; else prints why the test is skipped.
pub fn gpu_here(test: &str) -> bool {
    if !cfg!(feature = "cuda") {
        eprintln!("{test}: skipped (built without the 'cuda' feature)");
        return false;
    }
    match fluorecon::device::cuda_status() {
        Ok(st) if !st.gpus.is_empty() => true,
        Ok(_) => {
            eprintln!("{test}: skipped (the NVIDIA driver reports no GPU)");
            false
        }
        Err(reason) => {
            eprintln!("{test}: skipped ({reason})");
            false
        }
    }
}

/// A progress that keeps every log line (device choices, warnings, fallbacks) and every
/// training epoch.
#[derive(Default)]
pub struct Log(pub Vec<String>, pub Vec<fluorecon::progress::EpochStats>);

impl fluorecon::Progress for Log {
    fn log(&mut self, line: &str) {
        self.0.push(line.to_string());
    }
    fn epoch(&mut self, stats: &fluorecon::progress::EpochStats) {
        self.1.push(stats.clone());
    }
}
