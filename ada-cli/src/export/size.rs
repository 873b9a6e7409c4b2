//! How large an export will be, said before it is written: [`SizeEstimate`] from the trace's
//! counts (the manifest's `eventCount`, else `events.bin`'s size), the [`Selection`] and the
//! output format's bytes per event, and [`SizeEstimate::warning`] when that is more than the
//! viewers of the format load.
//!
//! The estimate is rough (a selection is assumed to take its share of the trace's time and
//! threads evenly); it is for a warning, never for refusing to export.

use ada_atf::Manifest;

use super::progress::human_bytes;
use super::select::Selection;

/// Bytes of `events.bin` per event, for traces without a manifest (an index-lane call or
/// return is about 20 bytes; detail-lane events are larger).
pub const ATF_BYTES_PER_EVENT: u64 = 24;

/// How many events an export writes and how many bytes, about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeEstimate {
    /// Events of the trace the selection keeps.
    pub events: u64,
    /// Bytes of output.
    pub bytes: u64,
}

impl SizeEstimate {
    /// The estimate for `selection` of a trace with `manifest` (if any) and an `events.bin` of
    /// `events_bin_len` bytes, in a format writing about `bytes_per_event` bytes per event.
    pub fn of_trace(
        manifest: Option<&Manifest>,
        events_bin_len: u64,
        selection: &Selection,
        bytes_per_event: u64,
    ) -> SizeEstimate {
        let events = manifest
            .map(|m| m.event_count)
            .filter(|n| *n > 0)
            .unwrap_or(events_bin_len / ATF_BYTES_PER_EVENT);
        let duration = manifest.and_then(|m| {
            let (min, max) = (m.min_event_timestamp_ns?, m.max_event_timestamp_ns?);
            Some(max.saturating_sub(min))
        });
        let threads = manifest.map(|m| m.threads.len()).filter(|n| *n > 0);
        let share = selection.fraction(duration, threads);
        let events = (events as f64 * share) as u64;
        SizeEstimate {
            events,
            bytes: events.saturating_mul(bytes_per_event),
        }
    }

    /// A warning when the estimate is above `limit` bytes, the most that the viewers of the
    /// format (`format`, e.g. "Chrome JSON") load; `hint` says what to do instead.
    pub fn warning(&self, limit: u64, format: &str, hint: &str) -> Option<String> {
        (self.bytes > limit).then(|| {
            format!(
                "the {format} export will be about {} ({} events), more than viewers load (about {}): {hint}",
                human_bytes(self.bytes),
                self.events,
                human_bytes(limit)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_scale_with_the_selection_and_warn_above_the_limit() {
        let all = SizeEstimate::of_trace(None, 2_400, &Selection::default(), 100);
        assert_eq!(
            all,
            SizeEstimate {
                events: 100,
                bytes: 10_000
            }
        );
        assert!(all.warning(10_000, "Chrome JSON", "use less").is_none());
        let w = all.warning(9_999, "Chrome JSON", "use less").unwrap();
        assert!(w.contains("10.0 kB") && w.contains("use less"), "{w}");
        let threads = Selection::parse(None, None, Some("1")).unwrap();
        // No manifest: the thread count is unknown, so the estimate stays whole.
        assert_eq!(
            SizeEstimate::of_trace(None, 2_400, &threads, 100).events,
            100
        );
    }
}
