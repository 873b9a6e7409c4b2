//! What part of a trace an export writes: [`Selection`] (`--from`, `--to`, `--threads`), for
//! every exporter whatever its output format.
//!
//! Times are offsets from the trace's start (`1.5s`, `250ms`, `10us`, `100ns`: [`parse_offset`]),
//! turned into absolute trace-clock times by [`Selection::window`] once the exporter knows where
//! the trace starts (the manifest's `minEventTimestampNs`, else the stream's first timestamp).
//! Threads are given by id or by name ([`parse_threads`]).
//!
//! This module only decides what is in or out; what an exporter does at the edges (a slice that
//! crosses `--from` or `--to` is cut there, marked as cut) belongs to the exporter.

use std::fmt;

/// A bad `--from`, `--to` or `--threads` value, or a selection that selects nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// A time that is not a number followed by a unit.
    #[error(
        "bad time {0:?}: give a number and a unit, e.g. 1.5s, 250ms, 10us or 100ns (from the trace's start)"
    )]
    BadTime(String),
    /// A time beyond what 64-bit nanoseconds hold.
    #[error("time {0:?} is too large")]
    TimeTooLarge(String),
    /// An empty item in a thread list.
    #[error("bad thread list {0:?}: give thread ids or names separated by commas, e.g. 1,2,5")]
    BadThreads(String),
    /// `--to` is not after `--from`.
    #[error("--to ({to}) must be after --from ({from})")]
    EmptyRange {
        /// `--from`, as given.
        from: String,
        /// `--to`, as given.
        to: String,
    },
}

/// Nanoseconds in each accepted unit (longest suffixes first, so `ms` is not read as `s`).
const UNITS: [(&str, u128); 5] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
];

/// Parses a time offset: a decimal number and a unit (`s`, `ms`, `us` or `µs`, `ns`), e.g.
/// `1.5s`, `250ms`, `10us`, `100ns`, into nanoseconds (digits finer than a nanosecond are
/// dropped). No sign, no exponent, no bare number.
pub fn parse_offset(text: &str) -> Result<u64, SelectError> {
    let bad = || SelectError::BadTime(text.to_owned());
    let s = text.trim();
    let (number, scale) = UNITS
        .iter()
        .find_map(|(unit, scale)| s.strip_suffix(unit).map(|n| (n.trim_end(), *scale)))
        .ok_or_else(bad)?;
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(frac) {
        return Err(bad());
    }
    let too_large = || SelectError::TimeTooLarge(text.to_owned());
    let mut ns: u128 = 0;
    for b in whole.bytes() {
        ns = ns
            .checked_mul(10)
            .and_then(|n| n.checked_add(u128::from(b - b'0')))
            .filter(|n| *n <= u128::from(u64::MAX))
            .ok_or_else(too_large)?;
    }
    ns = ns.checked_mul(scale).ok_or_else(too_large)?;
    // The fraction: each digit is worth a tenth of the one before it.
    let mut place = scale;
    for b in frac.bytes() {
        place /= 10;
        if place == 0 {
            break;
        }
        ns += u128::from(b - b'0') * place;
    }
    u64::try_from(ns).map_err(|_| too_large())
}

/// One thread of `--threads`: an id, or a name (anything that is not an integer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadSel {
    /// A thread id (the trace's `thread_id`).
    Id(i32),
    /// A thread name, matched exactly.
    Name(String),
}

impl fmt::Display for ThreadSel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThreadSel::Id(id) => write!(f, "{id}"),
            ThreadSel::Name(name) => write!(f, "{name}"),
        }
    }
}

/// Parses a comma-separated thread list: ids (`1,2,5`) or names (`main,worker-3`), mixed freely.
pub fn parse_threads(text: &str) -> Result<Vec<ThreadSel>, SelectError> {
    text.split(',')
        .map(str::trim)
        .map(|item| match item {
            "" => Err(SelectError::BadThreads(text.to_owned())),
            _ => Ok(item
                .parse::<i32>()
                .map_or_else(|_| ThreadSel::Name(item.to_owned()), ThreadSel::Id)),
        })
        .collect()
}

