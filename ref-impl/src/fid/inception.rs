//! The Inception-v3 feature extractor (FID step 4), with the input pipeline of steps 1–3.
//!
//! The TorchScript module takes float NCHW input that is already 299×299 and in the TF range
//! (it has no resize inside: any other size silently gives other features), and returns the
//! 2048-d pool features. [`Inception::features`] therefore always goes through
//! [`quantize`](super::preprocess::quantize) (for [−1, 1] input),
//! [`resize_tf_legacy`](super::resize::resize_tf_legacy) and
//! [`normalize`](super::preprocess::normalize) first.

use super::preprocess::{normalize, ImageBatch};
use super::resize::resize_tf_legacy;
use super::{weights, FidError, FEATURE_DIM, INCEPTION_SIZE};
use std::path::Path;
use tch::{CModule, Device, Kind, Tensor};

/// The loaded feature extractor on one device.
#[derive(Debug)]
pub struct Inception {
    module: CModule,
    device: Device,
}

impl Inception {
    /// Loads `path` onto `device` after checking its SHA-1 (a wrong or truncated file is
    /// refused before libtorch sees it).
    pub fn load(path: &Path, device: Device) -> Result<Self, FidError> {
        weights::verify(path, "given path")?;
        Self::load_verified(path, device)
    }

    /// Loads the weights found by [`weights::locate`] (`$MIDPOINT_INCEPTION` or the cache).
    pub fn load_default(device: Device) -> Result<Self, FidError> {
        let path = weights::locate()?;
        Self::load_verified(&path, device)
    }

    fn load_verified(path: &Path, device: Device) -> Result<Self, FidError> {
        let mut module = CModule::load_on_device(path, device)?;
        // Its batch norms are frozen in the graph; eval mode is set for any that are not.
        module.f_set_eval()?;
        Ok(Inception { module, device })
    }

    /// The device the module runs on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// The Inception input for a batch: uint8 pixels → float → TF-legacy resize to 299×299
    /// → `(v − 128)/128`, on the module's device.
    pub fn input(&self, batch: &ImageBatch) -> Result<Tensor, FidError> {
        let bytes = batch.to_bytes()?.f_to_device(self.device)?;
        let v = bytes.f_to_kind(Kind::Float)?;
        let s = INCEPTION_SIZE as usize;
        normalize(&resize_tf_legacy(&v, s, s)?)
    }

    /// Pool features `[N, 2048]` (float32, on the module's device) of a batch.
    pub fn features(&self, batch: &ImageBatch) -> Result<Tensor, FidError> {
        let x = self.input(batch)?;
        let n = x.size()[0];
        let f = tch::no_grad(|| self.module.forward_ts(&[x]))?;
        if f.size() != [n, FEATURE_DIM as i64] {
            return Err(FidError::Batch(format!(
                "the Inception module returned {:?}, expected [{n}, {FEATURE_DIM}]",
                f.size()
            )));
        }
        Ok(f)
    }
}
