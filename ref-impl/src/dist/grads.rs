//! Gradient averaging after a backward pass: the gradients of the network being stepped are
//! packed into a few flat buffers of at most [`BUCKET_BYTES`] (PyTorch DDP's default bucket),
//! each all-reduced in one call, divided by the number of ranks and unpacked. Never one call
//! per tensor: ddpm++ has ~300 parameter tensors but ~9 buckets.

use super::{DistError, ProcessGroup, ReduceOp};
use tch::{nn, Tensor};

/// Bytes per bucket (DDP's `bucket_cap_mb = 25`).
pub const BUCKET_BYTES: usize = 25 << 20;

/// The trainable variables of `vs` in name order (the same order on every rank), grouped into
/// consecutive buckets of at most `cap` bytes (a larger tensor is a bucket of its own).
pub fn buckets(vs: &nn::VarStore, cap: usize) -> Vec<Vec<Tensor>> {
    let mut vars: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<Vec<Tensor>> = vec![];
    let mut bytes = 0usize;
    for (_, t) in vars {
        let size = t.numel() * t.kind().elt_size_in_bytes();
        if out.is_empty() || bytes + size > cap {
            out.push(vec![]);
            bytes = 0;
        }
        bytes += size;
        out.last_mut().expect("pushed").push(t);
    }
    out.retain(|b| !b.is_empty());
    out
}

/// `grad ← mean over ranks of grad` for every trainable variable of `vs` that has a gradient
/// (the same ones on every rank: the same code ran on the same graph), one all-reduce per
/// bucket. Returns the number of all-reduce calls.
pub fn average_gradients(
    vs: &nn::VarStore,
    group: &ProcessGroup,
    cap: usize,
) -> Result<usize, DistError> {
    let world = group.world() as f64;
    let mut calls = 0;
    for bucket in buckets(vs, cap) {
        let grads: Vec<Tensor> = bucket
            .iter()
            .map(|p| p.grad())
            .filter(|g| g.defined())
            .collect();
        if grads.is_empty() {
            continue;
        }
        let flat = tch::no_grad(|| {
            Tensor::cat(
                &grads.iter().map(|g| g.reshape([-1])).collect::<Vec<_>>(),
                0,
            )
        });
        group.all_reduce(&flat, ReduceOp::Sum)?;
        calls += 1;
        tch::no_grad(|| {
            let _ = flat.shallow_clone().g_div_scalar_(world);
            let mut offset = 0;
            for g in &grads {
                let n = g.numel() as i64;
                g.shallow_clone()
                    .copy_(&flat.narrow(0, offset, n).view_as(g));
                offset += n;
            }
        });
    }
    Ok(calls)
}
