//! Progress of an estimate, reported to the caller's callback between units of work:
//! tuning, fitting the critics of Prop. 3.3, held-out terms, and the test.

/// Stages reported to a progress callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Choosing hyperparameters.
    Tuning,
    /// Fitting the critics (first pass over the pairs).
    Fitting,
    /// Evaluating held-out terms (second pass).
    Evaluating,
    /// Randomization test.
    Testing,
}

impl Stage {
    /// Short label.
    pub fn label(&self) -> &'static str {
        match self {
            Stage::Tuning => "tuning",
            Stage::Fitting => "fitting critics",
            Stage::Evaluating => "held-out terms",
            Stage::Testing => "test",
        }
    }
}

/// A progress update: `done` of `total` units of `stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Stage.
    pub stage: Stage,
    /// Units done.
    pub done: u64,
    /// Units in the stage.
    pub total: u64,
}
