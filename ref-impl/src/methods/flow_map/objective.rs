//! One step's loss of every flow-map method, for any network (toy MLPs, image U-Nets): the
//! phases (a teacher first for LMD, EMD and PFMM; the diagonal first, then a widening band, for
//! self-distillation), the time draws, and the residuals of [`super::residuals`].

use super::kind::FlowMapKind;
use super::map::{self, Diagonal, TwoTime};
use super::residuals::{self, mean_square};
use super::times::{self, GammaLaw};
use crate::error::TrainError;
use crate::train::jvp::JvpRoute;
use crate::train::method::{Losses, Timing};
use crate::train::network::Network;
use tch::Tensor;

/// What decides a step's loss besides the networks and the data.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// Defaults for `kind` in a run of `steps` steps: forward-mode JVPs; self-distillation on
    /// the diagonal alone for 10% of the steps, then widening over 10% (flow-maps.md §5.5;
    /// [SD] used 3% + 3% of 160k); half the steps for a teacher; the band 1/4 ([FMM]'s
    /// `K = 4`); the papers' stop-gradients.
    pub fn new(kind: FlowMapKind, steps: u64) -> Self {
        Objective {
            kind,
            route: JvpRoute::ForwardMode,
            warmup: steps / 10,
            anneal: steps / 10,
            teacher_steps: steps / 2,
            band: 4,
            stop_gradient: kind.default_stop_gradient(),
        }
    }

    /// Refuses a band of 0, and a teacher phase that leaves no step of a `steps`-step run to
    /// the student.
    pub fn validate(&self, steps: u64) -> Result<(), TrainError> {
        if self.band == 0 {
            return Err(TrainError::InvalidOption(
                "--band must be at least 1".into(),
            ));
        }
        if self.kind.has_teacher() && self.teacher_steps >= steps {
            return Err(TrainError::InvalidOption(format!(
                "{} trains its teacher for --teacher-steps {} of --steps {}: leave steps for the student",
                self.kind.name(),
                self.teacher_steps,
                steps
            )));
        }
        Ok(())
    }

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
            _ => {
                // One pattern for both families: the map's target comes from its own diagonal
                // (self-distillation, trained beside it by flow matching, t − s widened by the
                // annealing) or from the frozen teacher (distillation, the whole triangle).
                let own = self.kind.self_distills();
                let width = if own {
                    times::annealed_width(k, self.warmup, self.anneal)
                } else {
                    1.0
                };
                let (s, t) = times::upper_triangle(n, width, kind, device);
                // The diagonal at the pair's own t ([SD] Alg. 1).
                let diag = own.then(|| diagonal(student, &t));
                if let (Some(d), true) = (&diag, width == 0.0) {
                    return Ok(only_diagonal(d.shallow_clone()));
                }
                let target = if own {
                    nets.student_eval
                } else {
                    teacher_eval()?
                };
                let i_s = interp(&s);
                let r = match self.kind {
                    FlowMapKind::Lsd | FlowMapKind::Lmd => residuals::lagrangian(
                        student,
                        &Diagonal(target),
                        &i_s,
                        &s,
                        &t,
                        self.stop_gradient,
                        self.route,
                    )?,
                    FlowMapKind::Esd | FlowMapKind::Emd => {
                        // ESD's tangent keeps its gradient ([SD] §3); a teacher's has none.
                        let a = if own {
                            target.v(&i_s, &s, &s)
                        } else {
                            tch::no_grad(|| target.v(&i_s, &s, &s))
                        };
                        residuals::eulerian(student, &i_s, &s, &t, &a, self.route)?
                    }
                    FlowMapKind::PsdM | FlowMapKind::PsdU => {
                        let law = if self.kind == FlowMapKind::PsdM {
                            GammaLaw::Mid
                        } else {
                            GammaLaw::Uniform
                        };
                        let g = times::gamma(law, n, kind, device);
                        residuals::semigroup_with_teacher(
                            student,
                            target,
                            &i_s,
                            &s,
                            &t,
                            &g,
                            self.stop_gradient,
                        )
                    }
                    _ => residuals::progressive(student, target, &i_s, &s, &t, self.band),
                };
                let m = mean_square(&r);
                match diag {
                    Some(d) => {
                        let (dv, mv) = (value(&d), value(&m));
                        StepLoss {
                            loss: d + m,
                            diagonal: dv,
                            map: mv,
                        }
                    }
                    None => only_map(m),
                }
            }
        })
    }
}

/// The losses of one step (0 for a term the step does not have).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FlowMapLosses {
    /// What was minimized.
    pub loss: f64,
    /// Flow matching on the diagonal (the teacher's loss in a teacher phase).
    pub diagonal: f64,
    /// The map loss (LSD, ..., PFMM).
    pub map: f64,
    /// Gradient norm before any clipping.
    pub grad_norm: f64,
}

