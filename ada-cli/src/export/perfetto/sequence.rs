//! The one packet sequence the Perfetto exporter writes: packets streamed to the output as they
//! are made, the sequence's flags, and the interning of event names and categories.
//!
//! - Every packet carries [`SEQUENCE_ID`] as its `trusted_packet_sequence_id`.
//! - The first packet sets `SEQ_INCREMENTAL_STATE_CLEARED` and `first_packet_on_sequence`; the
//!   state is never cleared again (the file is written whole, nothing is dropped between
//!   packets), so interned ids stay valid to the end.
//! - A packet whose event refers to interned data sets `SEQ_NEEDS_INCREMENTAL_STATE`, and
//!   carries the new entries (`InternedData`) in the same packet that first uses them: an id is
//!   always defined before (or in) its first use.
//!
//! Event names, categories and argument (debug annotation) names are interned: each distinct
//! string is written once, with its id, and referred to by the id after that. So are the
//! source locations of functions that have one (a `tracing` span's file and line), one per
//! function id ([`Sequence::source`]), written with the first event that refers to it.
//!
//! Memory: the interning tables, one entry per distinct string or located function.

use std::collections::HashMap;
use std::io::{self, Write};

use super::proto::{
    DebugAnnotation, Interned, InternedData, SEQ_INCREMENTAL_STATE_CLEARED,
    SEQ_NEEDS_INCREMENTAL_STATE, SourceLocation, TracePacket, TrackDescriptor, TrackEvent,
    TrackEventType, write_packet,
};

/// The `trusted_packet_sequence_id` of every packet.
pub const SEQUENCE_ID: u32 = 1;

/// A track's uuid: `kind` (process, thread, ...) and `key` mixed (splitmix64), never 0 (the
/// implicit global track). Stable: the same trace always gets the same uuids.
pub fn track_uuid(kind: u64, key: u64) -> u64 {
    let mut z = kind
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(key)
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    z.max(1)
}

/// One event on a track (see [`Sequence::event`]).
pub struct Ev<'a> {
    /// Trace-clock nanoseconds.
    pub ts: u64,
    /// The track's uuid.
    pub track: u64,
    /// Begin, end or instant.
    pub kind: TrackEventType,
    /// The event's name (interned); `None` for a slice end.
    pub name: Option<&'a str>,
    /// Its category (interned); `None` for a slice end.
    pub category: Option<&'static str>,
    /// Its arguments.
    pub args: Vec<DebugAnnotation>,
    /// The interned source location of the function it runs ([`Sequence::source`]).
    pub source: Option<u64>,
}

/// The sequence being written (see the [module docs](self)).
pub struct Sequence<'w> {
    w: &'w mut dyn Write,
    buf: Vec<u8>,
    names: HashMap<String, u64>,
    categories: HashMap<&'static str, u64>,
    arg_names: HashMap<String, u64>,
    /// Function id to the iid of its source location (`None`: it has none), so each call
    /// after a function's first costs one lookup.
    sources: HashMap<u64, Option<u64>>,
    /// Source locations interned but not yet written: they go with the next event.
    new_sources: Vec<SourceLocation>,
    /// Source locations interned so far (the last iid given).
    located: u64,
    started: bool,
    /// Packets written.
    pub packets: u64,
}

impl<'w> Sequence<'w> {
    /// A sequence written to `w`.
    pub fn new(w: &'w mut dyn Write) -> Self {
        Sequence {
            w,
            buf: Vec::with_capacity(256),
            names: HashMap::new(),
            categories: HashMap::new(),
            arg_names: HashMap::new(),
            sources: HashMap::new(),
            new_sources: Vec::new(),
            located: 0,
            started: false,
            packets: 0,
        }
    }

    /// Distinct event names interned.
    pub fn interned_names(&self) -> usize {
        self.names.len()
    }

