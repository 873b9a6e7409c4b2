//! Shared test helpers: an owned event description with a proptest strategy, turned into the
//! borrowed `EventRef` the writer takes.
#![allow(dead_code)]

use ada_atf::{Event, EventRef, Lane, PayloadRef, PersistenceWindow};
use proptest::prelude::*;

/// Owned payload description.
#[derive(Clone, Debug)]
pub enum PSpec {
    Start {
        exe: String,
        args: Vec<String>,
        os: String,
        arch: String,
    },
    End(i32),
    Call {
        symbol: String,
        address: u64,
        regs: Vec<(String, u64)>,
        stack: Vec<u8>,
    },
    Return {
        symbol: String,
        address: u64,
        regs: Vec<(String, u64)>,
    },
    Signal {
        number: i32,
        name: String,
        regs: Vec<(String, u64)>,
    },
    Lost {
        lane: Lane,
        count: u64,
        cause: String,
        first_lost_ns: u64,
        last_lost_ns: u64,
    },
    Custom {
        name: String,
        data: Vec<u8>,
    },
    Window(PersistenceWindow),
    SymbolDef {
        function_id: u64,
        symbol: String,
        address: u64,
        module: String,
        file: String,
        line: u32,
    },
    ThreadDef {
        thread_id: i32,
        pid: u32,
        os_tid: u64,
        name: String,
        verified: bool,
    },
}

/// Owned event description.
#[derive(Clone, Debug)]
pub struct Spec {
    pub thread_id: i32,
    pub timestamp_ns: u64,
    pub function_id: u64,
    pub call_depth: u32,
    pub lane: Lane,
    pub payload: PSpec,
}

