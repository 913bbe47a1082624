//! End to end on the CPU (issue 5): a folder of PNG images written here → `warmup` (tiny
//! network, 2 steps) → `mgm --warmup` from that checkpoint on the same folder with FID against
//! it → the same run split by a checkpoint and `--resume` gives bit-identical losses (FID
//! evaluations in between do not disturb the trajectory) → `fid.jsonl`, `fid.png`, finite
//! losses and FID.
//!
//! One libtorch thread: with more, OpenMP spin-waits make this test 50× slower on a busy
//! 2-core machine (measured: 4 MGM steps 28.7 s with 2 threads, 0.6 s with 1).
//!
//! Needs the Inception weights (`$MIDPOINT_INCEPTION`, set by scripts/test.sh through
//! scripts/ensure-inception.sh).

use midpoint_train::image::fid_eval::{read_fid, read_losses};
use std::path::Path;
use std::process::Command;

fn run(args: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_midpoint-train"))
        .args(args)
        .args(["--device", "cpu", "--threads", "1", "--quiet"])
        .output()
        .expect("binary runs");
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Eight 32×32 RGB images: smooth colour patterns that differ per image.
fn write_images(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for n in 0..8u32 {
        let mut data = Vec::with_capacity(32 * 32 * 3);
        for y in 0..32u32 {
            for x in 0..32u32 {
                for c in 0..3u32 {
                    data.push(((x * (c + 1) * 7 + y * 5 + n * 29 + c * 80) % 256) as u8);
                }
            }
        }
        let file = std::fs::File::create(dir.join(format!("img{n}.png"))).unwrap();
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), 32, 32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header().unwrap().write_image_data(&data).unwrap();
    }
}

#[test]
fn warmup_then_mgm_then_resume_then_fid() {
    let dir = tempfile::tempdir().unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let data = dir.path().join("images");
    write_images(&data);
    let warm = dir.path().join("warmup");
    run(&[
        "warmup",
        "--data",
        &s(&data),
        "--arch",
        "tiny",
        "--steps",
        "2",
        "--batch",
        "4",
        "--lr-rampup-kimg",
        "0",
        "--checkpoint-every",
        "2",
        "--out",
        &s(&warm),
    ]);
    let ckpt = warm.join("checkpoint.safetensors");
    let mgm = |out: &Path, steps: &str, extra: &[&str]| {
        let mut args = vec![
            "mgm",
            "--data",
            &s(&data),
            "--out",
            &s(out),
            "--steps",
            steps,
            "--batch",
            "2",
            "--lr",
            "1e-3",
            "--grid-every",
            "0",
            "--checkpoint-every",
            "2",
            "--seed",
            "4",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.extend(extra.iter().map(|a| a.to_string()));
        run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    };
    let no_fid = ["--fid-every", "0", "--final-fid", "0"];
    // Whole run: 4 steps, FID-4 at step 2 and at the end against the training folder.
    let whole = dir.path().join("whole");
    mgm(
        &whole,
        "4",
        &[
            "--warmup",
            &s(&ckpt),
            "--fid-ref",
            &s(&data),
            "--fid-every",
            "2",
            "--fid-n",
            "4",
            "--final-fid",
            "4",
            "--fid-batch",
            "4",
        ],
    );
    // Split run: 2 steps and a checkpoint, then --resume (no --warmup needed) to 4.
    let split = dir.path().join("split");
    mgm(
        &split,
        "2",
        &[&["--warmup", &s(&ckpt)][..], &no_fid].concat(),
    );
    mgm(&split, "4", &[&["--resume"][..], &no_fid].concat());

    let a = read_losses(&whole.join("losses.jsonl")).unwrap();
    let b = read_losses(&split.join("losses.jsonl")).unwrap();
    assert_eq!(a.len(), 4);
    assert_eq!(b.iter().map(|l| l.step).collect::<Vec<_>>(), [0, 1, 2, 3]);
    for (x, y) in a.iter().zip(&b) {
        assert!(x.critic.is_finite() && x.generator.is_finite());
        assert_eq!(
            (x.critic.to_bits(), x.generator.to_bits()),
            (y.critic.to_bits(), y.generator.to_bits()),
            "step {}",
            x.step
        );
    }
    let fid = read_fid(&whole.join("fid.jsonl")).unwrap();
    assert_eq!(
        fid.iter().map(|f| (f.step, f.samples)).collect::<Vec<_>>(),
        [(2, 4), (4, 4)]
    );
    assert!(
        fid.iter().all(|f| f.fid.is_finite() && f.fid > 0.0),
        "{fid:?}"
    );
    assert!(whole.join("fid.png").metadata().unwrap().len() > 0);
    assert!(split.join("checkpoint.safetensors").exists());
}