    /// The iid of the source location of function `function_id` (named `name`): what `at`
    /// gives at the function's first call (asked once per function: the trace's definitions
    /// precede their first use), interned then; `None` when the function has no location.
    /// Pass the iid to the next [`Sequence::event`], which writes a new entry in its packet.
    pub fn source<'n>(
        &mut self,
        function_id: u64,
        name: &str,
        at: impl FnOnce() -> Option<&'n ada_atf::SourceLocation>,
    ) -> Option<u64> {
        if let Some(&iid) = self.sources.get(&function_id) {
            return iid;
        }
        let iid = at().map(|at| {
            self.located += 1;
            self.new_sources.push(SourceLocation {
                iid: Some(self.located),
                file_name: Some(at.file.clone()),
                function_name: Some(name.to_owned()),
                line_number: Some(at.line),
            });
            self.located
        });
        self.sources.insert(function_id, iid);
        iid
    }

    fn write(&mut self, mut p: TracePacket, needs_state: bool) -> io::Result<()> {
        p.trusted_packet_sequence_id = Some(SEQUENCE_ID);
        let mut flags = if needs_state {
            SEQ_NEEDS_INCREMENTAL_STATE
        } else {
            0
        };
        if !self.started {
            self.started = true;
            flags |= SEQ_INCREMENTAL_STATE_CLEARED;
            p.first_packet_on_sequence = Some(true);
        }
        if flags != 0 {
            p.sequence_flags = Some(flags);
        }
        write_packet(self.w, &p, &mut self.buf)?;
        self.packets += 1;
        Ok(())
    }

    /// Writes a track descriptor.
    pub fn describe(&mut self, d: TrackDescriptor) -> io::Result<()> {
        let p = TracePacket {
            track_descriptor: Some(d),
            ..TracePacket::default()
        };
        self.write(p, false)
    }

    /// Writes one event, interning its name and category (new entries go in the same packet).
    pub fn event(&mut self, mut ev: Ev<'_>) -> io::Result<()> {
        let mut interned = InternedData {
            source_locations: std::mem::take(&mut self.new_sources),
            ..InternedData::default()
        };
        for arg in &mut ev.args {
            let Some(name) = arg.name.take() else {
                continue;
            };
            let iid = match self.arg_names.get(&name) {
                Some(&iid) => iid,
                None => {
                    let iid = self.arg_names.len() as u64 + 1;
                    interned.debug_annotation_names.push(Interned {
                        iid: Some(iid),
                        name: Some(name.clone()),
                    });
                    self.arg_names.insert(name, iid);
                    iid
                }
            };
            arg.name_iid = Some(iid);
        }
        let name_iid = ev.name.map(|name| match self.names.get(name) {
            Some(&iid) => iid,
            None => {
                let iid = self.names.len() as u64 + 1;
                self.names.insert(name.to_owned(), iid);
                interned.event_names.push(Interned {
                    iid: Some(iid),
                    name: Some(name.to_owned()),
                });
                iid
            }
        });
        let category_iids = match ev.category {
            None => Vec::new(),
            Some(cat) => {
                let next = self.categories.len() as u64 + 1;
                let iid = *self.categories.entry(cat).or_insert_with(|| {
                    interned.event_categories.push(Interned {
                        iid: Some(next),
                        name: Some(cat.to_owned()),
                    });
                    next
                });
                vec![iid]
            }
        };
        let needs_state = name_iid.is_some()
            || !category_iids.is_empty()
            || !ev.args.is_empty()
            || ev.source.is_some()
            || !interned.is_empty();
        let p = TracePacket {
            timestamp: Some(ev.ts),
            interned_data: (!interned.is_empty()).then_some(interned),
            track_event: Some(TrackEvent {
                category_iids,
                debug_annotations: ev.args,
                r#type: Some(ev.kind as i32),
                name_iid,
                track_uuid: Some(ev.track),
                counter_value: None,
                source_location_iid: ev.source,
            }),
            ..TracePacket::default()
        };
        self.write(p, needs_state)
    }

    /// Writes a value of the counter track `track`.
    pub fn counter(&mut self, ts: u64, track: u64, value: i64) -> io::Result<()> {
        let p = TracePacket {
            timestamp: Some(ts),
            track_event: Some(TrackEvent {
                r#type: Some(TrackEventType::Counter as i32),
                track_uuid: Some(track),
                counter_value: Some(value),
                ..TrackEvent::default()
            }),
            ..TracePacket::default()
        };
        self.write(p, false)
    }
}
