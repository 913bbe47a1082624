//! The PyTorch-eager peer's figure beside ours (`bench mgm --peer FILE`, `bench warmup --peer
//! FILE`): `FILE` is the one JSON line `../shared/peers/mgm_torch.py` prints, measured on the
//! same GPU in the same job. A peer measured at another batch, mode or precision is refused:
//! its ratio would compare two different workloads.

use crate::error::TrainError;
use std::path::Path;

/// The fields of the peer's JSON that the comparison uses.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PeerRun {
    /// `mgm` or `warmup`.
    pub mode: String,
    /// `fp32` or `bf16`.
    pub precision: String,
    /// Images per step.
    pub batch: i64,
    /// Training images per second.
    pub images_per_s: f64,
    /// `torch.cuda.max_memory_allocated()` (null on the CPU).
    pub peak_gpu_memory_bytes: Option<u64>,
    /// The GPU's name (null on the CPU).
    pub gpu: Option<String>,
    /// torch version.
    pub torch: String,
}

/// Our figure against the peer's.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PeerComparison {
    /// The peer's run.
    pub peer: PeerRun,
    /// Ours / the peer's images per second (> 1: we are faster).
    pub speed_ratio: f64,
    /// Our peak GPU memory / the peer's (< 1: we use less), when both were measured.
    pub memory_ratio: Option<f64>,
}

/// Reads the peer's JSON (the last non-empty line of `path`, so a log with the JSON at its
/// end works too).
pub fn read_peer(path: &Path) -> Result<PeerRun, TrainError> {
    let bad = |m: String| TrainError::InvalidOption(format!("--peer {}: {m}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| bad("empty file".into()))?;
    let peer: PeerRun =
        serde_json::from_str(line).map_err(|e| bad(format!("not the peer's JSON line ({e})")))?;
    if !(peer.images_per_s.is_finite() && peer.images_per_s > 0.0) {
        return Err(bad(format!("images_per_s = {}", peer.images_per_s)));
    }
    Ok(peer)
}

/// Compares our `images_per_s` and peak memory with the peer's, after checking that both
/// measured the same workload.
pub fn compare(
    peer: PeerRun,
    mode: &str,
    precision: &str,
    batch: i64,
    images_per_s: f64,
    peak_gpu_memory_bytes: Option<u64>,
) -> Result<PeerComparison, TrainError> {
    let ours = (mode, precision, batch);
    let theirs = (peer.mode.as_str(), peer.precision.as_str(), peer.batch);
    if ours != theirs {
        return Err(TrainError::InvalidOption(format!(
            "--peer measured mode {}, precision {}, batch {}; this bench is mode {mode}, precision {precision}, batch {batch}",
            theirs.0, theirs.1, theirs.2
        )));
    }
    let memory_ratio = match (peak_gpu_memory_bytes, peer.peak_gpu_memory_bytes) {
        (Some(a), Some(b)) if b > 0 => Some(a as f64 / b as f64),
        _ => None,
    };
    Ok(PeerComparison {
        speed_ratio: images_per_s / peer.images_per_s,
        memory_ratio,
        peer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peer.json");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    /// The line the peer prints (copied from a CPU run of `mgm_torch.py`) is read, and the
    /// ratios are ours over theirs.
    #[test]
    fn the_peer_line_is_read_and_compared() {
        let (_d, path) = peer_file(
            "log line\n{\"peer\": \"pytorch-eager EDM SongUNet\", \"mode\": \"mgm\", \"torch\": \"2.11.0+cu130\", \"precision\": \"fp32\", \"batch\": 256, \"steps\": 20, \"params\": 55733891, \"iterations_per_s\": 1.3, \"images_per_s\": 332.0, \"seconds\": 15.4, \"losses\": [1.0, 2.0], \"cudnn_tf32\": true, \"matmul_tf32\": false, \"peak_gpu_memory_bytes\": 64100000000, \"gpu\": \"NVIDIA H200\"}\n\n",
        );
        let peer = read_peer(&path).unwrap();
        let c = compare(peer, "mgm", "fp32", 256, 293.6, Some(64_900_000_000)).unwrap();
        assert!((c.speed_ratio - 293.6 / 332.0).abs() < 1e-12);
        assert!((c.memory_ratio.unwrap() - 649.0 / 641.0).abs() < 1e-12);
    }

    /// Another workload, an empty file or another JSON are refused with the reason.
    #[test]
    fn other_workloads_and_other_files_are_refused() {
        let line = "{\"mode\": \"warmup\", \"precision\": \"fp32\", \"batch\": 512, \"images_per_s\": 1000.0, \"peak_gpu_memory_bytes\": null, \"gpu\": null, \"torch\": \"2.11.0\"}";
        let (_d, path) = peer_file(line);
        let peer = read_peer(&path).unwrap();
        let e = compare(peer.clone(), "warmup", "fp32", 256, 900.0, None).unwrap_err();
        assert!(e.to_string().contains("batch 512"), "{e}");
        let e = compare(peer.clone(), "mgm", "fp32", 512, 900.0, None).unwrap_err();
        assert!(e.to_string().contains("mode warmup"), "{e}");
        assert!(compare(peer, "warmup", "fp32", 512, 900.0, None)
            .unwrap()
            .memory_ratio
            .is_none());
        for text in ["", "{\"mode\": \"mgm\"}", "{\"mode\": \"mgm\", \"precision\": \"fp32\", \"batch\": 2, \"images_per_s\": 0.0, \"torch\": \"x\"}"] {
            let (_d, path) = peer_file(text);
            assert!(read_peer(&path).is_err(), "{text:?}");
        }
    }
}