/// The part of a trace an export writes: a time range relative to the trace's start, and a
/// set of threads. The default selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Start of the range, in ns after the trace's start (`--from`).
    pub from_ns: Option<u64>,
    /// End of the range, in ns after the trace's start (`--to`).
    pub to_ns: Option<u64>,
    /// The threads (`--threads`); empty selects every thread.
    pub threads: Vec<ThreadSel>,
}

/// A selection's time range in trace-clock nanoseconds: `from_ns..=to_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First time in range.
    pub from_ns: u64,
    /// Last time in range.
    pub to_ns: u64,
}

impl Window {
    /// Whether `ts_ns` is in the range (both ends included).
    pub fn contains(&self, ts_ns: u64) -> bool {
        (self.from_ns..=self.to_ns).contains(&ts_ns)
    }
}

impl Selection {
    /// A selection from the command line's texts (`--from`, `--to`, `--threads`), checked:
    /// `--to` must be after `--from`.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        threads: Option<&str>,
    ) -> Result<Selection, SelectError> {
        let from_ns = from.map(parse_offset).transpose()?;
        let to_ns = to.map(parse_offset).transpose()?;
        if let (Some(f), Some(t)) = (from_ns, to_ns)
            && t <= f
        {
            return Err(SelectError::EmptyRange {
                from: from.unwrap_or_default().to_owned(),
                to: to.unwrap_or_default().to_owned(),
            });
        }
        let threads = threads.map(parse_threads).transpose()?.unwrap_or_default();
        Ok(Selection {
            from_ns,
            to_ns,
            threads,
        })
    }

    /// Whether this selects the whole trace.
    pub fn is_all(&self) -> bool {
        self.from_ns.is_none() && self.to_ns.is_none() && self.threads.is_empty()
    }

    /// Whether a time range was given.
    pub fn has_range(&self) -> bool {
        self.from_ns.is_some() || self.to_ns.is_some()
    }

    /// The time range for a trace that starts at `origin_ns` (saturating at the clock's end).
    pub fn window(&self, origin_ns: u64) -> Window {
        Window {
            from_ns: origin_ns.saturating_add(self.from_ns.unwrap_or(0)),
            to_ns: self.to_ns.map_or(u64::MAX, |t| origin_ns.saturating_add(t)),
        }
    }

    /// Whether thread `thread_id`, named `name` if it has a name, is selected.
    pub fn selects_thread(&self, thread_id: i32, name: Option<&str>) -> bool {
        self.threads.is_empty()
            || self.threads.iter().any(|t| match t {
                ThreadSel::Id(id) => *id == thread_id,
                ThreadSel::Name(n) => name == Some(n.as_str()),
            })
    }

    /// The share of a trace of `threads` threads lasting `duration_ns` that this selects, by
    /// time and by thread count (1.0 when unknown): for size estimates.
    pub fn fraction(&self, duration_ns: Option<u64>, threads: Option<usize>) -> f64 {
        let mut share = 1.0;
        if let Some(d) = duration_ns.filter(|d| *d > 0 && self.has_range()) {
            let from = self.from_ns.unwrap_or(0).min(d);
            let to = self.to_ns.unwrap_or(d).min(d);
            share *= to.saturating_sub(from) as f64 / d as f64;
        }
        if let Some(n) = threads.filter(|n| *n > 0 && !self.threads.is_empty()) {
            share *= (self.threads.len().min(n)) as f64 / n as f64;
        }
        share
    }
}