impl Losses for FlowMapLosses {
    fn mean(w: &[Self]) -> Self {
        let m = |f: fn(&Self) -> f64| w.iter().map(f).sum::<f64>() / w.len() as f64;
        FlowMapLosses {
            loss: m(|l| l.loss),
            diagonal: m(|l| l.diagonal),
            map: m(|l| l.map),
            grad_norm: m(|l| l.grad_norm),
        }
    }
}

/// One line of `losses.jsonl`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FlowMapLine {
    /// 0-based step.
    pub step: u64,
    /// `teacher` or `student`.
    pub phase: &'static str,
    /// The losses.
    #[serde(flatten)]
    pub losses: FlowMapLosses,
    /// Seconds of the step.
    pub step_seconds: f64,
}

/// The columns of `losses.csv` and panels of `losses.png`.
pub const LOSS_FIELDS: [(&str, &str); 4] = [
    ("loss", "loss"),
    ("diagonal", "flow matching (diagonal)"),
    ("map", "map loss"),
    ("grad_norm", "gradient norm"),
];

impl FlowMapLine {
    /// The line of step `step` of a run with `objective`.
    pub fn new(objective: &Objective, step: u64, losses: &FlowMapLosses, timing: Timing) -> Self {
        FlowMapLine {
            step,
            phase: if objective.teacher_phase(step) {
                "teacher"
            } else {
                "student"
            },
            losses: *losses,
            step_seconds: timing.step_seconds,
        }
    }
}

/// The networks a flow-map step updates: the map and, for LMD, EMD and PFMM, its teacher.
pub struct Maps<N> {
    /// The map.
    pub student: Network<N>,
    /// The teacher.
    pub teacher: Option<Network<N>>,
}

/// What one step did besides its losses.
pub struct Stepped {
    /// The losses.
    pub losses: FlowMapLosses,
    /// Whether the map (not the teacher) was updated.
    pub student_updated: bool,
    /// Whether the teacher's weights were just copied into the map (PFMM at the end of the
    /// teacher phase, [FMM] §3.5).
    pub handed_over: bool,
}

impl<N> Maps<N> {
    /// Step `k` on `(x0, x1)`: the loss of `objective` with the networks seen through `view`
    /// (`view(net, train)`: with dropout when `train`), a refusal of a non-finite loss (nothing
    /// is updated then), the update of the teacher in its phase or of the map after it, and
    /// PFMM's hand-over.
    pub fn step(
        &mut self,
        objective: &Objective,
        k: u64,
        x0: &Tensor,
        x1: &Tensor,
        clip: Option<f64>,
        view: &dyn for<'a> Fn(&'a N, bool) -> Box<dyn TwoTime + 'a>,
    ) -> Result<Stepped, TrainError> {
        let teacher_phase = objective.teacher_phase(k);
        // A frozen teacher needs no parameter gradients (LMD's loss reaches it through its
        // input only): freezing it saves their backward pass.
        if !teacher_phase {
            if let Some(t) = self.teacher.as_mut() {
                t.vs.freeze();
            }
        }
        let (student, student_eval) = (
            view(&self.student.net, true),
            view(&self.student.net, false),
        );
        let teacher = self
            .teacher
            .as_ref()
            .map(|t| (view(&t.net, true), view(&t.net, false)));
        let nets = Nets {
            student: student.as_ref(),
            student_eval: student_eval.as_ref(),
            teacher: teacher.as_ref().map(|t| t.0.as_ref()),
            teacher_eval: teacher.as_ref().map(|t| t.1.as_ref()),
        };
        let StepLoss {
            loss,
            diagonal,
            map,
        } = objective.loss(k, &nets, x0, x1)?;
        let total = loss.double_value(&[]);
        if !total.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                which: "flow-map loss",
                value: total,
                step: k as usize,
            });
        }
        drop((student, student_eval, teacher));
        let grad_norm = match (teacher_phase, self.teacher.as_mut()) {
            (true, Some(t)) => t.update(&loss, clip)?,
            _ => self.student.update(&loss, clip)?,
        };
        let handed_over = objective.kind == FlowMapKind::Pfmm && k + 1 == objective.teacher_steps;
        if handed_over {
            if let Some(t) = &self.teacher {
                tch::no_grad(|| self.student.vs.copy(&t.vs))?;
            }
        }
        Ok(Stepped {
            losses: FlowMapLosses {
                loss: total,
                diagonal,
                map,
                grad_norm,
            },
            student_updated: !teacher_phase,
            handed_over,
        })
    }
}
