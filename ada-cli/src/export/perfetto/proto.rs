//! The part of Perfetto's trace schema that the exporter writes, as `prost` messages defined by
//! hand (no code generator, no `protoc`).
//!
//! Every field number is the one in Perfetto's published schema (`protos/perfetto/trace/` in
//! <https://github.com/google/perfetto>, Apache-2.0); each field's comment names the file it
//! comes from. Only the fields the exporter sets are defined: a reader skips nothing it needs,
//! and the messages stay small. Where Perfetto has a `oneof` (`TrackEvent.name_field`,
//! `DebugAnnotation.value`), the members used are plain optional fields here: the exporter sets
//! at most one of them, which is the same bytes on the wire.
//!
//! `Trace` itself (`trace.proto`: `repeated TracePacket packet = 1`) is not a type: the exporter
//! streams it as one length-delimited field 1 per packet ([`write_packet`]).

use std::io::{self, Write};

use prost::Message;

/// `TracePacket.sequence_flags` (`trace_packet.proto`, enum `SequenceFlags`):
/// `SEQ_INCREMENTAL_STATE_CLEARED = 1`.
pub const SEQ_INCREMENTAL_STATE_CLEARED: u32 = 1;
/// `SEQ_NEEDS_INCREMENTAL_STATE = 2` (`trace_packet.proto`).
pub const SEQ_NEEDS_INCREMENTAL_STATE: u32 = 2;

/// `TrackEvent.Type` (`track_event/track_event.proto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum TrackEventType {
    /// `TYPE_UNSPECIFIED = 0`.
    Unspecified = 0,
    /// `TYPE_SLICE_BEGIN = 1`.
    SliceBegin = 1,
    /// `TYPE_SLICE_END = 2`.
    SliceEnd = 2,
    /// `TYPE_INSTANT = 3`.
    Instant = 3,
    /// `TYPE_COUNTER = 4`.
    Counter = 4,
}

/// `CounterDescriptor.Unit` `UNIT_COUNT = 2` (`track_event/counter_descriptor.proto`).
pub const UNIT_COUNT: i32 = 2;

/// `message TracePacket` (`trace_packet.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TracePacket {
    /// `optional uint64 timestamp = 8`: nanoseconds of the trace clock (the default clock).
    #[prost(uint64, optional, tag = "8")]
    pub timestamp: Option<u64>,
    /// `uint32 trusted_packet_sequence_id = 10` (oneof `optional_trusted_packet_sequence_id`).
    #[prost(uint32, optional, tag = "10")]
    pub trusted_packet_sequence_id: Option<u32>,
    /// `TrackEvent track_event = 11` (oneof `data`).
    #[prost(message, optional, tag = "11")]
    pub track_event: Option<TrackEvent>,
    /// `optional InternedData interned_data = 12`.
    #[prost(message, optional, tag = "12")]
    pub interned_data: Option<InternedData>,
    /// `optional uint32 sequence_flags = 13` (`SEQ_*` above).
    #[prost(uint32, optional, tag = "13")]
    pub sequence_flags: Option<u32>,
    /// `TrackDescriptor track_descriptor = 60` (oneof `data`).
    #[prost(message, optional, tag = "60")]
    pub track_descriptor: Option<TrackDescriptor>,
    /// `optional bool first_packet_on_sequence = 87`.
    #[prost(bool, optional, tag = "87")]
    pub first_packet_on_sequence: Option<bool>,
}

/// `message TrackDescriptor` (`track_event/track_descriptor.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TrackDescriptor {
    /// `optional uint64 uuid = 1`.
    #[prost(uint64, optional, tag = "1")]
    pub uuid: Option<u64>,
    /// `optional string name = 2`.
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
    /// `optional ProcessDescriptor process = 3`.
    #[prost(message, optional, tag = "3")]
    pub process: Option<ProcessDescriptor>,
    /// `optional ThreadDescriptor thread = 4`.
    #[prost(message, optional, tag = "4")]
    pub thread: Option<ThreadDescriptor>,
    /// `optional uint64 parent_uuid = 5`.
    #[prost(uint64, optional, tag = "5")]
    pub parent_uuid: Option<u64>,
    /// `optional CounterDescriptor counter = 8`.
    #[prost(message, optional, tag = "8")]
    pub counter: Option<CounterDescriptor>,
}

