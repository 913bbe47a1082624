//! The flow-map methods by name, and what each needs (`../shared/notes/flow-maps.md` §1.7, §5.2).

/// A flow-map training method (`--method`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum FlowMapKind {
    /// Flow matching of the velocity alone, sampled by Euler steps: the teacher and the "SI"
    /// row of [FMM] Table 1.
    Fm,
    /// Lagrangian self-distillation ([SD] eq. 13) plus flow matching on the diagonal.
    Lsd,
    /// Eulerian self-distillation ([SD] eq. 14, tangent `v_{s,s}`) plus the diagonal.
    Esd,
    /// Progressive self-distillation with `γ = 1/2` ([SD] eq. 23) plus the diagonal.
    PsdM,
    /// Progressive self-distillation with `γ ~ U[0, 1]` plus the diagonal.
    PsdU,
    /// Lagrangian map distillation from a flow-matching teacher ([FMM] Cor. 3.4).
    Lmd,
    /// Eulerian map distillation from a flow-matching teacher ([FMM] eq. 3.9, `b_s`).
    Emd,
    /// Direct flow map matching on the band `|t − s| ≤ 1/K` ([FMM] eq. 3.15).
    Fmm,
    /// Progressive flow map matching from a banded FMM teacher ([FMM] eq. 3.16).
    Pfmm,
}

impl FlowMapKind {
    /// Every method, in the order of the tables.
    pub const ALL: [FlowMapKind; 9] = [
        FlowMapKind::Fm,
        FlowMapKind::Lsd,
        FlowMapKind::Esd,
        FlowMapKind::PsdM,
        FlowMapKind::PsdU,
        FlowMapKind::Lmd,
        FlowMapKind::Emd,
        FlowMapKind::Fmm,
        FlowMapKind::Pfmm,
    ];

    /// The name on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            FlowMapKind::Fm => "fm",
            FlowMapKind::Lsd => "lsd",
            FlowMapKind::Esd => "esd",
            FlowMapKind::PsdM => "psd-m",
            FlowMapKind::PsdU => "psd-u",
            FlowMapKind::Lmd => "lmd",
            FlowMapKind::Emd => "emd",
            FlowMapKind::Fmm => "fmm",
            FlowMapKind::Pfmm => "pfmm",
        }
    }

    /// Whether a first phase trains a teacher: a flow-matching velocity (LMD, EMD) or a banded
    /// FMM map (PFMM).
    pub fn has_teacher(self) -> bool {
        matches!(
            self,
            FlowMapKind::Lmd | FlowMapKind::Emd | FlowMapKind::Pfmm
        )
    }

    /// Whether the flow-matching diagonal is trained with the map (self-distillation).
    pub fn self_distills(self) -> bool {
        matches!(
            self,
            FlowMapKind::Lsd | FlowMapKind::Esd | FlowMapKind::PsdM | FlowMapKind::PsdU
        )
    }

    /// The papers' stop-gradient: on the two-jump teacher of PSD ([SD] §3), nowhere else
    /// ([SD]'s checker runs train LSD and ESD without one; [FMM] writes none for LMD).
    pub fn default_stop_gradient(self) -> bool {
        matches!(self, FlowMapKind::PsdM | FlowMapKind::PsdU)
    }
}
