//! Telling the user how far the command got, on stderr: progress bars on a terminal,
//! one plain line per finished step otherwise (CI logs).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where progress goes.
#[derive(Clone)]
pub enum Progress {
    Bars(MultiProgress),
    Lines,
}

impl Progress {
    /// Bars when stderr is a terminal, lines otherwise.
    pub fn for_stderr() -> Self {
        if std::io::stderr().is_terminal() {
            Progress::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            Progress::Lines
        }
    }

    /// A line of its own, above any bars.
    pub fn line(&self, text: &str) {
        match self {
            Progress::Bars(bars) => {
                let _ = bars.println(format!("verdict: {text}"));
            }
            Progress::Lines => eprintln!("verdict: {text}"),
        }
    }

    /// A step of `total` units; `unit` names them in its lines ("results").
    pub fn step(&self, label: &str, total: u64, unit: &'static str) -> Step {
        let bar = match self {
            Progress::Bars(bars) => {
                let bar = bars.add(ProgressBar::new(total));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>9} [{bar:30}] {pos}/{len} {msg} ({elapsed})",
                    )
                    .expect("a valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(label.to_owned());
                bar.set_message(unit);
                bar.enable_steady_tick(Duration::from_millis(200));
                Some(bar)
            }
            Progress::Lines => None,
        };
        Step {
            bar,
            label: label.to_owned(),
            unit,
            done: 0,
        }
    }
}

/// One step's progress.
pub struct Step {
    bar: Option<ProgressBar>,
    label: String,
    unit: &'static str,
    done: u64,
}

impl Step {
    pub fn advance(&mut self, units: u64) {
        self.done += units;
        if let Some(bar) = &self.bar {
            bar.inc(units);
        }
    }

    /// Ends the step with a line saying what it did.
    pub fn finish(self, progress: &Progress) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        progress.line(&format!("{}: {} {}", self.label, self.done, self.unit));
    }
}
