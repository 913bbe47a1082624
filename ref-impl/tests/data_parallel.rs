//! Data-parallel training on the CPU with 2 processes on c10d's Gloo backend, through the code
//! path NCCL takes on GPUs except the backend: the collectives, the gradient buckets, the
//! weight-digest check, a dead or hung rank ending the job with an error, and N ranks at batch
//! B giving the weights of one process at batch B.
//!
//! Each test spawns this test binary again as the ranks (`child_*` tests, ignored unless
//! `MIDPOINT_DP_CHILD` is set), with the variables torchrun sets (`RANK`, `WORLD_SIZE`,
//! `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`).

use midpoint_train::data::{DataImages, ImageSet};
use midpoint_train::dist::grads::{average_gradients, buckets};
use midpoint_train::dist::{DistError, Launch, ProcessGroup, ReduceOp, Replica};
use midpoint_train::methods::warmup::{Warmup, WarmupOptions};
use midpoint_train::nets::edm::UNetConfig;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use tch::{nn, Device, Kind, Tensor};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `world` ranks running the ignored test `child`, with `env` added.
fn spawn(child: &str, world: usize, env: &[(&str, String)]) -> Vec<Child> {
    let exe = std::env::current_exe().unwrap();
    let port = free_port().to_string();
    (0..world)
        .map(|rank| {
            let mut c = Command::new(&exe);
            c.args([
                child,
                "--exact",
                "--nocapture",
                "--include-ignored",
                "--test-threads",
                "1",
            ])
            .env("MIDPOINT_DP_CHILD", "1")
            .env("RANK", rank.to_string())
            .env("WORLD_SIZE", world.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", &port);
            for (k, v) in env {
                c.env(k, v);
            }
            c.spawn().unwrap()
        })
        .collect()
}

/// Waits for every rank (at most `limit`): all must pass.
fn all_pass(children: Vec<Child>, limit: Duration) {
    let start = Instant::now();
    for mut c in children {
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                assert!(status.success(), "a rank failed: {status}");
                break;
            }
            if start.elapsed() > limit {
                let _ = c.kill();
                panic!("a rank did not finish within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// In a child: this rank's launch, or `None` when run as a plain test.
fn child_launch() -> Option<Launch> {
    std::env::var("MIDPOINT_DP_CHILD").ok()?;
    tch::set_num_threads(1);
    Some(Launch::from_env().unwrap().expect("launch variables"))
}

const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the 2 ranks of `child`, which write their results into the returned folder
/// (`MIDPOINT_DP_OUT`); every rank must pass within 5 minutes.
fn ranks_writing_to_a_folder(child: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let env = [("MIDPOINT_DP_OUT", dir.path().display().to_string())];
    all_pass(spawn(child, 2, &env), Duration::from_secs(300));
    dir
}

/// torch's random stream is global to this test process: the tests that train or sample in
/// it (the single-process references) take turns, or their draws interleave.
static TORCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn torch_turn() -> std::sync::MutexGuard<'static, ()> {
    TORCH.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn collectives_buckets_and_the_digest_check_on_two_ranks() {
    all_pass(spawn("child_collectives", 2, &[]), Duration::from_secs(120));
}

#[test]
#[ignore = "a rank of collectives_buckets_and_the_digest_check_on_two_ranks"]
fn child_collectives() {
    let Some(launch) = child_launch() else { return };
    let r = launch.rank as f64;
    let pg = ProcessGroup::join(&launch, midpoint_train::dist::Backend::Gloo, TIMEOUT).unwrap();
    assert_eq!((pg.rank(), pg.world()), (launch.rank, 2));
    // Sum, max, min of [r, 10 − r]: [1, 19], [1, 10], [0, 9].
    for (op, want) in [
        (ReduceOp::Sum, [1.0, 19.0]),
        (ReduceOp::Max, [1.0, 10.0]),
        (ReduceOp::Min, [0.0, 9.0]),
    ] {
        let t = Tensor::from_slice(&[r, 10.0 - r]);
        pg.all_reduce(&t, op).unwrap();
        assert_eq!(Vec::<f64>::try_from(&t).unwrap(), want, "{op:?}");
    }
    let t = Tensor::from_slice(&[r + 5.0; 3]);
    pg.broadcast(&t, 1).unwrap();
    assert_eq!(Vec::<f64>::try_from(&t).unwrap(), [6.0; 3]);
    pg.barrier().unwrap();

    // Gradients of 5 variables (16, 24, 20, 4 and 12 bytes: 4 buckets at a 32-byte cap) set
    // to rank-dependent values: after averaging, each is the mean of the two ranks', in 4
    // all-reduce calls.
    let vs = nn::VarStore::new(Device::Cpu);
    let shapes: [&[i64]; 5] = [&[4], &[2, 3], &[5], &[1], &[3]];
    for (i, s) in shapes.iter().enumerate() {
        let _ = vs.root().zeros(&format!("v{i}"), s);
    }
    let grad_of = |rank: f64, i: usize, n: i64| {
        Tensor::arange(n, (Kind::Float, Device::Cpu)) * (rank + 1.0) + i as f64
    };
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let loss = vars.iter().enumerate().fold(
        Tensor::zeros([], (Kind::Float, Device::Cpu)),
        |acc, (i, (_, v))| acc + (v * grad_of(r, i, v.numel() as i64).view_as(v)).sum(Kind::Float),
    );
    loss.backward();
    let sizes: Vec<usize> = buckets(&vs, 32).iter().map(Vec::len).collect();
    assert_eq!(sizes, [1, 1, 2, 1]);
    assert_eq!(average_gradients(&vs, &pg, 32).unwrap(), 4);
    for (i, (name, v)) in vars.iter().enumerate() {
        let n = v.numel() as i64;
        let want = (grad_of(0.0, i, n) + grad_of(1.0, i, n)) / 2.0;
        let got = v.grad().reshape([-1]);
        assert!(got.allclose(&want, 0.0, 0.0, false), "{name}: {got:?}");
    }

    // Same weights pass the digest check; a changed weight on rank 1 fails it on both ranks.
    let replica = replica_on(&launch, 1);
    replica.check_same(6, "test vars", &vs).unwrap();
    tch::no_grad(|| {
        if launch.rank == 1 {
            let _ = vars[2].1.shallow_clone().fill_(1.0);
        }
    });
    let err = replica.check_same(7, "test vars", &vs).unwrap_err();
    match err {
        DistError::Diverged {
            step: 7,
            what,
            min,
            max,
        } => {
            assert!(what.contains("v2"), "{what}");
            assert!(min < max);
        }
        other => panic!("{other}"),
    }
}

/// A second group on the next port (the first one's store is still bound).
fn replica_on(launch: &Launch, offset: u16) -> Replica {
    let l = Launch {
        master_port: launch.master_port + offset,
        ..launch.clone()
    };
    Replica::join(&l, Device::Cpu, TIMEOUT).unwrap()
}

#[test]
fn a_dead_or_hung_rank_ends_the_job_with_an_error() {
    for mode in ["dead", "hung"] {
        let start = Instant::now();
        all_pass(
            spawn(
                "child_dead_or_hung",
                2,
                &[("MIDPOINT_DP_MODE", mode.into())],
            ),
            Duration::from_secs(60),
        );
        eprintln!("{mode}: {:?}", start.elapsed());
    }
}

#[test]
#[ignore = "a rank of a_dead_or_hung_rank_ends_the_job_with_an_error"]
fn child_dead_or_hung() {
    let Some(launch) = child_launch() else { return };
    let mode = std::env::var("MIDPOINT_DP_MODE").unwrap();
    let timeout = Duration::from_secs(3);
    let pg = ProcessGroup::join(&launch, midpoint_train::dist::Backend::Gloo, timeout).unwrap();
    pg.barrier().unwrap();
    if launch.rank == 1 {
        if mode == "hung" {
            std::thread::sleep(Duration::from_secs(8));
        }
        std::process::exit(0); // dies without its all-reduce
    }
    let start = Instant::now();
    let t = Tensor::from_slice(&[1.0f32]);
    let err = pg.all_reduce(&t, ReduceOp::Sum).unwrap_err();
    let waited = start.elapsed();
    assert!(
        matches!(
            err,
            DistError::Collective {
                what: "all-reduce",
                rank: 0,
                ..
            }
        ),
        "{err}"
    );
    // Dead: the closed connection is seen at once; hung: the 3 s timeout, not forever.
    assert!(waited < Duration::from_secs(6), "{mode}: {waited:?}");
    if mode == "hung" {
        assert!(waited >= Duration::from_secs(2), "{waited:?}");
    }
    eprintln!("{mode} rank: error after {waited:?}: {err}");
    std::mem::forget(pg); // the peer is gone: do not wait for a clean shutdown
}

/// Both ranks' saved variables (`DIR/PREFIX{rank}.ot`) against one process's `want`: fewer
/// than 1 in 1,000 values differ by more than 1e-5 and none by more than 1e-4 (the argument
/// is at `two_ranks_train_the_warmup_as_one_process_does`).
fn matches_alone(want: &[(String, Tensor)], dir: &Path, prefix: &str) {
    for rank in 0..2 {
        let got = Tensor::load_multi(dir.join(format!("{prefix}{rank}.ot"))).unwrap();
        assert_eq!(got.len(), want.len());
        let (mut worst, mut above, mut total) = (0.0f64, 0i64, 0i64);
        for ((n, a), (m, b)) in want.iter().zip(&got) {
            assert_eq!(n, m);
            let d = (a - b).abs();
            worst = worst.max(d.max().double_value(&[]));
            above += d.gt(1e-5).sum(Kind::Int64).int64_value(&[]);
            total += a.numel() as i64;
        }
        eprintln!("rank {rank}: largest {worst:e}, {above} of {total} above 1e-5");
        assert!(worst < 1e-4, "rank {rank}: largest difference {worst:e}");
        assert!(
            above * 1000 < total,
            "rank {rank}: {above} of {total} values differ by > 1e-5"
        );
    }
}

fn warmup_options() -> WarmupOptions {
    let mut o = WarmupOptions::edm(UNetConfig {
        dropout: 0.0, // dropout is drawn per rank: equal in law, not bit for bit
        ..UNetConfig::tiny()
    });
    o.batch = 4;
    o.lr_rampup_kimg = 0.0;
    o.ema_halflife_kimg = 0.01;
    o.xflip = true;
    o.seed = 3;
    o
}

fn warmup_data() -> DataImages {
    tch::manual_seed(99);
    let images = Tensor::randint(256, [10, 3, 32, 32], (Kind::Uint8, Device::Cpu));
    let set = ImageSet::new(images, None, "random".into());
    let o = warmup_options();
    DataImages::with_order_seed(set, o.seed, o.seed, o.xflip).unwrap()
}

const WARMUP_STEPS: usize = 3;

fn train_warmup(w: &mut Warmup) -> Vec<(String, Tensor)> {
    let mut data = warmup_data();
    for _ in 0..WARMUP_STEPS {
        w.train_step(&mut data).unwrap();
    }
    let mut vars: Vec<(String, Tensor)> = w.net().1.variables().into_iter().collect();
    vars.extend(
        w.ema()
            .1
            .variables()
            .into_iter()
            .map(|(n, t)| (format!("ema.{n}"), t)),
    );
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// 3 warmup steps on 2 ranks at global batch 4 (2 rows each) end at the weights of one process
/// at batch 4, up to the reduction's rounding. The all-reduce adds the two halves of the
/// gradient in another order (~1e-7 relative), and Adam divides each gradient by its own
/// scale, so a weight whose gradient nearly cancels can move by a visibly different amount:
/// such weights are few. Measured: differences above 1e-5 (1% of one Adam move, lr = 1e-3) in
/// ~10 of 355k values, the largest 2.6e-5. A rank that drew other noise or other rows would
/// differ by O(lr) in a large fraction of the weights (Adam's first move is lr·sign(g)): the
/// test asks for fewer than 1 in 1,000 values above 1e-5 and none above 1e-4 (10% of a move).
#[test]
fn two_ranks_train_the_warmup_as_one_process_does() {
    let _turn = torch_turn();
    let dir = ranks_writing_to_a_folder("child_warmup");
    tch::set_num_threads(1);
    let mut alone = Warmup::new(warmup_options(), Device::Cpu).unwrap();
    let want = train_warmup(&mut alone);
    matches_alone(&want, dir.path(), "rank");
}

#[test]
#[ignore = "a rank of two_ranks_train_the_warmup_as_one_process_does"]
fn child_warmup() {
    let Some(launch) = child_launch() else { return };
    let out = std::env::var("MIDPOINT_DP_OUT").unwrap();
    let replica = Replica::join(&launch, Device::Cpu, TIMEOUT).unwrap();
    let mut w = Warmup::new(warmup_options(), Device::Cpu)
        .unwrap()
        .with_replica(replica)
        .unwrap();
    let vars = train_warmup(&mut w);
    Tensor::save_multi(
        &vars,
        Path::new(&out).join(format!("rank{}.ot", launch.rank)),
    )
    .unwrap();
}

fn write_pngs(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for k in 0..n {
        let data: Vec<u8> = (0..32 * 32 * 3)
            .map(|i| ((i * 7 + k * 61) % 256) as u8)
            .collect();
        let f = std::fs::File::create(dir.join(format!("{k:03}.png"))).unwrap();
        let mut enc = png::Encoder::new(f, 32, 32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header().unwrap().write_image_data(&data).unwrap();
    }
}

fn torchrun() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("torchrun"))
        .find(|p| p.is_file())
}

/// Runs `midpoint-train ARGS` as 2 ranks: under `torchrun --nproc-per-node 2 --no-python`
/// where torchrun is installed (the torch venv of scripts/ensure-libtorch.sh has it), else as
/// two processes with the variables torchrun sets. Returns the ranks' stdout (all of it) and
/// whether every rank succeeded, with stderr.
fn two_ranks(args: &[String]) -> (String, String, bool) {
    let bin = env!("CARGO_BIN_EXE_midpoint-train");
    let port = free_port().to_string();
    match torchrun() {
        Some(tr) => {
            let o = Command::new(tr)
                .args(["--nproc-per-node", "2", "--master-addr", "127.0.0.1"])
                .args(["--master-port", &port, "--no-python", bin])
                .args(args)
                .output()
                .unwrap();
            (
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
                o.status.success(),
            )
        }
        None => {
            eprintln!("torchrun not on PATH: starting the two ranks with its variables");
            let children: Vec<Child> = (0..2)
                .map(|rank| {
                    Command::new(bin)
                        .args(args)
                        .env("RANK", rank.to_string())
                        .env("WORLD_SIZE", "2")
                        .env("LOCAL_RANK", rank.to_string())
                        .env("MASTER_ADDR", "127.0.0.1")
                        .env("MASTER_PORT", &port)
                        .stdout(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            let (mut out, mut err, mut ok) = (String::new(), String::new(), true);
            for c in children {
                let o = c.wait_with_output().unwrap();
                out += &String::from_utf8_lossy(&o.stdout);
                err += &String::from_utf8_lossy(&o.stderr);
                ok &= o.status.success();
            }
            (out, err, ok)
        }
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// `torchrun --nproc-per-node 2 --no-python midpoint-train warmup ...`: the job trains, rank 0
/// alone writes the folder and prints the summary, and the checkpoint of the 2-rank run
/// resumes in one process (the global batch and the data order do not depend on the ranks).
#[test]
fn the_warmup_command_runs_under_torchrun_and_resumes_alone() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    write_pngs(&imgs, 6);
    let out = dir.path().join("out");
    let args = |steps: &str| -> Vec<String> {
        let mut a = strings(&[
            "warmup",
            "--arch",
            "tiny",
            "--batch",
            "4",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--quiet",
            "--checkpoint-every",
            "1",
            "--lr-rampup-kimg",
            "0",
            "--dist-timeout",
            "60",
            "--digest-every",
            "1",
            "--steps",
            steps,
            "--data",
        ]);
        a.extend([
            imgs.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ]);
        a
    };
    let (stdout, stderr, ok) = two_ranks(&args("2"));
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout.matches("\"steps_this_run\"").count(),
        1,
        "one summary: {stdout}"
    );
    let lines = std::fs::read_to_string(out.join("losses.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 2, "rank 0 alone logs: {lines}");
    assert!(out.join("checkpoint.safetensors").exists());

    let bin = env!("CARGO_BIN_EXE_midpoint-train");
    let o = Command::new(bin)
        .args(args("3"))
        .arg("--resume")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["start_step"].as_u64(), v["steps"].as_u64()),
        (Some(2), Some(3))
    );
}

/// `mgm` on 2 ranks with the tiny network's dropout (0.13, drawn per rank): the replicas stay
/// identical (the weight digest is compared after every step), rank 0 alone logs, a time
/// limit stops both ranks after the same step, and the 2-rank checkpoint resumes in one
/// process.
#[test]
fn the_mgm_command_runs_on_two_ranks_and_resumes_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let args = |steps: &str, extra: &[&str]| -> Vec<String> {
        let mut a = strings(&[
            "mgm",
            "--init",
            "random",
            "--synthetic",
            "--arch",
            "tiny",
            "--batch",
            "4",
            "--checkpoint-every",
            "1",
            "--fid-every",
            "0",
            "--final-fid",
            "0",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--quiet",
            "--dist-timeout",
            "60",
            "--digest-every",
            "1",
            "--steps",
            steps,
        ]);
        a.extend(strings(extra));
        a.extend(["--out".into(), out.display().to_string()]);
        a
    };
    let (_, stderr, ok) = two_ranks(&args("2", &[]));
    assert!(ok, "{stderr}");
    let lines = std::fs::read_to_string(out.join("losses.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 2, "rank 0 alone logs: {lines}");

    // One step always takes longer than a nanosecond: both ranks stop after step 3.
    let (_, stderr, ok) = two_ranks(&args("50", &["--resume", "--max-seconds", "1e-9"]));
    assert!(ok, "{stderr}");
    let lines = std::fs::read_to_string(out.join("losses.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 3, "{lines}");

    let bin = env!("CARGO_BIN_EXE_midpoint-train");
    let o = Command::new(bin)
        .args(args("4", &["--resume"]))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = std::fs::read_to_string(out.join("losses.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 4, "{lines}");
}

/// Commands that do not train data-parallel refuse a multi-process launch in one line.
#[test]
fn other_commands_refuse_a_multi_process_launch() {
    let o = Command::new(env!("CARGO_BIN_EXE_midpoint-train"))
        .args(["info"])
        .env("RANK", "0")
        .env("WORLD_SIZE", "2")
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("only warmup and mgm") && e.trim_end().lines().count() == 1,
        "{e}"
    );
}

fn mgm_config() -> midpoint_train::methods::mgm::image::ImageMgmConfig {
    use midpoint_train::methods::mgm::image::ImageMgmConfig;
    ImageMgmConfig {
        batch: 4,
        lr: 1e-3,
        ema_decay: 0.9,
        seed: 5,
        critic_steps: 2,
        ..ImageMgmConfig::paper(UNetConfig {
            dropout: 0.0, // dropout is drawn per rank: equal in law, not bit for bit
            ..UNetConfig::tiny()
        })
    }
}

const MGM_STEPS: usize = 2;

fn train_mgm(run: &mut midpoint_train::methods::mgm::image::ImageMgm) -> Vec<(String, Tensor)> {
    let mut data = warmup_data();
    for _ in 0..MGM_STEPS {
        run.step(&mut data).unwrap();
    }
    run.state()
}

/// 2 iterations of image MGM (2 field updates and 1 generator update each, so 6 Adam steps
/// and 2 EMA updates) on 2 ranks at global batch 4 end at the weights of one process at batch
/// 4, with the same tolerance argument as the warmup's: the replicas differ from the single
/// process only where Adam divides a nearly cancelling gradient (measured: 7 of 533k values
/// above 1e-5, the largest 1.9e-5), while other draws would move a large fraction of all
/// weights by O(lr).
#[test]
fn two_ranks_train_mgm_as_one_process_does() {
    let _turn = torch_turn();
    let dir = ranks_writing_to_a_folder("child_mgm");
    tch::set_num_threads(1);
    let mut alone =
        midpoint_train::methods::mgm::image::ImageMgm::from_random_init(mgm_config(), Device::Cpu)
            .unwrap();
    let want = train_mgm(&mut alone);
    matches_alone(&want, dir.path(), "mgm");
}

#[test]
#[ignore = "a rank of two_ranks_train_mgm_as_one_process_does"]
fn child_mgm() {
    let Some(launch) = child_launch() else { return };
    let out = std::env::var("MIDPOINT_DP_OUT").unwrap();
    let replica = Replica::join(&launch, Device::Cpu, TIMEOUT).unwrap();
    let mut run =
        midpoint_train::methods::mgm::image::ImageMgm::from_random_init(mgm_config(), Device::Cpu)
            .unwrap()
            .with_replica(replica)
            .unwrap();
    let vars = train_mgm(&mut run);
    Tensor::save_multi(
        &vars,
        Path::new(&out).join(format!("mgm{}.ot", launch.rank)),
    )
    .unwrap();
}

/// The reference statistics of the FID tests: 40 fixed random feature vectors.
fn fid_reference() -> midpoint_train::fid::Statistics {
    use midpoint_train::fid::stats::FeatureAccumulator;
    tch::manual_seed(11);
    let mut acc = FeatureAccumulator::new(midpoint_train::fid::FEATURE_DIM, Device::Cpu);
    acc.push(&Tensor::rand([40, 2048], (Kind::Float, Device::Cpu)))
        .unwrap();
    acc.finish().unwrap()
}

fn fid_of_untrained_mgm(replica: Option<Replica>) -> f64 {
    use midpoint_train::fid::Inception;
    use midpoint_train::image::fid_eval::FidEval;
    let run =
        midpoint_train::methods::mgm::image::ImageMgm::from_random_init(mgm_config(), Device::Cpu)
            .unwrap();
    let eval = FidEval {
        inception: Inception::load_default(Device::Cpu).unwrap_or_else(|e| panic!("{e}")),
        reference: fid_reference(),
        batch: 2,
        seed: 9,
        replica,
    };
    eval.fid(&run, 7).unwrap()
}

/// A data-parallel FID (7 samples in batches of 2: rank 0 embeds batches 0 and 2, rank 1
/// batches 1 and 3) equals one process's: the same latents, features summed in float64 over
/// the ranks (the sums' order differs: 1e-9 relative allows for it).
#[test]
fn a_data_parallel_fid_equals_one_process_fid() {
    let _turn = torch_turn();
    let dir = ranks_writing_to_a_folder("child_fid");
    tch::set_num_threads(1);
    let alone = fid_of_untrained_mgm(None);
    for rank in 0..2 {
        let text = std::fs::read_to_string(dir.path().join(format!("fid{rank}.txt"))).unwrap();
        let shared: f64 = text.trim().parse().unwrap();
        assert!(
            (shared - alone).abs() <= 1e-9 * alone.abs(),
            "rank {rank}: {shared} vs {alone}"
        );
    }
}

#[test]
#[ignore = "a rank of a_data_parallel_fid_equals_one_process_fid"]
fn child_fid() {
    let Some(launch) = child_launch() else { return };
    let out = std::env::var("MIDPOINT_DP_OUT").unwrap();
    let replica = Replica::join(&launch, Device::Cpu, TIMEOUT).unwrap();
    let fid = fid_of_untrained_mgm(Some(replica));
    std::fs::write(
        Path::new(&out).join(format!("fid{}.txt", launch.rank)),
        format!("{fid:e}"),
    )
    .unwrap();
}
