//! The tables and figures of docs/baselines.md from a study folder written by
//! `scripts/flow-map-study.sh` (`ROOT/METHOD/seedS/`, flow-map runs and MGM toy runs).
//!
//! `cargo run --release -p midpoint-train --example flow_map_table -- ROOT DATA`
//!
//! Every metric of every method is read from, or recomputed with, the same estimators on each
//! run's own fresh target sample: MGM's sliced W2² and histogram KL are computed here from its
//! `samples.npy` with the functions the flow-map runs use. Writes `ROOT/table.md`,
//! `ROOT/steps.png` (metrics against sampling steps), `ROOT/wallclock.png` (the training curve
//! against seconds of training) and `ROOT/panels-K.png` (seed 0 at K = 1 and 4).
use midpoint_train::toy::distances::{histogram_kl, sliced_w2};
use midpoint_train::toy::flow_map_run::kl_range;
use midpoint_train::toy::targets::Target;
use midpoint_train::train::plot::{comparison_panels, scatter_panels, Comparison, Panel, Series};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const METHODS: [&str; 10] = [
    "mgm", "fm", "lsd", "esd", "psd-m", "psd-u", "lmd", "emd", "fmm", "pfmm",
];
const STEPS: [usize; 5] = [1, 2, 4, 8, 16];
const METRICS: [(&str, &str); 5] = [
    ("energy_distance", "energy distance"),
    ("sliced_w2", "sliced W2²"),
    ("histogram_kl", "histogram KL(target ‖ model)"),
    ("tmid", "D_t-mid (core estimate, σ = 0.05)"),
    ("map_error", "error against the reference map"),
];

type Boxed = Box<dyn std::error::Error>;

/// One run: metric → steps → value, plus cost and curve.
#[derive(Default)]
struct Run {
    values: BTreeMap<(String, usize), f64>,
    seconds_per_step: f64,
    train_seconds: f64,
    parameters: f64,
    /// `(training seconds, energy distance)` of the training curve.
    curve: Vec<(f64, f64)>,
    floors: BTreeMap<String, f64>,
    /// The reference map's metrics and description, where the run has them.
    reference: Option<(String, BTreeMap<String, f64>)>,
    /// Median and largest gradient norm of the student's steps (flow maps).
    grad_norm: Option<(f64, f64)>,
    /// Median seconds of a step in the teacher phase and in the student phase (flow maps).
    phase_seconds: [Option<f64>; 2],
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

fn read_json(p: &Path) -> Result<Value, Boxed> {
    Ok(serde_json::from_str(&std::fs::read_to_string(p)?)?)
}

/// Cumulative training seconds at each step of `losses.jsonl` (per-step times only, so the
/// curve's own evaluations are not counted).
fn step_times(dir: &Path, per_step: impl Fn(&Value) -> f64) -> Result<Vec<f64>, Boxed> {
    let mut t = 0.0;
    let mut out = Vec::new();
    for line in std::fs::read_to_string(dir.join("losses.jsonl"))?.lines() {
        t += per_step(&serde_json::from_str(line)?);
        out.push(t);
    }
    Ok(out)
}

fn curve(dir: &Path, times: &[f64]) -> Result<Vec<(f64, f64)>, Boxed> {
    let Ok(text) = std::fs::read_to_string(dir.join("curve.csv")) else {
        return Ok(vec![]);
    };
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (s, e) = l.split_once(',')?;
            let s: usize = s.parse().ok()?;
            Some((times.get(s.checked_sub(1)?).copied()?, e.parse().ok()?))
        })
        .collect())
}

