//! What `ada status` shows of a live thread's lane: its backpressure state, decoded from the
//! state byte the thread writes into shared memory, the states it entered, and its loss by
//! cause, with the balance the counters allow while it runs.

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
    line.push_str(&format!(
        "  written {}  lost: {}",
        counters.events_written,
        causes(&lost)
    ));
    if counters.contradicts() {
        line.push_str(&format!(
            "  (dropped counter {} differs: a rewritten segment?)",
            counters.events_dropped
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

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