impl fmt::Display for Selection {
    /// `from 1500000000ns to 2000000000ns after the trace's start, threads 1,2`; `everything`
    /// for the whole trace.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return write!(f, "everything");
        }
        let mut range = Vec::new();
        if let Some(from) = self.from_ns {
            range.push(format!("from {from}ns"));
        }
        if let Some(to) = self.to_ns {
            range.push(format!("to {to}ns"));
        }
        let mut parts = Vec::new();
        if !range.is_empty() {
            parts.push(format!("{} after the trace's start", range.join(" ")));
        }
        if !self.threads.is_empty() {
            let list: Vec<String> = self.threads.iter().map(ToString::to_string).collect();
            parts.push(format!("threads {}", list.join(",")));
        }
        write!(f, "{}", parts.join(", "))
    }
}

/// The command line's selection flags, for every `ada export` format (flatten into the
/// subcommand with `#[command(flatten)]`, then [`SelectArgs::selection`]).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SelectArgs {
    /// Export only events at or after this time from the trace's start (e.g. 1.5s, 250ms,
    /// 10us, 100ns); slices open then start here, marked as cut.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Export only events up to this time from the trace's start; slices still open end here,
    /// marked as cut.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Export only these threads: ids or names, separated by commas (e.g. 1,2,5).
    #[arg(long, value_name = "LIST")]
    pub threads: Option<String>,
}

impl SelectArgs {
    /// The selection the flags describe, or why they are wrong.
    pub fn selection(&self) -> Result<Selection, SelectError> {
        Selection::parse(
            self.from.as_deref(),
            self.to.as_deref(),
            self.threads.as_deref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_take_a_number_and_a_unit() {
        assert_eq!(parse_offset("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_offset("250ms"), Ok(250_000_000));
        assert_eq!(parse_offset("10us"), Ok(10_000));
        assert_eq!(parse_offset("10µs"), Ok(10_000));
        assert_eq!(parse_offset("100ns"), Ok(100));
        assert_eq!(parse_offset("0s"), Ok(0));
        assert_eq!(parse_offset(".5ms"), Ok(500_000));
        assert_eq!(parse_offset("2 s"), Ok(2_000_000_000));
        assert_eq!(parse_offset("1.0000000009s"), Ok(1_000_000_000));
        for bad in [
            "", "s", "1", "1.5", "-1s", "1e3ms", "1.2.3s", "abc", "1h", ".s",
        ] {
            assert!(
                matches!(parse_offset(bad), Err(SelectError::BadTime(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_offset("99999999999999999999s"),
            Err(SelectError::TimeTooLarge(_))
        ));
    }

    #[test]
    fn threads_are_ids_or_names() {
        assert_eq!(
            parse_threads("1, 2,main"),
            Ok(vec![
                ThreadSel::Id(1),
                ThreadSel::Id(2),
                ThreadSel::Name("main".into())
            ])
        );
        assert!(parse_threads("1,,2").is_err());
        assert!(parse_threads("").is_err());
        let s = Selection::parse(None, None, Some("3,worker")).unwrap();
        assert!(s.selects_thread(3, None));
        assert!(s.selects_thread(9, Some("worker")));
        assert!(!s.selects_thread(9, Some("main")));
        assert!(Selection::default().selects_thread(9, None));
    }

    #[test]
    fn a_range_must_not_be_empty_and_becomes_a_window() {
        assert!(matches!(
            Selection::parse(Some("2s"), Some("1s"), None),
            Err(SelectError::EmptyRange { .. })
        ));
        let s = Selection::parse(Some("1us"), Some("3us"), None).unwrap();
        let w = s.window(10_000);
        assert_eq!((w.from_ns, w.to_ns), (11_000, 13_000));
        assert!(w.contains(11_000) && w.contains(13_000) && !w.contains(13_001));
        assert_eq!(Selection::default().window(5).to_ns, u64::MAX);
        assert!((s.fraction(Some(10_000), None) - 0.2).abs() < 1e-9);
        assert_eq!(Selection::default().fraction(Some(10), Some(4)), 1.0);
        assert_eq!(
            s.to_string(),
            "from 1000ns to 3000ns after the trace's start"
        );
        let t = Selection::parse(None, None, Some("1,main")).unwrap();
        assert_eq!(t.to_string(), "threads 1,main");
    }
}
