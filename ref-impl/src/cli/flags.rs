//! Flags shared by several commands, declared once and flattened into each command's `Args`.

use midpoint_train::dist::{Launch, Replica};
use midpoint_train::train::kernels::{AdamKernel, EmaKernel, Kernels};
use std::path::PathBuf;

/// `--device` and `--threads`. `THREADS` is the default thread count: 0 (libtorch's default,
/// all cores) for the image commands; 1 for the toy commands, whose small MLPs run fastest on
/// one thread on a loaded machine (OpenMP spin-waits otherwise).
#[derive(Debug, clap::Args)]
pub struct RunOn<const THREADS: usize = 0> {
    /// auto (CUDA if available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// libtorch intra-op threads; 0 keeps libtorch's default (all cores).
    #[arg(long, default_value_t = THREADS)]
    threads: usize,
}

impl<const THREADS: usize> RunOn<THREADS> {
    /// Sets libtorch's thread count and parses the device. More threads than logical CPUs
    /// only add contention (and each is an OpenMP thread with its own stack), so a larger
    /// `--threads` is cut to the CPU count, with one line on stderr saying so.
    pub fn device(&self) -> anyhow::Result<tch::Device> {
        if self.threads > 0 {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            let threads = if self.threads > cpus {
                eprintln!(
                    "warning: --threads {}: this machine has {cpus} logical CPUs; using {cpus} (more threads than CPUs only slow libtorch down)",
                    self.threads
                );
                cpus
            } else {
                self.threads
            };
            tch::set_num_threads(i32::try_from(threads).unwrap_or(i32::MAX));
        }
        Ok(midpoint_train::device::parse_device(&self.device)?)
    }
}

/// `--quiet`.
#[derive(Debug, clap::Args)]
pub struct Quiet {
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl Quiet {
    /// Whether a progress bar is drawn: only on an interactive stderr, and never with
    /// `--quiet`.
    pub fn show(&self) -> bool {
        use std::io::IsTerminal;
        !self.quiet && std::io::stderr().is_terminal()
    }
}

/// The speed levers of the image trainers and their benches: `--adam-kernel`,
/// `--ema-kernel`, `--tf32-matmul`, `--cudnn-benchmark`. Each is off by default, so a run's
/// numbers change only when asked; each can be measured alone (docs/performance.md).
#[derive(Debug, clap::Args)]
pub struct SpeedFlags {
    /// How Adam applies its update: plain (one tensor at a time, the reference), foreach
    /// (libtorch's multi-tensor kernels) or fused (`_fused_adam_`); the same update to float
    /// tolerance.
    #[arg(long, value_enum, default_value_t = AdamKernel::Plain)]
    adam_kernel: AdamKernel,
    /// How the EMA is updated: plain (one tensor at a time) or foreach (one `_foreach_lerp_`).
    #[arg(long, value_enum, default_value_t = EmaKernel::Plain)]
    ema_kernel: EmaKernel,
    /// Allow TF32 tensor cores in fp32 matmuls (attention, linear layers) on CUDA. Off by
    /// default, as in EDM's training (which turns TF32 off for matmuls and convolutions);
    /// changes the numbers (10-bit mantissa products).
    #[arg(long)]
    tf32_matmul: bool,
    /// cuDNN benchmark mode: time the convolution algorithms on the first batches and keep the
    /// fastest (EDM's training sets it); results may differ by rounding from run to run.
    #[arg(long)]
    cudnn_benchmark: bool,
}

impl SpeedFlags {
    /// Sets the global switches (TF32 for matmuls, cuDNN benchmark) and returns the kernels
    /// asked for. `--tf32-matmul` off CUDA is refused: it would do nothing.
    pub fn apply(&self, device: tch::Device) -> anyhow::Result<Kernels> {
        if self.tf32_matmul {
            if !device.is_cuda() {
                anyhow::bail!(
                    "invalid option: --tf32-matmul is a CUDA setting; this run is on the CPU"
                );
            }
            midpoint_train::train::precision::set_allow_tf32_matmul(true)?;
        }
        if self.cudnn_benchmark {
            tch::Cuda::cudnn_set_benchmark(true);
        }
        Ok(self.kernels())
    }

    /// The kernels asked for.
    pub fn kernels(&self) -> Kernels {
        Kernels {
            adam: self.adam_kernel,
            ema: self.ema_kernel,
        }
    }

    /// The switches as `(tf32_matmul, cudnn_benchmark)`, for a bench's record.
    pub fn switches(&self) -> (bool, bool) {
        (self.tf32_matmul, self.cudnn_benchmark)
    }
}

/// Data-parallel settings, used only when the process was started by torchrun or srun
/// ([`midpoint_train::dist::Launch`]).
#[derive(Debug, clap::Args)]
pub struct DistFlags {
    /// Seconds a rank waits for the others (rendezvous and every collective) before the job
    /// ends with an error: a dead or hung rank stops the others after this long.
    #[arg(long, default_value_t = 300.0)]
    dist_timeout: f64,
    /// Steps between checks that every rank holds the same weights (0: never).
    #[arg(long, default_value_t = midpoint_train::dist::replica::DEFAULT_DIGEST_EVERY)]
    digest_every: u64,
}

impl DistFlags {
    /// This process's [`Replica`] when a launcher started it, else `None` (one process); the
    /// device becomes `cuda:LOCAL_RANK` on a CUDA run (one GPU per process).
    pub fn join(&self, device: tch::Device) -> anyhow::Result<(Option<Replica>, tch::Device)> {
        let Some(launch) = Launch::from_env()? else {
            return Ok((None, device));
        };
        if !(self.dist_timeout.is_finite() && self.dist_timeout > 0.0) {
            anyhow::bail!(
                "invalid option: --dist-timeout must be finite and > 0, got {}",
                self.dist_timeout
            );
        }
        let device = match device {
            tch::Device::Cuda(_) => {
                let n = tch::Cuda::device_count();
                if launch.local_rank as i64 >= n {
                    anyhow::bail!(
                        "rank {} has LOCAL_RANK {} but this node has {n} GPUs: start at most {n} processes per node",
                        launch.rank,
                        launch.local_rank
                    );
                }
                tch::Device::Cuda(launch.local_rank)
            }
            d => d,
        };
        let timeout = std::time::Duration::from_secs_f64(self.dist_timeout);
        let mut replica = Replica::join(&launch, device, timeout)?;
        replica.digest_every = self.digest_every;
        Ok((Some(replica), device))
    }
}

/// `--out`, `--resume`, `--max-seconds`, `--device`, `--threads` and `--quiet` of a training
/// run.
#[derive(Debug, clap::Args)]
pub struct RunDir {
    /// Output folder (the checkpoint, logs, grids and plots).
    #[arg(long)]
    pub out: PathBuf,
    /// Continue the run in --out from its checkpoint (the same settings are required).
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    /// Replace the run --out holds (its checkpoint, logs, plots and grids are removed first;
    /// other files are left alone). Without it, or --resume, such a folder is refused.
    #[arg(long)]
    pub overwrite: bool,
    /// Stop after the step during which this many seconds have passed (final grid,
    /// checkpoint and evaluation as at --steps; --resume continues towards --steps).
    #[arg(long)]
    pub max_seconds: Option<f64>,
    #[command(flatten)]
    pub run_on: RunOn,
    #[command(flatten)]
    pub quiet: Quiet,
    #[command(flatten)]
    pub speed: SpeedFlags,
    #[command(flatten)]
    pub dist: DistFlags,
}
