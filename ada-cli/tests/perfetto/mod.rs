//! An independent decoder of `ada export --perfetto` output for the tests: Perfetto's own schema
//! (trimmed copies in `tests/perfetto_protos/`) parsed by `protobuf-parse` (pure Rust) and
//! decoded with `protobuf`'s dynamic messages, sharing nothing with the exporter's `prost` types.
//! [`Decoded::check`] then replays the packets as a trace reader does (sequence flags, interned
//! names, track descriptors, slice stacks) and fails on anything a reader would reject.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use protobuf::MessageDyn;
use protobuf::reflect::{MessageDescriptor, ReflectValueRef};

const CLEARED: u32 = 1;
const NEEDS: u32 = 2;

/// `perfetto.protos.Trace`, from the vendored schema.
pub fn trace_descriptor() -> MessageDescriptor {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/perfetto_protos");
    let input = root.join("protos/perfetto/trace/trace.proto");
    let parsed = protobuf_parse::Parser::new()
        .pure()
        .include(&root)
        .input(&input)
        .parse_and_typecheck()
        .expect("Perfetto's schema parses");
    let files = protobuf::reflect::FileDescriptor::new_dynamic_fds(parsed.file_descriptors, &[])
        .expect("Perfetto's schema builds");
    files
        .iter()
        .find_map(|f| f.message_by_full_name(".perfetto.protos.Trace"))
        .expect("perfetto.protos.Trace")
}

/// One track descriptor.
#[derive(Clone, Debug, Default)]
pub struct Track {
    pub uuid: u64,
    pub parent: Option<u64>,
    pub name: Option<String>,
    pub process: Option<(i32, Option<String>, Vec<String>)>,
    /// pid, tid, thread_name.
    pub thread: Option<(i32, i32, Option<String>)>,
    pub counter: bool,
}

/// One track event, its name and categories resolved.
#[derive(Clone, Debug)]
pub struct TrackEvent {
    pub packet: usize,
    pub ts: u64,
    pub kind: String,
    pub track: u64,
    pub name: Option<String>,
    pub categories: Vec<String>,
    pub counter: Option<i64>,
    /// Debug annotations, values as text (pointers as `0x…`).
    pub args: BTreeMap<String, String>,
    /// The interned source location it refers to: file, line, function name.
    pub source: Option<(String, u32, String)>,
}

/// A slice, begin and end matched by replaying its track's stack.
#[derive(Clone, Debug)]
pub struct Slice {
    pub track: u64,
    pub name: String,
    pub begin: u64,
    pub end: u64,
    pub depth: usize,
    /// The begin's and the end's arguments merged (as a trace reader merges them).
    pub args: BTreeMap<String, String>,
}

/// A decoded export.
#[derive(Debug, Default)]
pub struct Decoded {
    pub packets: usize,
    pub tracks: HashMap<u64, Track>,
    pub events: Vec<TrackEvent>,
    pub slices: Vec<Slice>,
}

impl Decoded {
    pub fn instants(&self, name: &str) -> Vec<&TrackEvent> {
        self.events
            .iter()
            .filter(|e| e.kind == "TYPE_INSTANT" && e.name.as_deref() == Some(name))
            .collect()
    }

    pub fn slices_named(&self, name: &str) -> Vec<&Slice> {
        self.slices.iter().filter(|s| s.name == name).collect()
    }

    /// The thread track of (pid, tid).
    pub fn thread_track(&self, pid: i32, tid: i32) -> &Track {
        let found: Vec<&Track> = self
            .tracks
            .values()
            .filter(|t| matches!(t.thread, Some((p, t, _)) if p == pid && t == tid))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one track for thread {pid}/{tid}: {found:?}"
        );
        found[0]
    }

    pub fn track_named(&self, name: &str) -> Vec<&Track> {
        self.tracks
            .values()
            .filter(|t| t.name.as_deref() == Some(name))
            .collect()
    }
}

fn get<'a>(m: &'a dyn MessageDyn, name: &str) -> Option<ReflectValueRef<'a>> {
    let d = m.descriptor_dyn();
    let f = d
        .field_by_name(name)
        .unwrap_or_else(|| panic!("{} has no field {name}", d.full_name()));
    f.get_singular(m)
}

