//! Progress bars (indicatif) for long work; drawn on stderr only when it is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar, or nothing (tests, `--quiet`, stderr not a terminal).
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar of `len` steps with a label; hidden when `show` is false.
    pub fn new(len: u64, label: &str, show: bool) -> Self {
        let bar = if show {
            ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        Progress { bar }
    }

    /// A bar that draws nothing.
    pub fn hidden() -> Self {
        Progress {
            bar: ProgressBar::hidden(),
        }
    }

    /// Restarts the bar for another stage of `len` steps.
    pub fn stage(&self, len: u64, label: &str) {
        self.bar.set_length(len);
        self.bar.set_position(0);
        self.bar.set_prefix(label.to_string());
        self.bar.set_message("");
    }

    /// Shows `pos` of `len` steps of the stage `label` (for work that reports its own
    /// progress, like the core crate's estimator).
    pub fn at(&self, label: &str, pos: u64, len: u64) {
        self.bar.set_prefix(label.to_string());
        self.bar.set_length(len);
        self.bar.set_position(pos);
    }

    /// Advances by one step.
    pub fn inc(&self) {
        self.bar.inc(1);
    }

    /// Sets the trailing message (e.g. current losses).
    pub fn message(&self, msg: String) {
        self.bar.set_message(msg);
    }

    /// Prints one line on stderr above the bar (always, even when the bar is hidden: warnings
    /// must reach `--quiet` runs too).
    pub fn warn(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