fn flow_map_run(dir: &Path) -> Result<Run, Boxed> {
    let m = read_json(&dir.join("metrics.json"))?;
    let mut r = Run {
        seconds_per_step: m["seconds_per_step"].as_f64().unwrap_or(f64::NAN),
        train_seconds: m["train_seconds"].as_f64().unwrap_or(f64::NAN),
        parameters: m["parameters"].as_f64().unwrap_or(f64::NAN),
        ..Run::default()
    };
    for a in m["at_steps"].as_array().ok_or("no at_steps")? {
        let k = a["steps"].as_u64().ok_or("steps")? as usize;
        for (key, _) in METRICS {
            if let Some(v) = a[key].as_f64() {
                r.values.insert((key.into(), k), v);
            }
        }
    }
    for key in ["energy_distance", "sliced_w2", "histogram_kl"] {
        if let Some(v) = m["floors"][key].as_f64() {
            r.floors.insert(key.into(), v);
        }
    }
    if m["reference"].is_object() {
        let values = METRICS
            .iter()
            .filter_map(|(key, _)| Some((key.to_string(), m["reference"][key].as_f64()?)))
            .collect();
        let what = m["reference_map"]
            .as_str()
            .unwrap_or("reference")
            .to_string();
        r.reference = Some((what, values));
    }
    let times = step_times(dir, |l| l["step_seconds"].as_f64().unwrap_or(0.0))?;
    r.curve = curve(dir, &times)?;
    let lines: Vec<Value> = std::fs::read_to_string(dir.join("losses.jsonl"))?
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    let of_phase = |phase: &str, key: &str| -> Vec<f64> {
        lines
            .iter()
            .filter(|l| l["phase"].as_str() == Some(phase))
            .filter_map(|l| l[key].as_f64())
            .collect()
    };
    r.phase_seconds = [
        median(of_phase("teacher", "step_seconds")),
        median(of_phase("student", "step_seconds")),
    ];
    let mut norms = of_phase("student", "grad_norm");
    norms.sort_by(f64::total_cmp);
    if !norms.is_empty() {
        r.grad_norm = Some((norms[norms.len() / 2], norms[norms.len() - 1]));
    }
    if m["config"]["method"]["kind"]
        .as_str()
        .is_some_and(|k| matches!(k, "lmd" | "emd" | "pfmm"))
    {
        // Distilled methods own a teacher of the student's size.
        r.parameters *= 2.0;
    }
    Ok(r)
}

