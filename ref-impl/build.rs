//! Links libtorch's CUDA library when the torch build has one, so that
//! `tch::Cuda::is_available()` is true on a GPU machine.
//!
//! torch-sys asks the linker for `-ltorch_cuda`, but nothing in the final binary references a
//! symbol of it, so `--as-needed` (the default on most Linux toolchains) drops the library and
//! CUDA is never initialised (tch-rs issues #329, #907, #980). `--no-as-needed` keeps it; a
//! CPU-only libtorch has no `libtorch_cuda.so` and nothing is added. The torch lib dir also goes
//! into the binary's RUNPATH, so it runs on the build machine without `LD_LIBRARY_PATH`
//! (which still takes precedence, e.g. on a GPU machine with its own torch).
//!
//! It also compiles `csrc/torch_shim.cpp`, the few libtorch calls tch does not bind (autocast
//! with a chosen dtype, TF32 for cuBLAS, CUDA allocator peak statistics, forward-mode AD levels) and `csrc/optim_kernels.cpp` (libtorch's multi-tensor and fused Adam, the
//! foreach EMA), `csrc/profiler.cpp` (the Kineto profiler) and `csrc/dist.cpp` (c10d process groups for data-parallel training), against the same
//! torch headers (`<torch>/include` beside the lib dir) and C++ ABI as torch-sys.

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

/// Compiles `csrc/torch_shim.cpp` into a static library linked into this crate.
fn compile_shim(lib: &Path) {
    println!("cargo:rerun-if-changed=csrc/torch_shim.cpp");
    println!("cargo:rerun-if-changed=csrc/optim_kernels.cpp");
    println!("cargo:rerun-if-changed=csrc/profiler.cpp");
    println!("cargo:rerun-if-changed=csrc/shim_error.h");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let include = lib.parent().map(|p| p.join("include")).unwrap_or_default();
    // torch-sys' default; pip wheels of torch 2.11 use the C++11 ABI as well.
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .file("csrc/torch_shim.cpp")
        .file("csrc/optim_kernels.cpp")
        .file("csrc/profiler.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .warnings(false)
        .compile("midpoint_torch_shim");
}

/// The CUDA, CCCL and NCCL include dirs of a pip torch (`nvidia/cu13/include` with the
/// `nvidia-cuda-crt` and `nvidia-cuda-cccl` wheels, `nvidia/nccl/include`), when all of
/// `ProcessGroupNCCL.hpp`'s headers are there and the torch build has CUDA.
fn nccl_includes(lib: &Path) -> Option<Vec<PathBuf>> {
    if !lib.join("libtorch_cuda.so").exists() {
        return None;
    }
    let nvidia = lib.parent()?.parent()?.join("nvidia");
    let cuda = nvidia.join("cu13/include");
    let cccl = [cuda.join("cccl"), cuda.clone()]
        .into_iter()
        .find(|d| d.join("nv/target").exists())?;
    let nccl = nvidia.join("nccl/include");
    let found = cuda.join("cuda_runtime.h").exists()
        && cuda.join("crt/host_config.h").exists()
        && nccl.join("nccl.h").exists();
    found.then(|| vec![cuda, cccl, nccl])
}

/// Compiles `csrc/dist.cpp` (c10d process groups: Gloo always, NCCL when its headers are
/// found) against the torch headers and the Gloo declarations in `third_party/gloo`.
fn compile_dist(lib: &Path) {
    println!("cargo:rerun-if-changed=csrc/dist.cpp");
    println!("cargo:rerun-if-changed=third_party/gloo");
    let include = lib.parent().map(|p| p.join("include")).unwrap_or_default();
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file("csrc/dist.cpp")
        .include("third_party/gloo")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .flag("-DUSE_C10D_GLOO")
        .warnings(false);
    match nccl_includes(lib) {
        Some(dirs) => {
            for d in dirs {
                build.include(d);
            }
            build.flag("-DUSE_C10D_NCCL").flag("-DMIDPOINT_WITH_NCCL");
        }
        None => println!(
            "cargo:warning=NCCL headers not found beside {} (nvidia-cuda-crt, nvidia-cuda-cccl, nvidia-nccl wheels): this build has the Gloo backend only",
            lib.display()
        ),
    }
    build.compile("midpoint_dist");
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
        panic!("torch-sys did not report the libtorch lib dir (DEP_TCH_LIBTORCH_LIB); csrc/torch_shim.cpp needs the torch headers beside it");
    };
    compile_shim(&lib);
    compile_dist(&lib);
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