/// `message ProcessDescriptor` (`track_event/process_descriptor.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProcessDescriptor {
    /// `optional int32 pid = 1`.
    #[prost(int32, optional, tag = "1")]
    pub pid: Option<i32>,
    /// `repeated string cmdline = 2`.
    #[prost(string, repeated, tag = "2")]
    pub cmdline: Vec<String>,
    /// `optional string process_name = 6`.
    #[prost(string, optional, tag = "6")]
    pub process_name: Option<String>,
}

/// `message ThreadDescriptor` (`track_event/thread_descriptor.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ThreadDescriptor {
    /// `optional int32 pid = 1`.
    #[prost(int32, optional, tag = "1")]
    pub pid: Option<i32>,
    /// `optional int32 tid = 2`.
    #[prost(int32, optional, tag = "2")]
    pub tid: Option<i32>,
    /// `optional string thread_name = 5`.
    #[prost(string, optional, tag = "5")]
    pub thread_name: Option<String>,
}

/// `message CounterDescriptor` (`track_event/counter_descriptor.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct CounterDescriptor {
    /// `optional Unit unit = 3` ([`UNIT_COUNT`]).
    #[prost(int32, optional, tag = "3")]
    pub unit: Option<i32>,
}

/// `message TrackEvent` (`track_event/track_event.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TrackEvent {
    /// `repeated uint64 category_iids = 3` (interned `EventCategory`).
    #[prost(uint64, repeated, packed = "false", tag = "3")]
    pub category_iids: Vec<u64>,
    /// `repeated DebugAnnotation debug_annotations = 4`.
    #[prost(message, repeated, tag = "4")]
    pub debug_annotations: Vec<DebugAnnotation>,
    /// `optional Type type = 9`.
    #[prost(enumeration = "TrackEventType", optional, tag = "9")]
    pub r#type: Option<i32>,
    /// `uint64 name_iid = 10` (oneof `name_field`; interned `EventName`).
    #[prost(uint64, optional, tag = "10")]
    pub name_iid: Option<u64>,
    /// `optional uint64 track_uuid = 11`.
    #[prost(uint64, optional, tag = "11")]
    pub track_uuid: Option<u64>,
    /// `int64 counter_value = 30` (oneof `counter_value_field`).
    #[prost(int64, optional, tag = "30")]
    pub counter_value: Option<i64>,
    /// `uint64 source_location_iid = 34` (oneof `source_location_field`; interned
    /// `SourceLocation`): where the function the slice runs is defined.
    #[prost(uint64, optional, tag = "34")]
    pub source_location_iid: Option<u64>,
}

/// `message DebugAnnotation` (`track_event/debug_annotation.proto`): one argument.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DebugAnnotation {
    /// `uint64 name_iid = 1` (oneof `name_field`; interned `DebugAnnotationName`).
    #[prost(uint64, optional, tag = "1")]
    pub name_iid: Option<u64>,
    /// `bool bool_value = 2` (oneof `value`).
    #[prost(bool, optional, tag = "2")]
    pub bool_value: Option<bool>,
    /// `uint64 uint_value = 3` (oneof `value`).
    #[prost(uint64, optional, tag = "3")]
    pub uint_value: Option<u64>,
    /// `int64 int_value = 4` (oneof `value`).
    #[prost(int64, optional, tag = "4")]
    pub int_value: Option<i64>,
    /// `string string_value = 6` (oneof `value`).
    #[prost(string, optional, tag = "6")]
    pub string_value: Option<String>,
    /// `uint64 pointer_value = 7` (oneof `value`): shown in hex.
    #[prost(uint64, optional, tag = "7")]
    pub pointer_value: Option<u64>,
    /// `string name = 10` (oneof `name_field`, the non-interned variant).
    #[prost(string, optional, tag = "10")]
    pub name: Option<String>,
}

