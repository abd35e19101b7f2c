//! Build script. It compiles the shipped Deep-STORM model into the library when it is in
//! `models/` (see `bundle_models`). With the `cuda` feature and a CUDA toolkit it also links
//! cuFFT (`-lcufft`; cudarc's cufft bindings expect the final binary to provide it when CUDA
//! is linked, the known cudarc omission; the engine's own cuFFT wrapper opens it at run time,
//! and the linker's --as-needed drops it when nothing refers to it) and adds the toolkit's
//! library folder to the link search path. The `cuda` feature needs the toolkit anyway (nvcc
//! builds candle's kernels; cudarc links the CUDA libraries): see scripts/cuda-toolchain.sh.

use std::env;
use std::path::{Path, PathBuf};

/// Environment variables that name a CUDA toolkit root, in the order they are tried.
const ROOT_VARIABLES: [&str; 3] = ["CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for v in ROOT_VARIABLES.iter().chain(&["PATH", "NVCC"]) {
        println!("cargo:rerun-if-env-changed={v}");
    }
    bundle_models();
    if env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    if let Some(lib) = toolkit_lib_dir() {
        println!("cargo:rustc-link-search=native={}", lib.display());
        if lib.join("libcufft.so").exists() {
            println!("cargo:rustc-link-lib=dylib=cufft");
        } else {
            // Wheels (PyPI) carry only the versioned file, which `-lcufft` would not find.
            println!("cargo:rustc-link-lib=dylib:+verbatim=libcufft.so.12");
        }
    }
}

/// The library folder of a CUDA toolkit that has cuFFT: from $CUDA_HOME/$CUDA_PATH/$CUDA_ROOT,
/// else next to the `nvcc` named by $NVCC or found on PATH. None when there is no toolkit.
fn toolkit_lib_dir() -> Option<PathBuf> {
    let mut roots: Vec<PathBuf> = ROOT_VARIABLES
        .iter()
        .filter_map(env::var_os)
        .filter(|r| !r.is_empty())
        .map(PathBuf::from)
        .collect();
    let nvcc = env::var_os("NVCC").map(PathBuf::from).or_else(|| {
        env::split_paths(&env::var_os("PATH").unwrap_or_default())
            .map(|d| d.join("nvcc"))
            .find(|p| p.is_file())
    });
    if let Some(root) = nvcc
        .as_deref()
        .and_then(Path::parent)
        .and_then(Path::parent)
    {
        roots.push(root.to_path_buf());
    }
    roots
        .iter()
        .flat_map(|r| {
            [
                r.join("lib64"),
                r.join("lib"),
                r.join("targets/x86_64-linux/lib"),
            ]
        })
        .find(|d| d.join("libcufft.so").exists() || d.join("libcufft.so.12").exists())
}

/// The Deep-STORM model shipped in `models/` is compiled into the library (so that the CLI
/// and the Fiji command work without a model folder) when it is there: sets the cfg
/// `bundled_deepstorm`.
fn bundle_models() {
    println!("cargo:rustc-check-cfg=cfg(bundled_deepstorm)");
    let dir = Path::new(BUNDLED_DEEPSTORM);
    for f in ["model.json", "model.safetensors"] {
        println!("cargo:rerun-if-changed={}", dir.join(f).display());
    }
    if dir.join("model.json").is_file() && dir.join("model.safetensors").is_file() {
        println!("cargo:rustc-cfg=bundled_deepstorm");
    }
}

/// Folder of the shipped Deep-STORM model (relative to the crate root).
const BUNDLED_DEEPSTORM: &str = "models/deepstorm-2d-emccd-100nm";
