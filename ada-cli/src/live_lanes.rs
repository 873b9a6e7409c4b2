//! What `ada status` shows of a live thread's lane: its backpressure state, decoded from the
//! state byte the thread writes into shared memory, the states it entered, what it spilled to
//! the shared fallback ring, and its loss by cause, with the balance the counters allow while it
//! runs; and of the segment's shared fallback ring: its capacity, fill and counters.

use ada_backpressure::LaneState;
use ada_registry::{LaneCounters, LaneStateWord};

use crate::summary::{causes, entries_text};

/// The state byte as a name: `NORMAL`, `PRESSURE`, `DROPPING`, `RECOVERY`, or `unknown(N)`
/// for a byte no state has (the segment is another process's to write).
pub fn state_name(byte: u8) -> String {
    match LaneState::from_u8(byte) {
        Some(state) => state.name().to_owned(),
        None => format!("unknown({byte})"),
    }
}

/// One lane of a live thread: `LANE  state S [entered …]  written W  lost: …`. The thread is
/// still writing, so only `written` and the losses are known here (persisted and discarded
/// are the drain's, in the trace); `dropped` is checked against its causes.
pub fn lane_line(lane: &str, counters: &LaneCounters, word: &LaneStateWord) -> String {
    let lost = counters.lost();
    let entries = word.entries.map(u64::from);
    let mut line = format!("        {lane:<7} state {}", state_name(word.state));
    if entries[1..].iter().any(|&n| n > 0) {
        line.push_str(&format!(" (entered {})", entries_text(&entries)));
    }
    line.push_str(&format!("  written {}", counters.events_written));
    if counters.spilled > 0 {
        line.push_str(&format!("  spilled {}", counters.spilled));
    }
    line.push_str(&format!("  lost: {}", causes(&lost)));
    if counters.contradicts() {
        line.push_str(&format!(
            "  (dropped counter {} differs: a rewritten segment?)",
            counters.events_dropped
        ));
    }
    line
}

/// The shared fallback ring, one line: `fallback ring: F/C records (head H, tail T); refused R,
/// late L`. `None` when the segment has no fallback ring. The words are read live and are
/// another process's to write: the fill is a clamped difference.
pub fn fallback_line(ring: Option<&ada_registry::FallbackRef<'_>>) -> String {
    let Some(ring) = ring else {
        return "  fallback ring: none in this segment".to_owned();
    };
    let (head, tail) = ring.positions();
    format!(
        "  fallback ring: {}/{} records queued (head {head}, tail {tail}); refused {}, late {}",
        ring.fill(),
        ring.capacity(),
        ring.refused(),
        ring.late()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_line_shows_capacity_fill_and_counters() {
        use ada_registry::{FallbackRecord, HeapFallback, LaneKind};
        let mut heap = HeapFallback::new(4);
        let (ring, _consumer) = heap.split();
        let rec = FallbackRecord {
            pid: 1,
            tid: 2,
            lane: LaneKind::Index,
            payload: [0; 4],
        };
        for _ in 0..5 {
            let _ = ring.push(&rec);
        }
        assert_eq!(
            fallback_line(Some(&ring)),
            "  fallback ring: 4/4 records queued (head 0, tail 4); refused 1, late 0"
        );
        assert_eq!(fallback_line(None), "  fallback ring: none in this segment");
    }

    #[test]
    fn a_spilling_lane_shows_its_spilled_count() {
        let counters = LaneCounters {
            events_written: 9,
            spilled: 4,
            ..LaneCounters::default()
        };
        let word = LaneStateWord::default();
        assert!(
            lane_line("index", &counters, &word).contains("written 9  spilled 4  lost: none"),
            "{}",
            lane_line("index", &counters, &word)
        );
    }

    #[test]
    fn states_decode_and_unknown_bytes_are_named() {
        assert_eq!(state_name(0), "NORMAL");
        assert_eq!(state_name(2), "DROPPING");
        assert_eq!(state_name(200), "unknown(200)");
    }

    #[test]
    fn a_lane_line_shows_state_entries_and_loss_by_cause() {
        let counters = LaneCounters {
            events_written: 50,
            events_dropped: 12,
            overwritten: 0,
            refused: 10,
            too_large: 2,
            ..LaneCounters::default()
        };
        let word = LaneStateWord {
            state: 2,
            since_ns: 7,
            entries: [0, 1, 1, 0],
        };
        assert_eq!(
            lane_line("index", &counters, &word),
            "        index   state DROPPING (entered PRESSURE 1x, DROPPING 1x)  written 50  \
             lost: refused 10, too_large 2"
        );
        let quiet = LaneStateWord {
            state: 9,
            since_ns: 0,
            entries: [0; 4],
        };
        let mut bad = counters;
        bad.events_dropped = 3;
        assert_eq!(
            lane_line("detail", &bad, &quiet),
            "        detail  state unknown(9)  written 50  lost: refused 10, too_large 2  \
             (dropped counter 3 differs: a rewritten segment?)"
        );
    }
}
