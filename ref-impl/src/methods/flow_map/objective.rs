//! One step's loss of every flow-map method, for any network (toy MLPs, image U-Nets): the
//! phases (a teacher first for LMD, EMD and PFMM; the diagonal first, then a widening band, for
//! self-distillation), the time draws, and the residuals of [`super::residuals`].

use super::kind::FlowMapKind;
use super::map::{self, Diagonal, TwoTime};
use super::residuals::{self, mean_square};
use super::times::{self, GammaLaw};
use crate::error::TrainError;
use crate::train::jvp::JvpRoute;
use tch::Tensor;

/// What decides a step's loss besides the networks and the data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    /// The method.
    pub kind: FlowMapKind,
    /// How JVPs are taken.
    pub route: JvpRoute,
    /// Self-distillation: steps on the diagonal alone.
    pub warmup: u64,
    /// Self-distillation: steps widening `t − s`.
    pub anneal: u64,
    /// LMD, EMD, PFMM: steps of the teacher phase.
    pub teacher_steps: u64,
    /// FMM (and PFMM's teacher): `|t − s| ≤ 1/band`; PFMM's teacher steps.
    pub band: usize,
    /// Detach the target term.
    pub stop_gradient: bool,
}

/// The networks of a step. The `_eval` views are the same weights without dropout: targets
/// built from a network (self-distillation's own diagonal, a frozen teacher) are evaluated
/// in evaluation mode, as [SD] §3 calls its teacher.
pub struct Nets<'a> {
    /// The map being trained (after any teacher phase).
    pub student: &'a dyn TwoTime,
    /// The same without dropout.
    pub student_eval: &'a dyn TwoTime,
    /// The teacher (LMD, EMD, PFMM): trained during its phase, frozen after.
    pub teacher: Option<&'a dyn TwoTime>,
    /// The teacher without dropout.
    pub teacher_eval: Option<&'a dyn TwoTime>,
}

/// One step's loss: the tensor to minimize, and the values of its two parts (diagonal,
/// map; 0 where absent).
pub struct StepLoss {
    /// What the trained network minimizes.
    pub loss: Tensor,
    /// Flow matching on the diagonal (the teacher's loss in an FM teacher phase).
    pub diagonal: f64,
    /// The map loss.
    pub map: f64,
}

impl Objective {
    /// Whether step `k` trains the teacher.
    pub fn teacher_phase(&self, k: u64) -> bool {
        self.kind.has_teacher() && k < self.teacher_steps
    }

    /// The loss of step `k` on the pairs `(x0, x1)` (`[N, ...]`, base and data).
    pub fn loss(
        &self,
        k: u64,
        nets: &Nets<'_>,
        x0: &Tensor,
        x1: &Tensor,
    ) -> Result<StepLoss, TrainError> {
        let (n, kind, device) = (x1.size()[0], x1.kind(), x1.device());
        let at = |t: &Tensor| map::per_sample(t, x0);
        let interp = |t: &Tensor| (1.0 - at(t)) * x0 + at(t) * x1;
        let i_dot = x1 - x0;
        let value = |t: &Tensor| t.double_value(&[]);
        let teacher = || {
            nets.teacher.ok_or_else(|| {
                TrainError::InvalidOption(format!("{} needs a teacher", self.kind.name()))
            })
        };
        let teacher_eval = || {
            nets.teacher_eval.ok_or_else(|| {
                TrainError::InvalidOption(format!("{} needs a teacher", self.kind.name()))
            })
        };
        let diagonal = |v: &dyn TwoTime, t: &Tensor| {
            mean_square(&residuals::diagonal(v, &interp(t), &i_dot, t))
        };
        let fmm = |v: &dyn TwoTime| -> Result<Tensor, TrainError> {
            let (s, t) = times::band(n, 1.0 / self.band as f64, kind, device);
            let (r1, r2) = residuals::fmm(v, &interp(&t), &i_dot, &s, &t, self.route)?;
            Ok(mean_square(&r1) + mean_square(&r2))
        };
        let only_map = |l: Tensor| {
            let m = value(&l);
            StepLoss {
                loss: l,
                diagonal: 0.0,
                map: m,
            }
        };
        let only_diagonal = |l: Tensor| {
            let d = value(&l);
            StepLoss {
                loss: l,
                diagonal: d,
                map: 0.0,
            }
        };
        if self.teacher_phase(k) {
            return Ok(if self.kind == FlowMapKind::Pfmm {
                only_map(fmm(teacher()?)?)
            } else {
                only_diagonal(diagonal(teacher()?, &Tensor::rand([n], (kind, device))))
            });
        }
        let student = nets.student;
        Ok(match self.kind {
            FlowMapKind::Fm => only_diagonal(diagonal(student, &Tensor::rand([n], (kind, device)))),
            FlowMapKind::Fmm => only_map(fmm(student)?),
            FlowMapKind::Lsd | FlowMapKind::Esd | FlowMapKind::PsdM | FlowMapKind::PsdU => {
                let width = times::annealed_width(k, self.warmup, self.anneal);
                let (s, t) = times::upper_triangle(n, width, kind, device);
                // The diagonal at the pair's own t ([SD] Alg. 1).
                let diag = diagonal(student, &t);
                if width == 0.0 {
                    return Ok(only_diagonal(diag));
                }
                let i_s = interp(&s);
                let own = nets.student_eval;
                let r = match self.kind {
                    FlowMapKind::Lsd => residuals::lagrangian(
                        student,
                        &Diagonal(own),
                        &i_s,
                        &s,
                        &t,
                        self.stop_gradient,
                        self.route,
                    )?,
                    FlowMapKind::Esd => {
                        let a = own.v(&i_s, &s, &s);
                        residuals::eulerian(student, &i_s, &s, &t, &a, self.route)?
                    }
                    _ => {
                        let law = if self.kind == FlowMapKind::PsdM {
                            GammaLaw::Mid
                        } else {
                            GammaLaw::Uniform
                        };
                        let g = times::gamma(law, n, kind, device);
                        residuals::semigroup_with_teacher(
                            student,
                            own,
                            &i_s,
                            &s,
                            &t,
                            &g,
                            self.stop_gradient,
                        )
                    }
                };
                let m = mean_square(&r);
                let (dv, mv) = (value(&diag), value(&m));
                StepLoss {
                    loss: diag + m,
                    diagonal: dv,
                    map: mv,
                }
            }
            FlowMapKind::Lmd | FlowMapKind::Emd | FlowMapKind::Pfmm => {
                let te = teacher_eval()?;
                let (s, t) = times::upper_triangle(n, 1.0, kind, device);
                let i_s = interp(&s);
                let r = match self.kind {
                    FlowMapKind::Lmd => residuals::lagrangian(
                        student,
                        &Diagonal(te),
                        &i_s,
                        &s,
                        &t,
                        self.stop_gradient,
                        self.route,
                    )?,
                    FlowMapKind::Emd => {
                        let a = tch::no_grad(|| te.v(&i_s, &s, &s));
                        residuals::eulerian(student, &i_s, &s, &t, &a, self.route)?
                    }
                    _ => residuals::progressive(student, te, &i_s, &s, &t, self.band),
                };
                only_map(mean_square(&r))
            }
        })
    }
}