fn u64_of(v: Option<ReflectValueRef<'_>>) -> Option<u64> {
    match v? {
        ReflectValueRef::U64(x) => Some(x),
        ReflectValueRef::U32(x) => Some(x.into()),
        other => panic!("not an unsigned integer: {other:?}"),
    }
}

fn i64_of(v: Option<ReflectValueRef<'_>>) -> Option<i64> {
    match v? {
        ReflectValueRef::I64(x) => Some(x),
        ReflectValueRef::I32(x) => Some(x.into()),
        other => panic!("not a signed integer: {other:?}"),
    }
}

fn str_of(v: Option<ReflectValueRef<'_>>) -> Option<String> {
    match v? {
        ReflectValueRef::String(s) => Some(s.to_owned()),
        other => panic!("not a string: {other:?}"),
    }
}

fn msg_of<'a>(m: &'a dyn MessageDyn, name: &str) -> Option<protobuf::reflect::MessageRef<'a>> {
    match get(m, name)? {
        ReflectValueRef::Message(r) => Some(r),
        other => panic!("{name} is not a message: {other:?}"),
    }
}

fn each_msg<'a>(m: &'a dyn MessageDyn, name: &str) -> Vec<protobuf::reflect::MessageRef<'a>> {
    let f = m.descriptor_dyn().field_by_name(name).expect(name);
    f.get_repeated(m)
        .into_iter()
        .map(|v| match v {
            ReflectValueRef::Message(r) => r,
            other => panic!("{name} holds {other:?}"),
        })
        .collect()
}

/// Fails when `m` or any message in it holds a field Perfetto's schema does not define.
fn no_unknown_fields(m: &dyn MessageDyn, path: &str) {
    let unknown: Vec<u32> = m.unknown_fields_dyn().iter().map(|(n, _)| n).collect();
    assert!(
        unknown.is_empty(),
        "{path} ({}) has fields not in Perfetto's schema: {unknown:?}",
        m.descriptor_dyn().full_name()
    );
    for f in m.descriptor_dyn().fields() {
        if f.is_repeated() {
            for v in f.get_repeated(m) {
                if let ReflectValueRef::Message(r) = v {
                    no_unknown_fields(&*r, &format!("{path}.{}", f.name()));
                }
            }
        } else if let Some(ReflectValueRef::Message(r)) = f.get_singular(m) {
            no_unknown_fields(&*r, &format!("{path}.{}", f.name()));
        }
    }
}

fn annotation(a: &dyn MessageDyn, names: &HashMap<u64, String>) -> (String, String) {
    let name = match (u64_of(get(a, "name_iid")), str_of(get(a, "name"))) {
        (Some(iid), None) => names
            .get(&iid)
            .unwrap_or_else(|| panic!("debug annotation name iid {iid} not defined before use"))
            .clone(),
        (None, Some(name)) => name,
        other => panic!("a debug annotation's name: {other:?}"),
    };
    let value = if let Some(v) = u64_of(get(a, "uint_value")) {
        v.to_string()
    } else if let Some(v) = i64_of(get(a, "int_value")) {
        v.to_string()
    } else if let Some(v) = str_of(get(a, "string_value")) {
        v
    } else if let Some(v) = u64_of(get(a, "pointer_value")) {
        format!("0x{v:x}")
    } else if let Some(ReflectValueRef::Bool(b)) = get(a, "bool_value") {
        b.to_string()
    } else {
        panic!("debug annotation {name} has no value this test reads")
    };
    (name, value)
}