impl Spec {
    /// Calls `f` with the borrowed form of this event.
    pub fn with_ref<R>(&self, f: impl FnOnce(&EventRef<'_>) -> R) -> R {
        fn strs(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        fn regs(v: &[(String, u64)]) -> Vec<(&str, u64)> {
            v.iter().map(|(k, x)| (k.as_str(), *x)).collect()
        }
        let (args, r) = match &self.payload {
            PSpec::Start { args, .. } => (strs(args), Vec::new()),
            PSpec::Call { regs: x, .. }
            | PSpec::Return { regs: x, .. }
            | PSpec::Signal { regs: x, .. } => (Vec::new(), regs(x)),
            _ => (Vec::new(), Vec::new()),
        };
        let payload = match &self.payload {
            PSpec::Start { exe, os, arch, .. } => PayloadRef::TraceStart {
                executable_path: exe,
                args: &args,
                operating_system: os,
                cpu_architecture: arch,
            },
            PSpec::End(code) => PayloadRef::TraceEnd { exit_code: *code },
            PSpec::Call {
                symbol,
                address,
                stack,
                ..
            } => PayloadRef::FunctionCall {
                symbol,
                address: *address,
                argument_registers: &r,
                stack_shallow_copy: stack,
            },
            PSpec::Return {
                symbol, address, ..
            } => PayloadRef::FunctionReturn {
                symbol,
                address: *address,
                return_registers: &r,
            },
            PSpec::Signal { number, name, .. } => PayloadRef::SignalDelivery {
                number: *number,
                name,
                registers: &r,
            },
            PSpec::Lost {
                lane,
                count,
                cause,
                first_lost_ns,
                last_lost_ns,
            } => PayloadRef::EventsLost {
                lane: *lane,
                count: *count,
                cause,
                first_lost_ns: *first_lost_ns,
                last_lost_ns: *last_lost_ns,
            },
            PSpec::Custom { name, data } => PayloadRef::Custom { name, data },
            PSpec::Window(w) => PayloadRef::WindowMark(*w),
            PSpec::SymbolDef {
                function_id,
                symbol,
                address,
                module,
                file,
                line,
            } => PayloadRef::SymbolDef {
                function_id: *function_id,
                symbol,
                address: *address,
                module,
                file,
                line: *line,
            },
            PSpec::ThreadDef {
                thread_id,
                pid,
                os_tid,
                name,
                verified,
            } => PayloadRef::ThreadDef {
                thread_id: *thread_id,
                pid: *pid,
                os_tid: *os_tid,
                name,
                verified: *verified,
            },
        };
        let ev = EventRef {
            thread_id: self.thread_id,
            timestamp_ns: self.timestamp_ns,
            function_id: self.function_id,
            call_depth: self.call_depth,
            lane: self.lane,
            payload,
        };
        f(&ev)
    }

    /// The owned event the bytes must decode to, built by hand (not with `EventRef::to_event`).
    pub fn expected(&self, event_id: u64) -> Event {
        use ada_atf::schema::{self, event::Payload};
        let map = |r: &[(String, u64)]| r.iter().cloned().collect();
        let payload = match &self.payload {
            PSpec::Start {
                exe,
                args,
                os,
                arch,
            } => Payload::TraceStart(schema::TraceStart {
                executable_path: exe.clone(),
                args: args.clone(),
                operating_system: os.clone(),
                cpu_architecture: arch.clone(),
            }),
            PSpec::End(exit_code) => Payload::TraceEnd(schema::TraceEnd {
                exit_code: *exit_code,
            }),
            PSpec::Call {
                symbol,
                address,
                regs,
                stack,
            } => Payload::FunctionCall(schema::FunctionCall {
                symbol: symbol.clone(),
                address: *address,
                argument_registers: map(regs),
                stack_shallow_copy: stack.clone(),
            }),
            PSpec::Return {
                symbol,
                address,
                regs,
            } => Payload::FunctionReturn(schema::FunctionReturn {
                symbol: symbol.clone(),
                address: *address,
                return_registers: map(regs),
            }),
            PSpec::Signal { number, name, regs } => {
                Payload::SignalDelivery(schema::SignalDelivery {
                    number: *number,
                    name: name.clone(),
                    registers: map(regs),
                })
            }
            PSpec::Lost {
                lane,
                count,
                cause,
                first_lost_ns,
                last_lost_ns,
            } => Payload::EventsLost(schema::EventsLost {
                lane: match lane {
                    Lane::Index => 0,
                    Lane::Detail => 1,
                },
                count: *count,
                cause: cause.clone(),
                first_lost_ns: *first_lost_ns,
                last_lost_ns: *last_lost_ns,
            }),
            PSpec::Custom { name, data } => Payload::Custom(schema::Custom {
                name: name.clone(),
                data: data.clone(),
            }),
            PSpec::Window(w) => Payload::WindowMark(schema::WindowMark::from(*w)),
            PSpec::SymbolDef {
                function_id,
                symbol,
                address,
                module,
                file,
                line,
            } => Payload::SymbolDef(schema::SymbolDef {
                function_id: *function_id,
                symbol: symbol.clone(),
                address: *address,
                module: module.clone(),
                file: file.clone(),
                line: *line,
            }),
            PSpec::ThreadDef {
                thread_id,
                pid,
                os_tid,
                name,
                verified,
            } => Payload::ThreadDef(schema::ThreadDef {
                thread_id: *thread_id,
                pid: *pid,
                os_tid: *os_tid,
                name: name.clone(),
                verified: *verified,
            }),
        };
        Event {
            event_id,
            thread_id: self.thread_id,
            timestamp: Some(ada_atf::Timestamp {
                seconds: (self.timestamp_ns / 1_000_000_000) as i64,
                nanos: (self.timestamp_ns % 1_000_000_000) as i32,
            }),
            function_id: self.function_id,
            call_depth: self.call_depth,
            lane: match self.lane {
                Lane::Index => 0,
                Lane::Detail => 1,
            },
            payload: Some(payload),
        }
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_0-9:<>]{0,24}",
        "\\PC{0,16}",
        Just(String::new()),
        Just("ƒünçtïøn::日本語::🦀".to_owned()),
    ]
}

/// Register sets with unique names (a protobuf map keeps one value per name), in name order.
fn regs() -> impl Strategy<Value = Vec<(String, u64)>> {
    prop::collection::btree_map(
        "[a-z0-9]{0,5}",
        prop_oneof![Just(0u64), any::<u64>()],
        0..=16,
    )
    .prop_map(|m| m.into_iter().collect())
}

fn lane() -> impl Strategy<Value = Lane> {
    prop_oneof![Just(Lane::Index), Just(Lane::Detail)]
}

fn window() -> impl Strategy<Value = PersistenceWindow> {
    (
        any::<[u64; 7]>(),
        any::<bool>(),
        (any::<i32>(), any::<[u64; 4]>(), any::<Option<u32>>()),
    )
        .prop_map(
            |(v, mark_seen, (thread_id, x, trigger))| PersistenceWindow {
                window_id: v[0],
                start_ns: v[1],
                end_ns: v[2],
                first_mark_ns: v[3],
                last_event_ns: v[4],
                total_events: v[5],
                marked_events: v[6],
                mark_seen,
                thread_id,
                last_mark_ns: x[0],
                trigger,
                pre_roll_events: x[1],
                discarded_events: x[2],
                over_budget_events: x[3],
            },
        )
}

pub fn payload() -> impl Strategy<Value = PSpec> {
    prop_oneof![
        (
            text(),
            prop::collection::vec(text(), 0..=16),
            text(),
            text()
        )
            .prop_map(|(exe, args, os, arch)| PSpec::Start {
                exe,
                args,
                os,
                arch
            }),
        any::<i32>().prop_map(PSpec::End),
        (
            text(),
            any::<u64>(),
            regs(),
            prop::collection::vec(any::<u8>(), 0..=256)
        )
            .prop_map(|(symbol, address, regs, stack)| PSpec::Call {
                symbol,
                address,
                regs,
                stack
            }),
        (text(), any::<u64>(), regs()).prop_map(|(symbol, address, regs)| PSpec::Return {
            symbol,
            address,
            regs
        }),
        (any::<i32>(), text(), regs()).prop_map(|(number, name, regs)| PSpec::Signal {
            number,
            name,
            regs
        }),
        (lane(), any::<u64>(), text(), any::<u64>(), any::<u64>()).prop_map(
            |(lane, count, cause, first_lost_ns, last_lost_ns)| PSpec::Lost {
                lane,
                count,
                cause,
                first_lost_ns,
                last_lost_ns,
            }
        ),
        (text(), prop::collection::vec(any::<u8>(), 0..=512))
            .prop_map(|(name, data)| PSpec::Custom { name, data }),
        window().prop_map(PSpec::Window),
        (
            any::<u64>(),
            text(),
            any::<u64>(),
            text(),
            text(),
            any::<u32>()
        )
            .prop_map(|(function_id, symbol, address, module, file, line)| {
                PSpec::SymbolDef {
                    function_id,
                    symbol,
                    address,
                    module,
                    file,
                    line,
                }
            }),
        (
            any::<i32>(),
            any::<u32>(),
            any::<u64>(),
            text(),
            any::<bool>()
        )
            .prop_map(
                |(thread_id, pid, os_tid, name, verified)| PSpec::ThreadDef {
                    thread_id,
                    pid,
                    os_tid,
                    name,
                    verified
                }
            ),
    ]
}

pub fn spec() -> impl Strategy<Value = Spec> {
    (
        any::<i32>(),
        prop_oneof![Just(0u64), any::<u64>()],
        prop_oneof![Just(0u64), any::<u64>()],
        any::<u32>(),
        lane(),
        payload(),
    )
        .prop_map(
            |(thread_id, timestamp_ns, function_id, call_depth, lane, payload)| Spec {
                thread_id,
                timestamp_ns,
                function_id,
                call_depth,
                lane,
                payload,
            },
        )
}

/// An index-lane call/return pair stream of `n` events, for fixtures.
pub fn index_spec(i: u64) -> Spec {
    Spec {
        thread_id: (i % 4) as i32,
        timestamp_ns: 1_000_000_000 + i * 37,
        function_id: 100 + i % 50,
        call_depth: (i % 9) as u32,
        lane: Lane::Index,
        payload: if i & 1 == 0 {
            PSpec::Call {
                symbol: String::new(),
                address: 0x40_0000 + i,
                regs: Vec::new(),
                stack: Vec::new(),
            }
        } else {
            PSpec::Return {
                symbol: String::new(),
                address: 0x40_0000 + i,
                regs: Vec::new(),
            }
        },
    }
}
