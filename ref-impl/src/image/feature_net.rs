//! The feature network of a Fréchet distance on small image sets, where Inception does not
//! apply (8×8 grayscale digits are not natural images, and Inception's 299×299 resize of them
//! would measure interpolation artefacts).
//!
//! FID's recipe with a network of our own: a small convolutional classifier is trained **once**
//! on the training split's labels (class folders, [`crate::data::png_folder`]), and its
//! penultimate activations are the features. Its held-out accuracy is stored in the file so a
//! reader can judge it; for the digits it is ≈ 97–98% (`docs/learning.md` §3).
//!
//! Layout (`side` the image side, divisible by 4; `C` channels, `K` classes):
//!
//! | layer | output |
//! |---|---|
//! | conv 3×3, `C → 32`, SiLU | `32 × side × side` |
//! | conv 3×3 stride 2, `32 → 64`, SiLU | `64 × side/2 × side/2` |
//! | conv 3×3 stride 2, `64 → 64`, SiLU | `64 × side/4 × side/4` |
//! | linear `64·(side/4)² → 64`, SiLU: **the features** | 64 |
//! | linear `64 → K` (training only) | `K` logits |
//!
//! Training: Adam (lr 1e-3, weight decay 1e-4 as L2) on cross-entropy, batches of 128 drawn in
//! the order of [`BatchOrder`] (a function of the seed), each image shifted by a random
//! `−1..=1` pixels in each direction (black fill) so that the features do not depend on the exact
//! placement of a stroke; on the CPU with one thread the file is a function of the seed.

use crate::data::order::{derive_seed, BatchOrder};
use crate::data::ImageSet;
use crate::error::TrainError;
use crate::train::checkpoint;
use std::collections::BTreeMap;
use std::path::Path;
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// Feature width.
pub const FEATURES: i64 = 64;
/// File format tag.
pub const FORMAT: &str = "midpoint-feature-net-v1";

/// Shape of the images and number of classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FeatureNetShape {
    /// Image channels (1 or 3).
    pub channels: i64,
    /// Image side (a multiple of 4).
    pub side: i64,
    /// Classes.
    pub classes: i64,
}

/// How the network is trained.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeatureNetTraining {
    /// Optimizer steps.
    pub steps: u64,
    /// Images per step.
    pub batch: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Seed of the initialisation, batches and shifts.
    pub seed: u64,
}

impl Default for FeatureNetTraining {
    fn default() -> Self {
        FeatureNetTraining {
            steps: 3000,
            batch: 128,
            lr: 1e-3,
            weight_decay: 1e-4,
            seed: 0,
        }
    }
}

/// What the saved file says about the network.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeatureNetInfo {
    /// Shape.
    pub shape: FeatureNetShape,
    /// Training settings.
    pub training: FeatureNetTraining,
    /// Description of the training images.
    pub trained_on: String,
    /// Accuracy on the training images.
    pub train_accuracy: f64,
    /// Accuracy on the held-out images, when given.
    pub heldout_accuracy: Option<f64>,
}

/// The classifier and its variables.
#[derive(Debug)]
pub struct FeatureNet {
    vs: nn::VarStore,
    conv: [nn::Conv2D; 3],
    feat: nn::Linear,
    head: nn::Linear,
    info: FeatureNetInfo,
}

impl FeatureNet {
    fn build(vs: nn::VarStore, info: FeatureNetInfo) -> Result<Self, TrainError> {
        let s = info.shape;
        if s.side <= 0 || s.side % 4 != 0 || !(s.channels == 1 || s.channels == 3) || s.classes < 2
        {
            return Err(TrainError::InvalidOption(format!(
                "feature network needs 1 or 3 channels, a side divisible by 4 and ≥ 2 classes, got {s:?}"
            )));
        }
        let p = vs.root();
        let c = |stride| nn::ConvConfig {
            stride,
            padding: 1,
            ..Default::default()
        };
        let conv = [
            nn::conv2d(&p / "conv0", s.channels, 32, 3, c(1)),
            nn::conv2d(&p / "conv1", 32, 64, 3, c(2)),
            nn::conv2d(&p / "conv2", 64, 64, 3, c(2)),
        ];
        let flat = 64 * (s.side / 4) * (s.side / 4);
        let feat = nn::linear(&p / "feat", flat, FEATURES, Default::default());
        let head = nn::linear(&p / "head", FEATURES, s.classes, Default::default());
        Ok(FeatureNet {
            vs,
            conv,
            feat,
            head,
            info,
        })
    }

