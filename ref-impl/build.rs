//! Links libtorch's CUDA library when the torch build has one, so that
//! `tch::Cuda::is_available()` is true on a GPU machine.
//!
//! torch-sys asks the linker for `-ltorch_cuda`, but nothing in the final binary references a
//! symbol of it, so `--as-needed` (the default on most Linux toolchains) drops the library and
//! CUDA is never initialised (tch-rs issues #329, #907, #980). `--no-as-needed` keeps it; a
//! CPU-only libtorch has no `libtorch_cuda.so` and nothing is added. The torch lib dir also goes
//! into the binary's RUNPATH, so it runs on the build machine without `LD_LIBRARY_PATH`
//! (which still takes precedence, e.g. on a GPU machine with its own torch).

use std::path::{Path, PathBuf};

/// The torch version of the install whose lib dir is `lib`: `torch/version.py` of a pip
/// install (`lib` = `.../torch/lib`) or `build-version` of an unzipped libtorch.
fn torch_version(lib: &Path) -> Option<String> {
    let root = lib.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        let line = text.lines().find(|l| l.starts_with("__version__"))?;
        return Some(line.split(['\'', '"']).nth(1)?.to_string());
    }
    let text = std::fs::read_to_string(root.join("build-version")).ok()?;
    Some(text.trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Set by torch-sys (`links = "tch"`, `cargo:libtorch_lib=...`) for its direct dependents.
    let lib = std::env::var_os("DEP_TCH_LIBTORCH_LIB").map(PathBuf::from);
    let version = lib.as_deref().and_then(torch_version);
    println!(
        "cargo:rustc-env=MIDPOINT_TORCH_VERSION={}",
        version.as_deref().unwrap_or("unknown")
    );
    let Some(lib) = lib else {
        return;
    };
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
