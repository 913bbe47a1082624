//! A c10d process group (`csrc/dist.cpp`): the TCPStore rendezvous, then Gloo (CPU tensors) or
//! NCCL (CUDA tensors), with blocking all-reduce, broadcast and barrier. Every call has the
//! group's timeout: a rank that died or hangs makes the others fail with
//! [`DistError::Collective`] instead of waiting forever.

use super::{DistError, Launch};
use std::ffi::CString;
use std::os::raw::c_char;
use tch::Tensor;

mod ffi {
    use std::os::raw::c_char;
    use torch_sys::C_tensor;
    #[repr(C)]
    pub struct Pg {
        _private: [u8; 0],
    }
    extern "C" {
        pub fn midpoint_pg_has_nccl() -> i32;
        pub fn midpoint_pg_new(
            backend: i32,
            host: *const c_char,
            port: i32,
            rank: i32,
            world: i32,
            agent_store: i32,
            prefix: *const c_char,
            gloo_host: *const c_char,
            cuda_device: i32,
            timeout_ms: i64,
            out: *mut *mut Pg,
            err: *mut c_char,
            err_len: i64,
        ) -> i32;
        pub fn midpoint_pg_allreduce(
            pg: *mut Pg,
            t: *mut C_tensor,
            op: i32,
            err: *mut c_char,
            err_len: i64,
        ) -> i32;
        pub fn midpoint_pg_broadcast(
            pg: *mut Pg,
            t: *mut C_tensor,
            root: i32,
            err: *mut c_char,
            err_len: i64,
        ) -> i32;
        pub fn midpoint_pg_barrier(pg: *mut Pg, err: *mut c_char, err_len: i64) -> i32;
        pub fn midpoint_pg_free(pg: *mut Pg);
    }
}

/// The collective engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// c10d's Gloo: CPU tensors (and the CPU tests).
    Gloo,
    /// c10d's NCCL: CUDA tensors, one GPU per process.
    Nccl,
}

impl Backend {
    /// NCCL for CUDA, Gloo for the CPU.
    pub fn for_device(device: tch::Device) -> Backend {
        if device.is_cuda() {
            Backend::Nccl
        } else {
            Backend::Gloo
        }
    }

    /// Whether this binary was built with the NCCL backend.
    pub fn nccl_built() -> bool {
        // SAFETY: no arguments, no state.
        unsafe { ffi::midpoint_pg_has_nccl() == 1 }
    }
}

/// Reductions of [`ProcessGroup::all_reduce`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// Elementwise sum.
    Sum,
    /// Elementwise maximum.
    Max,
    /// Elementwise minimum.
    Min,
}

/// One process's membership of the job's group; left (the backend shut down) on drop.
pub struct ProcessGroup {
    raw: *mut ffi::Pg,
    rank: usize,
    world: usize,
    backend: Backend,
    timeout: std::time::Duration,
}

// The group is used from the training thread only; c10d's backends are thread-safe anyway.
unsafe impl Send for ProcessGroup {}

fn call(
    what: &'static str,
    rank: usize,
    f: impl FnOnce(*mut c_char, i64) -> i32,
) -> Result<(), DistError> {
    crate::shim::call(f).map_err(|message| DistError::Collective {
        what,
        rank,
        message,
    })
}

impl ProcessGroup {
    /// Joins the job `launch` describes with `backend`; `timeout` bounds the rendezvous and
    /// every later collective. For NCCL the caller has made CUDA device `local_rank` current.
    pub fn join(
        launch: &Launch,
        backend: Backend,
        timeout: std::time::Duration,
    ) -> Result<ProcessGroup, DistError> {
        let cstr = |s: &str| {
            CString::new(s).map_err(|_| DistError::Launch(format!("{s:?} contains a NUL byte")))
        };
        let host = cstr(&launch.master_addr)?;
        let prefix = cstr(&format!("midpoint/attempt_{}/", launch.restart))?;
        // Gloo binds its sockets to the interface of the address the peers can reach: the
        // loopback for a one-node job on 127.0.0.1, this host's name otherwise.
        let gloo_host = match std::env::var("GLOO_SOCKET_HOST") {
            Ok(h) => h,
            Err(_) if launch.master_addr == "127.0.0.1" || launch.master_addr == "localhost" => {
                "127.0.0.1".into()
            }
            Err(_) => hostname(),
        };
        let gloo_host = cstr(&gloo_host)?;
        let mut raw = std::ptr::null_mut();
        let code = match backend {
            Backend::Gloo => 0,
            Backend::Nccl => 1,
        };
        call("rendezvous", launch.rank, |err, len| unsafe {
            // SAFETY: the strings live through the call; `raw` is written on success only.
            ffi::midpoint_pg_new(
                code,
                host.as_ptr(),
                i32::from(launch.master_port),
                launch.rank as i32,
                launch.world as i32,
                i32::from(launch.agent_store),
                prefix.as_ptr(),
                gloo_host.as_ptr(),
                launch.local_rank as i32,
                i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX),
                &mut raw,
                err,
                len,
            )
        })?;
        Ok(ProcessGroup {
            raw,
            rank: launch.rank,
            world: launch.world,
            backend,
            timeout,
        })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Processes in the group.
    pub fn world(&self) -> usize {
        self.world
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The timeout of every collective.
    pub fn timeout(&self) -> std::time::Duration {
        self.timeout
    }

    /// `t ← op over ranks of t`, in place (`t` contiguous, on the backend's device).
    pub fn all_reduce(&self, t: &Tensor, op: ReduceOp) -> Result<(), DistError> {
        let op = match op {
            ReduceOp::Sum => 0,
            ReduceOp::Max => 1,
            ReduceOp::Min => 2,
        };
        call("all-reduce", self.rank, |err, len| unsafe {
            // SAFETY: `t` is a live tensor; the C++ side copies its handle.
            ffi::midpoint_pg_allreduce(self.raw, t.as_ptr() as *mut _, op, err, len)
        })
    }

    /// `t ← t of rank root`, in place.
    pub fn broadcast(&self, t: &Tensor, root: usize) -> Result<(), DistError> {
        call("broadcast", self.rank, |err, len| unsafe {
            // SAFETY: as in all_reduce.
            ffi::midpoint_pg_broadcast(self.raw, t.as_ptr() as *mut _, root as i32, err, len)
        })
    }

    /// Returns when every rank has called it.
    pub fn barrier(&self) -> Result<(), DistError> {
        call("barrier", self.rank, |err, len| unsafe {
            // SAFETY: the group is live.
            ffi::midpoint_pg_barrier(self.raw, err, len)
        })
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: `raw` came from midpoint_pg_new and is freed once.
        unsafe { ffi::midpoint_pg_free(self.raw) }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "127.0.0.1".into())
}
