//! The training core: everything a training method needs that is not the method itself. It
//! knows nothing of MGM; [`crate::methods`] builds on it.
//!
//! | module | what |
//! |---|---|
//! | [`method`] | what the loop drives: a training [`method::Method`], its [`method::Batches`], an [`method::Evaluate`] hook |
//! | [`run_loop`] | the one training loop: progress, loss log, grids, evaluations, checkpoints with exact resume, time limit |
//! | [`network`] | the generator and field roles, a network with its optimizer |
//! | [`adam`] | Adam with inspectable state (PyTorch's update), for checkpoints |
//! | [`ema`] | exponential moving averages of weights (App. B) |
//! | [`kernels`] | multi-tensor and fused kernels for Adam and the EMA (same updates, fewer launches) |
//! | [`precision`] | `fp32`, or `bf16` autocast through a small libtorch shim; TF32 and CUDA peak memory |
//! | [`checkpoint`] | safetensors checkpoints with a SHA-256 checksum, written atomically |
//! | [`weights`] | checked copies of variables between networks, checkpoints and runs |
//! | [`bridge`] | tensors ↔ `ndarray` arrays, draws of a core-crate law as a tensor |
//! | [`run_folder`] | a run's folder claimed by one run at a time: lock, refusal to clobber, `--overwrite` |
//! | [`run_dir`] | a run's output folder: JSON, JSON lines, window means |
//! | [`progress`] | progress bars on an interactive terminal |
//! | [`plot`] | scatter and curve panels (PNG) |
//! | [`grid`] | image grids (PNG) |
//! | [`jvp`] | Jacobian-vector products through a network, differentiable in its parameters (the flow-map losses) |

pub mod adam;
pub mod bridge;
pub mod checkpoint;
pub mod ema;
pub mod grid;
pub mod jvp;
pub mod kernels;
pub mod method;
pub mod network;
pub mod plot;
pub mod precision;
pub mod progress;
pub mod run_dir;
pub mod run_folder;
pub mod run_loop;
pub mod weights;
