//! Progress of a long export on the terminal: [`Progress`] rewrites one stderr line with the
//! share of `events.bin` read, at most [`Progress::PER_SECOND`] times a second, and only when
//! stderr is a terminal (nothing at all in pipes, files and tests).
//!
//! It knows nothing about output formats: an exporter tells it how many input bytes it has
//! read ([`Progress::update`]) and clears the line when done ([`Progress::finish`]).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A progress line on stderr (see the [module docs](self)).
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: u64,
    enabled: bool,
    /// Calls since the clock was last read (the clock is read once every [`CHECK_EVERY`]).
    calls: u32,
    last_shown: Option<Instant>,
    shown: bool,
}

/// Updates between two reads of the clock: an update per event stays cheap.
const CHECK_EVERY: u32 = 4096;

impl Progress {
    /// Most updates of the line in a second.
    pub const PER_SECOND: u32 = 4;

    /// Progress through `total` input bytes, labelled `label` (`"exporting"`), shown only
    /// when stderr is a terminal.
    pub fn on_terminal(label: &str, total: u64) -> Progress {
        Progress::new(label, total, std::io::stderr().is_terminal())
    }

    /// Progress that shows nothing.
    pub fn hidden() -> Progress {
        Progress::new("", 0, false)
    }

    fn new(label: &str, total: u64, enabled: bool) -> Progress {
        Progress {
            label: label.to_owned(),
            total,
            enabled,
            calls: 0,
            last_shown: None,
            shown: false,
        }
    }

    /// Whether anything is shown.
    pub fn is_shown(&self) -> bool {
        self.enabled
    }

    /// `done` of the total bytes are read; redraws the line when enough time has passed.
    pub fn update(&mut self, done: u64) {
        if !self.enabled {
            return;
        }
        self.calls += 1;
        if self.calls < CHECK_EVERY && self.last_shown.is_some() {
            return;
        }
        self.calls = 0;
        let now = Instant::now();
        let interval = Duration::from_secs(1) / Self::PER_SECOND;
        if self
            .last_shown
            .is_some_and(|last| now.duration_since(last) < interval)
        {
            return;
        }
        self.last_shown = Some(now);
        self.shown = true;
        let line = render(&self.label, done, self.total);
        let mut err = std::io::stderr().lock();
        // Progress is a courtesy: a failing stderr must not fail the export.
        let _ = write!(err, "\r{line}\x1b[K");
        let _ = err.flush();
    }

    /// Clears the line (if one was drawn).
    pub fn finish(&mut self) {
        if self.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
            self.shown = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `ada: exporting: 42% (1.2 GB of 2.9 GB)`.
fn render(label: &str, done: u64, total: u64) -> String {
    let percent = if total == 0 {
        100
    } else {
        (u128::from(done.min(total)) * 100 / u128::from(total)) as u64
    };
    format!(
        "ada: {label}: {percent}% ({} of {})",
        human_bytes(done),
        human_bytes(total)
    )
}

/// A byte count in B, kB, MB or GB (decimal units, one decimal).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GB", 1_000_000_000), ("MB", 1_000_000), ("kB", 1_000)];
    for (unit, size) in UNITS {
        if n >= size {
            return format!("{:.1} {unit}", n as f64 / size as f64);
        }
    }
    format!("{n} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_the_share_read() {
        assert_eq!(
            render("exporting", 1_200_000_000, 2_900_000_000),
            "ada: exporting: 41% (1.2 GB of 2.9 GB)"
        );
        assert_eq!(render("x", 5, 0), "ada: x: 100% (5 B of 0 B)");
        assert_eq!(render("x", 20, 10), "ada: x: 100% (20 B of 10 B)");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500), "1.5 kB");
    }

    #[test]
    fn hidden_progress_draws_nothing() {
        let mut p = Progress::hidden();
        p.update(1);
        assert!(!p.is_shown() && !p.shown);
    }
}