/// Decodes `bytes` as a Perfetto `Trace` and checks it as a reader would:
///
/// - the whole file is one `Trace` with no field outside Perfetto's schema;
/// - every packet is on one nonzero sequence; the first clears the incremental state
///   (`SEQ_INCREMENTAL_STATE_CLEARED`, `first_packet_on_sequence`); every packet using interned
///   data says so (`SEQ_NEEDS_INCREMENTAL_STATE`);
/// - every interned id is defined (once, never redefined) in or before the packet using it;
/// - every event's track was described before it, and a descriptor's parent before it;
/// - on each track, events sorted by time (stable) open and close slices as a stack: no end
///   without a begin, no begin left open, no end before its begin.
pub fn decode(bytes: &[u8]) -> Decoded {
    let trace_md = trace_descriptor();
    let trace = trace_md
        .parse_from_bytes(bytes)
        .expect("the export decodes as perfetto.protos.Trace");
    no_unknown_fields(&*trace, "Trace");
    let packets = each_msg(&*trace, "packet");
    assert!(!packets.is_empty(), "no packets");

    let mut out = Decoded {
        packets: packets.len(),
        ..Decoded::default()
    };
    let mut names: HashMap<u64, String> = HashMap::new();
    let mut categories: HashMap<u64, String> = HashMap::new();
    let mut arg_names: HashMap<u64, String> = HashMap::new();
    let mut sources: HashMap<u64, (String, u32, String)> = HashMap::new();
    let mut sequence = None;
    for (i, p) in packets.iter().enumerate() {
        let p: &dyn MessageDyn = &**p;
        let seq = u64_of(get(p, "trusted_packet_sequence_id")).expect("a sequence id");
        assert_ne!(seq, 0, "packet {i}: sequence id 0 is invalid");
        assert_eq!(
            *sequence.get_or_insert(seq),
            seq,
            "packet {i}: one sequence"
        );
        let flags = u64_of(get(p, "sequence_flags")).unwrap_or(0) as u32;
        let first = matches!(
            get(p, "first_packet_on_sequence"),
            Some(ReflectValueRef::Bool(true))
        );
        if i == 0 {
            assert_ne!(
                flags & CLEARED,
                0,
                "the first packet clears the incremental state"
            );
            assert!(first, "the first packet says it is first");
        } else {
            assert_eq!(
                flags & CLEARED,
                0,
                "packet {i}: the state is cleared only once"
            );
            assert!(!first, "packet {i} is not the first");
        }
        if let Some(d) = msg_of(p, "interned_data") {
            assert_ne!(flags & NEEDS, 0, "packet {i} carries interned data");
            for (field, table) in [
                ("event_names", &mut names),
                ("event_categories", &mut categories),
                ("debug_annotation_names", &mut arg_names),
            ] {
                for e in each_msg(&*d, field) {
                    let iid = u64_of(get(&*e, "iid")).expect("an interned entry's iid");
                    assert_ne!(iid, 0, "iid 0 is invalid");
                    let name = str_of(get(&*e, "name")).expect("an interned entry's name");
                    if let Some(old) = table.insert(iid, name.clone()) {
                        panic!("packet {i}: {field} iid {iid} redefined ({old:?} -> {name:?})");
                    }
                }
            }
            for e in each_msg(&*d, "source_locations") {
                let iid = u64_of(get(&*e, "iid")).expect("a source location's iid");
                assert_ne!(iid, 0, "iid 0 is invalid");
                let at = (
                    str_of(get(&*e, "file_name")).expect("a source location's file"),
                    u64_of(get(&*e, "line_number")).expect("a source location's line") as u32,
                    str_of(get(&*e, "function_name")).expect("a source location's function"),
                );
                if let Some(old) = sources.insert(iid, at.clone()) {
                    panic!("packet {i}: source location iid {iid} redefined ({old:?} -> {at:?})");
                }
            }
        }
        if let Some(d) = msg_of(p, "track_descriptor") {
            let d: &dyn MessageDyn = &*d;
            let uuid = u64_of(get(d, "uuid")).expect("a track's uuid");
            let parent = u64_of(get(d, "parent_uuid"));
            if let Some(parent) = parent {
                assert!(
                    out.tracks.contains_key(&parent),
                    "packet {i}: parent {parent} described first"
                );
            }
            let process = msg_of(d, "process").map(|pd| {
                let cmdline = pd
                    .descriptor_dyn()
                    .field_by_name("cmdline")
                    .unwrap()
                    .get_repeated(&*pd)
                    .into_iter()
                    .map(|v| v.to_string())
                    .collect();
                (
                    i64_of(get(&*pd, "pid")).expect("a process's pid") as i32,
                    str_of(get(&*pd, "process_name")),
                    cmdline,
                )
            });
            let thread = msg_of(d, "thread").map(|td| {
                (
                    i64_of(get(&*td, "pid")).expect("a thread's pid") as i32,
                    i64_of(get(&*td, "tid")).expect("a thread's tid") as i32,
                    str_of(get(&*td, "thread_name")),
                )
            });
            let track = Track {
                uuid,
                parent,
                name: str_of(get(d, "name")),
                process,
                thread,
                counter: msg_of(d, "counter").is_some(),
            };
            // Described again (a name learnt later): the latest wins, as in a trace reader.
            out.tracks.insert(uuid, track);
        }
        if let Some(e) = msg_of(p, "track_event") {
            let e: &dyn MessageDyn = &*e;
            let ts = u64_of(get(p, "timestamp")).expect("an event's timestamp");
            let kind = match get(e, "type") {
                Some(ReflectValueRef::Enum(d, v)) => d
                    .value_by_number(v)
                    .unwrap_or_else(|| panic!("packet {i}: unknown event type {v}"))
                    .name()
                    .to_owned(),
                other => panic!("packet {i}: event type {other:?}"),
            };
            let track = u64_of(get(e, "track_uuid")).expect("an event's track");
            assert!(
                out.tracks.contains_key(&track),
                "packet {i}: track {track} described before use"
            );
            let name = u64_of(get(e, "name_iid")).map(|iid| {
                assert_ne!(flags & NEEDS, 0, "packet {i} uses interned names");
                names
                    .get(&iid)
                    .unwrap_or_else(|| panic!("packet {i}: name iid {iid} not defined before use"))
                    .clone()
            });
            let cat_field = e.descriptor_dyn().field_by_name("category_iids").unwrap();
            let cats: Vec<String> = cat_field
                .get_repeated(e)
                .into_iter()
                .map(|v| {
                    assert_ne!(flags & NEEDS, 0, "packet {i} uses interned categories");
                    let iid = u64_of(Some(v)).unwrap();
                    categories
                        .get(&iid)
                        .unwrap_or_else(|| panic!("packet {i}: category iid {iid} not defined"))
                        .clone()
                })
                .collect();
            let source = u64_of(get(e, "source_location_iid")).map(|iid| {
                assert_ne!(
                    flags & NEEDS,
                    0,
                    "packet {i} uses interned source locations"
                );
                sources
                    .get(&iid)
                    .unwrap_or_else(|| panic!("packet {i}: source location iid {iid} not defined"))
                    .clone()
            });
            let annotations = each_msg(e, "debug_annotations");
            if !annotations.is_empty() {
                assert_ne!(flags & NEEDS, 0, "packet {i} uses interned argument names");
            }
            let args = annotations
                .iter()
                .map(|a| annotation(&**a, &arg_names))
                .collect();
            out.events.push(TrackEvent {
                packet: i,
                ts,
                kind,
                track,
                name,
                categories: cats,
                counter: i64_of(get(e, "counter_value")),
                args,
                source,
            });
        }
    }
    out.slices = replay_slices(&out.events);
    out
}