fn mgm_run(dir: &Path, target: &Target) -> Result<Run, Boxed> {
    let m = read_json(&dir.join("metrics.json"))?;
    let c = &m["config"];
    let per_step_samples = (c["critic_steps"].as_f64().ok_or("critic_steps")? + 1.0)
        * c["batch"].as_f64().ok_or("batch")?;
    let times = step_times(dir, |l| {
        per_step_samples / l["images_per_s"].as_f64().unwrap_or(f64::INFINITY)
    })?;
    let g = midpoint::io::read_samples(&dir.join("samples.npy"))?;
    let reference = midpoint::io::read_samples(&dir.join("target.npy"))?;
    let mut r = Run {
        train_seconds: *times.last().unwrap_or(&f64::NAN),
        curve: curve(dir, &times)?,
        ..Run::default()
    };
    r.seconds_per_step = r.train_seconds / times.len().max(1) as f64;
    let seed = c["seed"].as_u64().unwrap_or(0);
    r.values.insert(
        ("energy_distance".into(), 1),
        m["energy_distance"].as_f64().unwrap_or(f64::NAN),
    );
    r.values.insert(
        ("sliced_w2".into(), 1),
        sliced_w2(g.view(), reference.view(), 512, seed)?,
    );
    if let Some([lo, hi]) = kl_range(target, reference.view()) {
        r.values.insert(
            ("histogram_kl".into(), 1),
            histogram_kl(reference.view(), g.view(), 36, lo, hi)?,
        );
    }
    r.values.insert(
        ("tmid".into(), 1),
        m["tmid_core_estimate"].as_f64().unwrap_or(f64::NAN),
    );
    let width = c["width"].as_f64().unwrap_or(f64::NAN);
    let blocks = c["blocks"].as_f64().unwrap_or(f64::NAN);
    let latent = c["latent_dim"].as_f64().unwrap_or(f64::NAN);
    let d = g.ncols() as f64;
    // Generator (latent → d, no time) and field (d → d with a 13-feature time embedding and a
    // projection per block): the layer sizes of nets::mlp.
    let body = blocks * 2.0 * (width * width + width);
    let gen = (latent + 1.0) * width + body + (width + 1.0) * d;
    let field = (d + 1.0) * width
        + body
        + blocks * (width * width + width)
        + 14.0 * width
        + (width + 1.0) * d;
    r.parameters = gen + field;
    Ok(r)
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let sd = if v.len() > 1 {
        (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        f64::NAN
    };
    (m, sd)
}

fn cell(v: &[f64]) -> String {
    match v.len() {
        0 => "—".into(),
        1 => format!("{:.4}", v[0]),
        _ => {
            let (m, sd) = mean_sd(v);
            format!("{m:.4} ± {sd:.4}")
        }
    }
}

fn main() -> Result<(), Boxed> {
    let a: Vec<String> = std::env::args().collect();
    let root = PathBuf::from(a.get(1).ok_or("usage: flow_map_table ROOT DATA")?);
    let target = Target::parse(a.get(2).ok_or("usage: flow_map_table ROOT DATA")?)?;
    // In the order of METHODS.
    let mut runs: Vec<(&str, Vec<(String, Run)>)> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    for method in METHODS {
        let Ok(entries) = std::fs::read_dir(root.join(method)) else {
            continue;
        };
        let mut seeds: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        seeds.sort();
        for dir in seeds {
            let name = dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let r = if method == "mgm" {
                mgm_run(&dir, &target)
            } else {
                flow_map_run(&dir)
            };
            match r {
                Ok(r) => match runs.iter_mut().find(|(m, _)| *m == method) {
                    Some((_, v)) => v.push((name, r)),
                    None => runs.push((method, vec![(name, r)])),
                },
                Err(e) => failed.push(format!("{method} {name}: {e}")),
            }
        }
    }
    let mut md = String::new();
    writeln!(
        md,
        "Study folder `{}`, target `{}`; mean ± sd over seeds.\n",
        root.display(),
        target.name()
    )?;
    let floors: Vec<&Run> = runs
        .iter()
        .flat_map(|(_, v)| v)
        .map(|(_, r)| r)
        .filter(|r| !r.floors.is_empty())
        .collect();
    for (key, title) in METRICS {
        writeln!(md, "**{title}**\n")?;
        writeln!(
            md,
            "| method | seeds | 1 | 2 | 4 | 8 | 16 |\n|---|---|---|---|---|---|---|"
        )?;
        for (method, rs) in &runs {
            let row: Vec<String> = STEPS
                .iter()
                .map(|k| {
                    cell(
                        &rs.iter()
                            .filter_map(|(_, r)| r.values.get(&(key.to_string(), *k)).copied())
                            .collect::<Vec<_>>(),
                    )
                })
                .collect();
            writeln!(md, "| {method} | {} | {} |", rs.len(), row.join(" | "))?;
        }
        let f: Vec<f64> = floors
            .iter()
            .filter_map(|r| r.floors.get(key).copied())
            .collect();
        if !f.is_empty() {
            writeln!(
                md,
                "| independent target sample ({} draws) | | {} | | | | |",
                f.len(),
                cell(&f)
            )?;
        }
        writeln!(md)?;
    }
    writeln!(md, "**The reference maps** (the same measures of the map each method's error is taken against)\n")?;
    writeln!(md, "| method | reference | runs | energy distance | sliced W2² | histogram KL | D_t-mid |\n|---|---|---|---|---|---|---|")?;
    for (method, rs) in &runs {
        let refs: Vec<&(String, BTreeMap<String, f64>)> = rs
            .iter()
            .filter_map(|(_, r)| r.reference.as_ref())
            .collect();
        if refs.is_empty() {
            continue;
        }
        let col = |k: &str| {
            cell(
                &refs
                    .iter()
                    .filter_map(|(_, v)| v.get(k).copied())
                    .collect::<Vec<_>>(),
            )
        };
        writeln!(
            md,
            "| {method} | {} | {} | {} | {} | {} | {} |",
            refs[0].0,
            refs.len(),
            col("energy_distance"),
            col("sliced_w2"),
            col("histogram_kl"),
            col("tmid")
        )?;
    }
    writeln!(md)?;
    writeln!(
        md,
        "**Cost** (seconds per step as measured in the study, two runs sharing the machine)\n"
    )?;
    writeln!(
        md,
        "| method | parameters | seconds per step (mean) | median ms per step: teacher phase | student phase | training seconds | gradient norm of the student: median | largest |\n|---|---|---|---|---|---|---|---|"
    )?;
    for (method, rs) in &runs {
        let sps: Vec<f64> = rs.iter().map(|(_, r)| r.seconds_per_step).collect();
        let tot: Vec<f64> = rs.iter().map(|(_, r)| r.train_seconds).collect();
        let med: Vec<f64> = rs
            .iter()
            .filter_map(|(_, r)| r.grad_norm.map(|g| g.0))
            .collect();
        let max: Vec<f64> = rs
            .iter()
            .filter_map(|(_, r)| r.grad_norm.map(|g| g.1))
            .collect();
        let ms = |i: usize| {
            let v: Vec<f64> = rs
                .iter()
                .filter_map(|(_, r)| r.phase_seconds[i].map(|s| 1e3 * s))
                .collect();
            if v.is_empty() {
                "—".to_string()
            } else {
                format!("{:.2}", mean_sd(&v).0)
            }
        };
        writeln!(
            md,
            "| {method} | {:.0} | {} | {} | {} | {} | {} | {} |",
            rs[0].1.parameters,
            cell(&sps),
            ms(0),
            ms(1),
            cell(&tot),
            cell(&med),
            cell(&max)
        )?;
    }
    writeln!(md, "\n**Equal wall-clock**: energy distance of the training curve's sampler (1 step; FMM 4; MGM its EMA generator) at the last curve point within T seconds of training\n")?;
    let budgets = [15.0, 30.0, 60.0, 120.0];
    writeln!(
        md,
        "| method | {} |\n|---|{}",
        budgets.map(|b| format!("{b:.0} s")).join(" | "),
        "---|".repeat(budgets.len())
    )?;
    for (method, rs) in &runs {
        let row: Vec<String> = budgets
            .iter()
            .map(|b| {
                cell(
                    &rs.iter()
                        .filter_map(|(_, r)| r.curve.iter().rfind(|(t, _)| t <= b).map(|p| p.1))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        writeln!(md, "| {method} | {} |", row.join(" | "))?;
    }
    if !failed.is_empty() {
        writeln!(md, "\n**Runs without metrics**\n")?;
        for f in &failed {
            writeln!(md, "* {f}")?;
        }
    }
    print!("{md}");
    std::fs::write(root.join("table.md"), &md)?;

    // Metrics against sampling steps (means over seeds).
    let panels: Vec<Comparison> = METRICS
        .iter()
        .map(|(key, title)| Comparison {
            title: title.to_string(),
            x_desc: "sampling steps".into(),
            series: runs
                .iter()
                .map(|(method, rs)| Series {
                    title: method.to_string(),
                    points: STEPS
                        .iter()
                        .filter_map(|k| {
                            let v: Vec<f64> = rs
                                .iter()
                                .filter_map(|(_, r)| r.values.get(&(key.to_string(), *k)).copied())
                                .collect();
                            (!v.is_empty()).then(|| (*k as f64, mean_sd(&v).0))
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    comparison_panels(&root.join("steps.png"), &panels)?;
    let wall = Comparison {
        title: "energy distance during training (seed 0)".into(),
        x_desc: "seconds of training".into(),
        series: runs
            .iter()
            .map(|(method, rs)| Series {
                title: method.to_string(),
                points: rs[0].1.curve.clone(),
            })
            .collect(),
    };
    comparison_panels(&root.join("wallclock.png"), &[wall])?;
    // Seed 0's samples at 1 and 4 steps beside the target.
    for k in [1usize, 4] {
        let mut arrays = Vec::new();
        for method in METHODS {
            let dir = root.join(method).join("seed0");
            let file = if method == "mgm" {
                dir.join("samples.npy")
            } else {
                dir.join(format!("samples_{k}.npy"))
            };
            if method == "mgm" && k != 1 {
                continue;
            }
            // 3,000 points a panel: the shapes read as well as with 20,000, in a much smaller file.
            if let Ok(x) = midpoint::io::read_samples(&file) {
                let n = x.nrows().min(3000);
                arrays.push((method, x.slice(ndarray::s![..n, ..]).to_owned()));
            }
        }
        let Some(reference) = METHODS.iter().find_map(|m| {
            let x =
                midpoint::io::read_samples(&root.join(m).join("seed0").join("target.npy")).ok()?;
            let n = x.nrows().min(3000);
            Some(x.slice(ndarray::s![..n, ..]).to_owned())
        }) else {
            continue;
        };
        let mut ps = vec![Panel {
            title: format!("target: {}", target.name()),
            points: &reference,
        }];
        for (m, x) in &arrays {
            ps.push(Panel {
                title: format!("{m}, {k} step{}", if k == 1 { "" } else { "s" }),
                points: x,
            });
        }
        scatter_panels(&root.join(format!("panels-{k}.png")), &ps)?;
    }
    Ok(())
}