    /// Penultimate activations of `x` `[N, C, side, side]` in `[−1, 1]` (with a graph).
    fn forward_features(&self, x: &Tensor) -> Tensor {
        let h = self
            .conv
            .iter()
            .fold(x.shallow_clone(), |h, c| c.forward(&h).silu());
        self.feat.forward(&h.flatten(1, -1)).silu()
    }

    /// Features of `x` `[N, C, side, side]` in `[−1, 1]` (any device), `[N, 64]` fp32 on the
    /// network's device, computed in batches of 512 without a graph.
    pub fn features(&self, x: &Tensor) -> Result<Tensor, TrainError> {
        let s = self.info.shape;
        let size = x.size();
        if size.len() != 4 || size[1..] != [s.channels, s.side, s.side] {
            return Err(TrainError::InvalidOption(format!(
                "feature network expects [N, {}, {}, {}] images, got {size:?}",
                s.channels, s.side, s.side
            )));
        }
        let device = self.vs.device();
        let n = size[0];
        let parts: Vec<Tensor> = (0..n)
            .step_by(512)
            .map(|i| {
                let b = x
                    .narrow(0, i, 512.min(n - i))
                    .to_device(device)
                    .to_kind(Kind::Float);
                tch::no_grad(|| self.forward_features(&b))
            })
            .collect();
        Ok(Tensor::cat(&parts, 0))
    }