/// Each track's events sorted by time (stable) and replayed as a stack.
fn replay_slices(events: &[TrackEvent]) -> Vec<Slice> {
    let mut by_track: BTreeMap<u64, Vec<&TrackEvent>> = BTreeMap::new();
    for e in events {
        if e.kind == "TYPE_SLICE_BEGIN" || e.kind == "TYPE_SLICE_END" {
            by_track.entry(e.track).or_default().push(e);
        }
    }
    let mut slices = Vec::new();
    for (track, mut evs) in by_track {
        evs.sort_by_key(|e| e.ts);
        let mut stack: Vec<&TrackEvent> = Vec::new();
        for e in evs {
            if e.kind == "TYPE_SLICE_BEGIN" {
                assert!(
                    e.name.is_some(),
                    "packet {}: a slice begin has a name",
                    e.packet
                );
                stack.push(e);
                continue;
            }
            let begin = stack.pop().unwrap_or_else(|| {
                panic!(
                    "packet {}: a slice end with no slice open on track {track}",
                    e.packet
                )
            });
            assert!(
                e.ts >= begin.ts,
                "packet {}: ends before it begins",
                e.packet
            );
            let mut args = begin.args.clone();
            args.extend(e.args.clone());
            slices.push(Slice {
                track,
                name: begin.name.clone().unwrap(),
                begin: begin.ts,
                end: e.ts,
                depth: stack.len(),
                args,
            });
        }
        assert!(
            stack.is_empty(),
            "track {track}: slices left open: {:?}",
            stack.iter().map(|e| &e.name).collect::<Vec<_>>()
        );
    }
    slices.sort_by_key(|s| (s.track, s.begin, s.depth));
    slices
}
