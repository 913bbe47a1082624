//! Checkpoints (round trip, corrupt / truncated / unchecked files refused before anything is
//! loaded) and the stateful Adam (against libtorch's own Adam).

use midpoint_train::train::adam::{Adam, AdamConfig};
use midpoint_train::train::checkpoint::{self, CheckpointError};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

fn sample_tensors() -> Vec<(String, Tensor)> {
    tch::manual_seed(7);
    vec![
        (
            "net.w".into(),
            Tensor::randn([3, 4, 2], (Kind::Float, Device::Cpu)),
        ),
        (
            "net.b".into(),
            Tensor::from_slice(&[f32::MIN_POSITIVE, -0.0, 1e30]),
        ),
        ("count".into(), Tensor::from_slice(&[i64::MAX, -5])),
        ("bytes".into(), Tensor::from_slice(&[0u8, 255, 17])),
        ("x64".into(), Tensor::from_slice(&[std::f64::consts::PI])),
    ]
}

fn meta() -> BTreeMap<String, String> {
    [("step", "42"), ("options", "{\"lr\":0.001}")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn same_bits(a: &Tensor, b: &Tensor) -> bool {
    a.kind() == b.kind() && a.size() == b.size() && a.eq_tensor(b).all().int64_value(&[]) == 1
}

#[test]
fn round_trip_is_bit_exact_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    let tensors = sample_tensors();
    checkpoint::save(&path, &tensors, &meta()).unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["c.safetensors"], "no temporary file left");
    let c = checkpoint::load(&path).unwrap();
    assert_eq!(
        c.metadata,
        meta(),
        "digest is not part of the returned metadata"
    );
    assert_eq!(c.tensors.len(), tensors.len());
    for (name, t) in &tensors {
        assert!(same_bits(&c.tensors[name], t), "{name}");
    }
    // Overwriting replaces the file atomically with the new contents.
    checkpoint::save(&path, &tensors[..1], &BTreeMap::new()).unwrap();
    assert_eq!(checkpoint::load(&path).unwrap().tensors.len(), 1);
    // It is an ordinary safetensors file that tch reads too.
    let plain = Tensor::read_safetensors(&path).unwrap();
    assert!(same_bits(&plain[0].1, &tensors[0].1));
}

fn corrupt(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    f(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn corrupt_truncated_or_unchecked_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.safetensors");
    checkpoint::save(&good, &sample_tensors(), &meta()).unwrap();
    let header_len =
        u64::from_le_bytes(std::fs::read(&good).unwrap()[..8].try_into().unwrap()) as usize;
    let case = |name: &str, f: &dyn Fn(&mut Vec<u8>)| {
        let p = dir.path().join(name);
        std::fs::copy(&good, &p).unwrap();
        corrupt(&p, f);
        checkpoint::load(&p).unwrap_err()
    };
    // One flipped bit in the last tensor byte.
    let e = case("bit.safetensors", &|b| {
        let n = b.len();
        b[n - 1] ^= 1
    });
    assert!(matches!(e, CheckpointError::Checksum { .. }), "{e}");
    assert!(e.to_string().contains("refusing to load"));
    // A changed metadata value ("42" → "43") of the same length.
    let e = case("meta.safetensors", &|b| {
        let h = String::from_utf8(b[8..8 + header_len].to_vec()).unwrap();
        let h = h.replacen("\"42\"", "\"43\"", 1);
        b[8..8 + header_len].copy_from_slice(h.as_bytes());
    });
    assert!(matches!(e, CheckpointError::Checksum { .. }), "{e}");
    // Truncated: 10 bytes short, or only half the header.
    let e = case("short.safetensors", &|b| b.truncate(b.len() - 10));
    assert!(matches!(e, CheckpointError::Format { .. }), "{e}");
    assert!(e.to_string().contains("truncated"));
    let e = case("half.safetensors", &|b| b.truncate(8 + header_len / 2));
    assert!(matches!(e, CheckpointError::Format { .. }), "{e}");
    let e = case("empty.safetensors", &|b| b.clear());
    assert!(matches!(e, CheckpointError::Format { .. }), "{e}");
    // Missing file.
    let e = checkpoint::load(&dir.path().join("none.safetensors")).unwrap_err();
    assert!(matches!(e, CheckpointError::Io { .. }), "{e}");
    // A valid safetensors file without a checksum (written by tch itself).
    let plain = dir.path().join("plain.safetensors");
    Tensor::write_safetensors(&[("a", Tensor::from_slice(&[1.0f32]))], &plain).unwrap();
    let e = checkpoint::load(&plain).unwrap_err();
    assert!(e.to_string().contains("no sha256"), "{e}");
}

/// The hand-written Adam follows libtorch's `torch::optim::Adam` (β 0.9/0.999, ε 1e-8) step
/// for step on the same quadratic; the moments it exposes restore into a fresh optimizer that
/// then continues identically.
#[test]
fn adam_matches_libtorch_and_its_state_restores() {
    let target = Tensor::from_slice(&[1.0f32, -2.0, 3.0, 0.5]);
    let init = Tensor::from_slice(&[0.3f32, 0.1, -0.4, 2.0]);
    let make = || {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().var_copy("w", &init);
        (vs, w)
    };
    let loss = |w: &Tensor| {
        ((w - &target).square() * Tensor::from_slice(&[1.0f32, 10.0, 0.1, 3.0])).sum(Kind::Float)
    };
    let (vs_ref, w_ref) = make();
    let mut reference = nn::Adam::default().build(&vs_ref, 0.05).unwrap();
    let (vs, w) = make();
    let mut ours = Adam::new(&vs, AdamConfig::default());
    for _ in 0..25 {
        reference.backward_step(&loss(&w_ref));
        ours.zero_grad();
        loss(&w).backward();
        ours.step(0.05).unwrap();
    }
    let diff = (&w - &w_ref).abs().max().double_value(&[]);
    assert!(diff < 1e-6, "after 25 steps: {diff}");
    assert!((&w - &init).abs().max().double_value(&[]) > 0.5, "it moved");

    // Save the state, continue 5 steps; restore into a fresh copy, continue 5 steps: equal.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("adam.safetensors");
    let mut tensors = ours.state("adam");
    tensors.push(("w".into(), w.detach()));
    checkpoint::save(&path, &tensors, &BTreeMap::new()).unwrap();
    let ckpt = checkpoint::load(&path).unwrap();
    let (vs2, mut w2) = make();
    tch::no_grad(|| w2.copy_(&ckpt.tensors["w"]));
    let mut restored = Adam::new(&vs2, AdamConfig::default());
    restored.check_state(&ckpt, &path, "adam").unwrap();
    restored.load_state(&ckpt, "adam", ours.steps());
    assert!(restored.check_state(&ckpt, &path, "other").is_err());
    for (opt, w) in [(&mut ours, &w), (&mut restored, &w2)] {
        for _ in 0..5 {
            opt.zero_grad();
            loss(w).backward();
            opt.step(0.05).unwrap();
        }
    }
    assert!(same_bits(&w, &w2));
}