    /// Fraction of `set`'s images classified as their label.
    pub fn accuracy(&self, set: &ImageSet) -> Result<f64, TrainError> {
        let labels = labels_of(set)?;
        let x = set.all();
        let feats = self.features(&x)?;
        let logits = tch::no_grad(|| self.head.forward(&feats));
        let pred = logits.argmax(1, false).to_device(Device::Cpu);
        let y = Tensor::from_slice(&labels.iter().map(|&l| l as i64).collect::<Vec<_>>());
        Ok(pred
            .eq_tensor(&y)
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[]))
    }

    /// Trains the network on `train` (which must carry labels) and measures it on `heldout`.
    pub fn train(
        train: &ImageSet,
        heldout: Option<&ImageSet>,
        training: FeatureNetTraining,
        device: Device,
    ) -> Result<Self, TrainError> {
        let labels = labels_of(train)?;
        if training.steps == 0
            || training.batch == 0
            || !training.lr.is_finite()
            || training.lr <= 0.0
        {
            return Err(TrainError::InvalidOption(
                "feature network: steps, batch and lr must be positive".into(),
            ));
        }
        let size = train.images().size();
        if size[2] != size[3] {
            return Err(TrainError::InvalidOption(format!(
                "feature network needs square images, got {}x{}",
                size[3], size[2]
            )));
        }
        let classes = *labels.iter().max().unwrap_or(&0) as i64 + 1;
        let shape = FeatureNetShape {
            channels: size[1],
            side: size[2],
            classes,
        };
        tch::manual_seed(derive_seed(training.seed, FEATURE_STREAM, 0) as i64);
        let info = FeatureNetInfo {
            shape,
            training,
            trained_on: train.source().to_string(),
            train_accuracy: f64::NAN,
            heldout_accuracy: None,
        };
        let mut net = Self::build(nn::VarStore::new(device), info)?;
        let mut opt = nn::Adam {
            wd: training.weight_decay,
            ..Default::default()
        }
        .build(&net.vs, training.lr)?;
        let mut order = BatchOrder::new(train.len(), training.seed);
        let all_labels = Tensor::from_slice(&labels.iter().map(|&l| l as i64).collect::<Vec<_>>());
        for k in 0..training.steps {
            let idx = order.indices(k, training.batch);
            let x = train.batch(&idx, &vec![false; idx.len()], device);
            let x = shift(&x, derive_seed(training.seed, FEATURE_STREAM, k + 1));
            let y = all_labels
                .index_select(0, &Tensor::from_slice(&idx))
                .to_device(device);
            let loss = net
                .head
                .forward(&net.forward_features(&x))
                .cross_entropy_for_logits(&y);
            opt.backward_step(&loss);
        }
        net.info.train_accuracy = net.accuracy(train)?;
        net.info.heldout_accuracy = heldout.map(|h| net.accuracy(h)).transpose()?;
        Ok(net)
    }

    /// What the file says.
    pub fn info(&self) -> &FeatureNetInfo {
        &self.info
    }

    /// Writes the network (safetensors with its info as metadata, atomically).
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        let tensors: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect();
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), FORMAT.to_string());
        meta.insert(
            "info".to_string(),
            serde_json::to_string(&self.info)
                .map_err(|e| TrainError::InvalidOption(e.to_string()))?,
        );
        Ok(checkpoint::save(path, &tensors, &meta)?)
    }

    /// Reads a network written by [`FeatureNet::save`] (digest verified, every tensor checked).
    pub fn load(path: &Path, device: Device) -> Result<Self, TrainError> {
        let ckpt = checkpoint::load(path)?;
        let bad =
            |m: String| -> TrainError { checkpoint::CheckpointError::content(path, m).into() };
        let format = ckpt.meta(path, "format")?;
        if format != FORMAT {
            return Err(bad(format!("format {format:?}, expected {FORMAT:?} (a feature network of `midpoint-train feature-net`)")));
        }
        let info: FeatureNetInfo = serde_json::from_str(ckpt.meta(path, "info")?)
            .map_err(|e| bad(format!("info: {e}")))?;
        let mut net = Self::build(nn::VarStore::new(device), info)?;
        let vars = net.vs.variables();
        if vars.len() != ckpt.tensors.len() {
            return Err(bad(format!(
                "{} tensors, expected {}",
                ckpt.tensors.len(),
                vars.len()
            )));
        }
        for (name, v) in &vars {
            let t = ckpt.tensor(path, name)?;
            if t.size() != v.size() || t.kind() != v.kind() {
                return Err(bad(format!(
                    "{name}: {:?} {:?}, expected {:?} {:?}",
                    t.kind(),
                    t.size(),
                    v.kind(),
                    v.size()
                )));
            }
        }
        tch::no_grad(|| {
            for (name, mut v) in net.vs.variables() {
                v.copy_(&ckpt.tensors[&name]);
            }
        });
        net.vs.freeze();
        Ok(net)
    }
}

/// Stream of the feature network's random choices (distinct from the training runs').
const FEATURE_STREAM: u64 = 0xfea7;

fn labels_of(set: &ImageSet) -> Result<&[u8], TrainError> {
    set.labels().ok_or_else(|| {
        TrainError::InvalidOption(format!(
            "{}: the feature network needs labels (images in class folders DIR/0/, DIR/1/, ...)",
            set.source()
        ))
    })
}

/// Each image moved by `(dy, dx) ∈ {−1, 0, 1}²` (background −1 beyond the edge), drawn per image
/// from `seed`.
fn shift(x: &Tensor, seed: u64) -> Tensor {
    let size = x.size();
    let (n, h, w) = (size[0], size[2], size[3]);
    // Pad with the background value −1 (black), not 0 (mid-gray).
    let padded = (x + 1.0).constant_pad_nd([1, 1, 1, 1]) - 1.0;
    let mut state = seed;
    let parts: Vec<Tensor> = (0..n)
        .map(|i| {
            state = crate::data::order::splitmix64(state);
            let (dy, dx) = ((state % 3) as i64, ((state / 3) % 3) as i64);
            padded.get(i).narrow(1, dy, h).narrow(2, dx, w)
        })
        .collect();
    Tensor::stack(&parts, 0)
}