impl DebugAnnotation {
    fn named(name: &str) -> Self {
        DebugAnnotation {
            name: Some(name.to_owned()),
            ..DebugAnnotation::default()
        }
    }

    /// An unsigned integer argument.
    pub fn uint(name: &str, v: u64) -> Self {
        DebugAnnotation {
            uint_value: Some(v),
            ..Self::named(name)
        }
    }

    /// A signed integer argument.
    pub fn int(name: &str, v: i64) -> Self {
        DebugAnnotation {
            int_value: Some(v),
            ..Self::named(name)
        }
    }

    /// A string argument.
    pub fn string(name: &str, v: &str) -> Self {
        DebugAnnotation {
            string_value: Some(v.to_owned()),
            ..Self::named(name)
        }
    }

    /// A boolean argument.
    pub fn bool(name: &str, v: bool) -> Self {
        DebugAnnotation {
            bool_value: Some(v),
            ..Self::named(name)
        }
    }

    /// An address (shown in hex).
    pub fn pointer(name: &str, v: u64) -> Self {
        DebugAnnotation {
            pointer_value: Some(v),
            ..Self::named(name)
        }
    }
}

/// `message InternedData` (`interned_data/interned_data.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct InternedData {
    /// `repeated EventCategory event_categories = 1`.
    #[prost(message, repeated, tag = "1")]
    pub event_categories: Vec<Interned>,
    /// `repeated EventName event_names = 2`.
    #[prost(message, repeated, tag = "2")]
    pub event_names: Vec<Interned>,
    /// `repeated DebugAnnotationName debug_annotation_names = 3`.
    #[prost(message, repeated, tag = "3")]
    pub debug_annotation_names: Vec<Interned>,
    /// `repeated SourceLocation source_locations = 4`.
    #[prost(message, repeated, tag = "4")]
    pub source_locations: Vec<SourceLocation>,
}

impl InternedData {
    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.event_categories.is_empty()
            && self.event_names.is_empty()
            && self.debug_annotation_names.is_empty()
            && self.source_locations.is_empty()
    }
}

/// `message SourceLocation` (`track_event/source_location.proto`): an interned place in the
/// source.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SourceLocation {
    /// `optional uint64 iid = 1`.
    #[prost(uint64, optional, tag = "1")]
    pub iid: Option<u64>,
    /// `optional string file_name = 2`.
    #[prost(string, optional, tag = "2")]
    pub file_name: Option<String>,
    /// `optional string function_name = 3`.
    #[prost(string, optional, tag = "3")]
    pub function_name: Option<String>,
    /// `optional uint32 line_number = 4`.
    #[prost(uint32, optional, tag = "4")]
    pub line_number: Option<u32>,
}

/// `message EventName` and `message EventCategory` (`track_event/track_event.proto`) and
/// `message DebugAnnotationName` (`track_event/debug_annotation.proto`), which have the same
/// fields.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Interned {
    /// `optional uint64 iid = 1`.
    #[prost(uint64, optional, tag = "1")]
    pub iid: Option<u64>,
    /// `optional string name = 2`.
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
}

/// Writes `packet` as one `packet` field (number 1, length-delimited) of a `Trace`
/// (`trace.proto`), using `buf` as scratch space.
pub fn write_packet(w: &mut dyn Write, packet: &TracePacket, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, buf);
    packet
        .encode_length_delimited(buf)
        .map_err(|e| io::Error::other(e.to_string()))?;
    w.write_all(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packet_is_field_one_of_a_trace() {
        let p = TracePacket {
            timestamp: Some(5),
            ..TracePacket::default()
        };
        let mut out = Vec::new();
        let mut buf = Vec::new();
        write_packet(&mut out, &p, &mut buf).unwrap();
        // key (1 << 3 | 2), length 2, then timestamp: key (8 << 3 | 0) = 0x40, value 5.
        assert_eq!(out, [0x0a, 0x02, 0x40, 0x05]);
    }
}
