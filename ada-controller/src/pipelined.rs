//! [`Pipelined`]: runs a sink on a thread of its own, so the drain thread never waits on it.
//!
//! The drain thread's job is to turn rings over quickly: a traced thread whose rings are not
//! returned in time drops events. Writing a trace can stall (the kernel throttles `write` while
//! it writes back dirty pages: 79 ms stalls measured on this project's machines, enough to
//! overflow every ring pool). With `Pipelined`, the drain thread only copies each call into a
//! typed batch (a vector of items — symbols, chunk boundaries, records — whose variable-length
//! parts go to the batch's byte arena); full batches travel through a bounded channel to the
//! sink thread, which replays them into the inner sink, and come back empty to be refilled, so
//! a steady drain allocates nothing per record or per batch.
//!
//! **Bounded memory.** A batch holds at most [`Pipelined::BATCH_BYTES`] (1 MiB: its items and
//! its arena together; only a single record larger than the arena gets a batch of its own,
//! sized to fit). The channel holds [`Pipelined::MAX_QUEUED_BYTES`] (64 MiB) of batches; with
//! the batch being filled, the next one and the one being replayed, `Pipelined` holds at most
//! `MAX_QUEUED_BYTES + 3 × BATCH_BYTES`. A stalled sink fills the channel before the drain
//! waits: 64 MiB is about 600 k index records, a fraction of a second to seconds of a busy
//! trace. When it is full, the drain waits for room (it never discards a record it accepted,
//! as before typed batches): meanwhile the traced threads' rings fill, and their pool policy
//! drops — and counts — events, as with any slow drain.
//!
//! Order is kept: symbols, threads, modules, chunk boundaries, records, losses, windows and flushes reach the
//! inner sink exactly in the order the drain produced them. A record the inner sink refuses is counted and reported by
//! [`Sink::finish`] as unwritten (the drain counted it as persisted when it was queued), and
//! the output is then not complete.

use crate::modules::Module;
use crate::report::Report;
use crate::sink::{
    ChunkInfo, LossInfo, Record, SessionInfo, Sink, SinkError, SinkOutput, ThreadInfo, WindowInfo,
};
use ada_registry::{LaneKind, SymbolSource};
use ada_ringpool::EventKind;
use ada_ringpool::record::MAX_REGISTERS;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

enum Msg {
    Begin(SessionInfo),
    Batch(Batch),
    /// Modules of a process, after the batch before them (rare: not batched).
    Modules(u32, Vec<Module>),
    Flush,
    Finish(Box<Report>),
}

/// Why the pipeline itself failed (the inner sink's own errors pass through unchanged).
#[derive(Debug, thiserror::Error)]
enum PipelineError {
    #[error("the sink already finished")]
    Finished,
    #[error("the {0} thread stopped")]
    Stopped(&'static str),
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
    #[error("the drain stopped without finishing the sink")]
    NotFinished,
    #[error("a record of {0} bytes is too large for the pipeline")]
    TooLarge(usize),
}

/// `len` bytes at `start` in a batch's arena.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

/// A [`Record`] whose registers, stack and message live in its batch's arena, one after the
/// other (registers little-endian) from `data`.
#[derive(Debug, Clone, Copy)]
struct OwnedRecord {
    kind: EventKind,
    lane: LaneKind,
    marked: bool,
    registers: u8,
    timestamp_ns: u64,
    function_id: u64,
    thread_id: u32,
    call_depth: u32,
    data: u32,
    stack_len: u32,
    message_len: u32,
}

/// One call on the sink, as the sink thread replays it.
#[derive(Debug, Clone, Copy)]
enum Item {
    Symbol {
        function_id: u64,
        address: u64,
        name: Span,
        /// The source file's bytes and the line, when the symbol has a source location.
        source: Option<(Span, u32)>,
    },
    Thread {
        thread: ThreadInfo,
        name: Option<Span>,
    },
    ChunkBegin {
        thread: ThreadInfo,
        chunk: ChunkInfo,
    },
    Record {
        thread: ThreadInfo,
        record: OwnedRecord,
    },
    ChunkEnd {
        thread: ThreadInfo,
        chunk: ChunkInfo,
    },
    /// `window` indexes the batch's `windows` (kept aside: an item stays small).
    Window {
        thread: ThreadInfo,
        window: u32,
    },
    Lost {
        thread: ThreadInfo,
        loss: LossInfo,
    },
}

/// Items in order, and the arena their variable-length parts live in.
#[derive(Debug)]
struct Batch {
    items: Vec<Item>,
    data: Vec<u8>,
    /// The windows of the batch's `Item::Window`s (at most one per item, so bounded with them).
    windows: Vec<WindowInfo>,
}

/// See [`Pipelined::MAX_QUEUED_BYTES`].
const MAX_QUEUED_BYTES: usize = 64 << 20;
/// See [`Pipelined::BATCH_BYTES`].
const BATCH_BYTES: usize = 1 << 20;
/// The arena's share of a batch (registers, stacks, messages, symbol names).
const DATA_BYTES: usize = BATCH_BYTES / 4;
/// Items a batch holds at most: the rest of the batch's bytes.
const BATCH_ITEMS: usize = (BATCH_BYTES - DATA_BYTES) / size_of::<Item>();
/// Batches the channel holds.
const QUEUE: usize = MAX_QUEUED_BYTES / BATCH_BYTES;
// A full batch stays within its budget, and an item stays small (72 bytes on 64-bit targets;
// the byte encoding that typed batches replaced took 59 bytes per index record).
const _: () = assert!(BATCH_ITEMS * size_of::<Item>() + DATA_BYTES <= BATCH_BYTES);
const _: () = assert!(size_of::<Item>() <= 80);

impl Batch {
    fn new() -> Batch {
        Batch {
            items: Vec::with_capacity(BATCH_ITEMS),
            data: Vec::new(),
            windows: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Room for one more item with `data` arena bytes (an empty batch takes anything).
    #[inline]
    fn has_room(&self, data: usize) -> bool {
        self.is_empty() || (self.items.len() < BATCH_ITEMS && self.data.len() + data <= DATA_BYTES)
    }

    /// Appends `parts` to the arena; the span of all of them. The arena is allocated on first
    /// use, at its full size (so it never grows in steps past it).
    fn put(&mut self, parts: &[&[u8]]) -> Result<Span, PipelineError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let start = self.data.len();
        let end = start
            .checked_add(len)
            .filter(|&e| u32::try_from(e).is_ok())
            .ok_or(PipelineError::TooLarge(len))?;
        if self.data.capacity() < end {
            let want = DATA_BYTES.max(end);
            self.data.reserve_exact(want - start);
        }
        for p in parts {
            self.data.extend_from_slice(p);
        }
        Ok(Span {
            start: start as u32,
            len: len as u32,
        })
    }

    fn bytes(&self, span: Span) -> &[u8] {
        let start = span.start as usize;
        &self.data[start..start + span.len as usize]
    }

    /// Empties the batch for reuse, dropping an arena grown past its budget by an oversized
    /// record.
    fn recycle(&mut self) {
        self.items.clear();
        self.data.clear();
        self.windows.clear();
        if self.data.capacity() > DATA_BYTES {
            self.data = Vec::new();
        }
    }
}

/// A sink running on its own thread (see the module docs).
#[derive(Debug)]
pub struct Pipelined<S: Sink + 'static> {
    tx: Option<SyncSender<Msg>>,
    batch: Batch,
    spare: Receiver<Batch>,
    thread: Option<JoinHandle<(S, Result<SinkOutput, SinkError>)>>,
    inner_name: &'static str,
}

impl<S: Sink + 'static> Pipelined<S> {
    /// Bytes of batches that may wait for the sink thread before the drain thread waits.
    pub const MAX_QUEUED_BYTES: usize = MAX_QUEUED_BYTES;
    /// Bytes one batch holds at most: its items and its arena (a single record too large for
    /// the arena gets a batch of its own, sized to fit).
    pub const BATCH_BYTES: usize = BATCH_BYTES;

    /// Starts `inner`'s thread.
    pub fn start(inner: S) -> std::io::Result<Pipelined<S>> {
        let (tx, rx) = sync_channel::<Msg>(QUEUE);
        let (spare_tx, spare) = sync_channel::<Batch>(QUEUE + 3);
        let thread = std::thread::Builder::new()
            .name("ada-sink".into())
            .spawn(move || run_inner(inner, &rx, &spare_tx))?;
        Ok(Pipelined {
            tx: Some(tx),
            batch: Batch::new(),
            spare,
            thread: Some(thread),
            inner_name: std::any::type_name::<S>(),
        })
    }

    fn send(&mut self, msg: Msg) -> Result<(), SinkError> {
        let tx = self.tx.as_ref().ok_or(PipelineError::Finished)?;
        tx.send(msg)
            .map_err(|_| SinkError::new(PipelineError::Stopped(self.inner_name)))
    }

    fn ship(&mut self) -> Result<(), SinkError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let fresh = self.spare.try_recv().unwrap_or_else(|_| Batch::new());
        let full = std::mem::replace(&mut self.batch, fresh);
        self.send(Msg::Batch(full))
    }

    /// Ships the current batch unless it has room for an item with `data` arena bytes.
    #[inline]
    fn room(&mut self, data: usize) -> Result<(), SinkError> {
        if !self.batch.has_room(data) {
            self.ship()?;
        }
        Ok(())
    }
}

impl From<PipelineError> for SinkError {
    fn from(e: PipelineError) -> Self {
        SinkError::new(e)
    }
}

impl<S: Sink + 'static> Sink for Pipelined<S> {
    fn begin(&mut self, session: &SessionInfo) -> Result<(), SinkError> {
        self.ship()?;
        self.send(Msg::Begin(session.clone()))
    }

    fn symbol(&mut self, function_id: u64, name: &str, address: u64) -> Result<(), SinkError> {
        self.symbol_at(function_id, name, address, None)
    }

    fn symbol_at(
        &mut self,
        function_id: u64,
        name: &str,
        address: u64,
        source: Option<SymbolSource<'_>>,
    ) -> Result<(), SinkError> {
        self.room(name.len() + source.map_or(0, |s| s.file.len()))?;
        let name = self.batch.put(&[name.as_bytes()])?;
        let source = match source {
            Some(s) => Some((self.batch.put(&[s.file.as_bytes()])?, s.line)),
            None => None,
        };
        self.batch.items.push(Item::Symbol {
            function_id,
            address,
            name,
            source,
        });
        Ok(())
    }

    fn thread(&mut self, thread: &ThreadInfo, name: Option<&str>) -> Result<(), SinkError> {
        self.room(name.map_or(0, str::len))?;
        let name = match name {
            Some(n) => Some(self.batch.put(&[n.as_bytes()])?),
            None => None,
        };
        self.batch.items.push(Item::Thread {
            thread: *thread,
            name,
        });
        Ok(())
    }

    fn modules(&mut self, pid: u32, modules: &[Module]) -> Result<(), SinkError> {
        self.ship()?;
        self.send(Msg::Modules(pid, modules.to_vec()))
    }

    fn chunk_begin(&mut self, thread: &ThreadInfo, chunk: &ChunkInfo) -> Result<(), SinkError> {
        self.room(0)?;
        self.batch.items.push(Item::ChunkBegin {
            thread: *thread,
            chunk: *chunk,
        });
        Ok(())
    }

    /// Queues `r`; registers beyond 16 are dropped (a drained record never has more).
    #[inline]
    fn record(&mut self, thread: &ThreadInfo, r: &Record<'_>) -> Result<(), SinkError> {
        let registers = &r.registers[..r.registers.len().min(MAX_REGISTERS)];
        let data = registers.len() * 8 + r.stack.len() + r.message.len();
        self.room(data)?;
        let start = if data == 0 {
            self.batch.data.len() as u32
        } else {
            let mut regs = [0u8; MAX_REGISTERS * 8];
            for (bytes, reg) in regs.chunks_exact_mut(8).zip(registers) {
                bytes.copy_from_slice(&reg.to_le_bytes());
            }
            let regs = &regs[..registers.len() * 8];
            self.batch.put(&[regs, r.stack, r.message])?.start
        };
        self.batch.items.push(Item::Record {
            thread: *thread,
            record: OwnedRecord {
                kind: r.kind,
                lane: r.lane,
                marked: r.marked,
                registers: registers.len() as u8,
                timestamp_ns: r.timestamp_ns,
                function_id: r.function_id,
                thread_id: r.thread_id,
                call_depth: r.call_depth,
                data: start,
                stack_len: r.stack.len() as u32,
                message_len: r.message.len() as u32,
            },
        });
        Ok(())
    }

    fn chunk_end(&mut self, thread: &ThreadInfo, chunk: &ChunkInfo) -> Result<(), SinkError> {
        self.room(0)?;
        self.batch.items.push(Item::ChunkEnd {
            thread: *thread,
            chunk: *chunk,
        });
        Ok(())
    }

    fn events_lost(&mut self, thread: &ThreadInfo, loss: &LossInfo) -> Result<(), SinkError> {
        self.room(0)?;
        self.batch.items.push(Item::Lost {
            thread: *thread,
            loss: *loss,
        });
        Ok(())
    }

    fn window(&mut self, thread: &ThreadInfo, window: &WindowInfo) -> Result<(), SinkError> {
        self.room(0)?;
        let index = self.batch.windows.len() as u32;
        self.batch.windows.push(*window);
        self.batch.items.push(Item::Window {
            thread: *thread,
            window: index,
        });
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.ship()?;
        self.send(Msg::Flush)
    }

    fn finish(&mut self, report: &Report) -> Result<SinkOutput, SinkError> {
        self.ship()?;
        self.send(Msg::Finish(Box::new(report.clone())))?;
        drop(self.tx.take());
        let thread = self.thread.take().ok_or(PipelineError::Finished)?;
        let (_inner, result) = thread
            .join()
            .map_err(|_| PipelineError::Panicked(self.inner_name))?;
        result
    }
}

/// The sink thread: replays batches into `inner` until `Finish`, and hands emptied batches
/// back.
fn run_inner<S: Sink>(
    mut inner: S,
    rx: &Receiver<Msg>,
    spare: &SyncSender<Batch>,
) -> (S, Result<SinkOutput, SinkError>) {
    let mut refused = 0u64;
    let mut last_error: Option<String> = None;
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Begin(session) => {
                if let Err(e) = inner.begin(&session) {
                    last_error = Some(e.to_string());
                }
            }
            Msg::Batch(mut batch) => {
                replay(&mut inner, &batch, &mut refused, &mut last_error);
                batch.recycle();
                let _ = spare.try_send(batch);
            }
            Msg::Modules(pid, modules) => {
                if let Err(e) = inner.modules(pid, &modules) {
                    last_error = Some(e.to_string());
                }
            }
            Msg::Flush => {
                if let Err(e) = inner.flush() {
                    last_error = Some(e.to_string());
                }
            }
            Msg::Finish(report) => {
                let result = inner.finish(&report).map(|mut out| {
                    out.unwritten += refused;
                    if refused > 0 {
                        out.complete = false;
                        out.error = out.error.or(last_error);
                    }
                    out
                });
                return (inner, result);
            }
        }
    }
    (inner, Err(PipelineError::NotFinished.into()))
}

/// Makes `batch`'s calls on `inner`, in order. A refused record is counted; every error's
/// message is kept (the last one is reported).
fn replay<S: Sink>(
    inner: &mut S,
    batch: &Batch,
    refused: &mut u64,
    last_error: &mut Option<String>,
) {
    let mut note = |r: Result<(), SinkError>| {
        if let Err(e) = r {
            *last_error = Some(e.to_string());
            true
        } else {
            false
        }
    };
    let mut regs = [0u64; MAX_REGISTERS];
    for item in &batch.items {
        match *item {
            Item::Symbol {
                function_id,
                address,
                name,
                source,
            } => {
                // The bytes of a `&str`: valid UTF-8, so this borrows without copying.
                let name = String::from_utf8_lossy(batch.bytes(name));
                let file =
                    source.map(|(file, line)| (String::from_utf8_lossy(batch.bytes(file)), line));
                let source = file
                    .as_ref()
                    .map(|(file, line)| SymbolSource { file, line: *line });
                // A symbol without a source was a `symbol` call: replayed as one.
                note(match source {
                    Some(_) => inner.symbol_at(function_id, &name, address, source),
                    None => inner.symbol(function_id, &name, address),
                });
            }
            Item::Thread { thread, name } => {
                let name = name.map(|n| String::from_utf8_lossy(batch.bytes(n)));
                note(inner.thread(&thread, name.as_deref()));
            }
            Item::ChunkBegin { thread, chunk } => {
                note(inner.chunk_begin(&thread, &chunk));
            }
            Item::Record { thread, record: o } => {
                let n = usize::from(o.registers);
                let data = batch.bytes(Span {
                    start: o.data,
                    len: (n * 8) as u32 + o.stack_len + o.message_len,
                });
                let (reg_bytes, rest) = data.split_at(n * 8);
                for (r, b) in regs.iter_mut().zip(reg_bytes.chunks_exact(8)) {
                    *r = u64::from_le_bytes(b.try_into().expect("8 bytes"));
                }
                let (stack, message) = rest.split_at(o.stack_len as usize);
                let record = Record {
                    kind: o.kind,
                    lane: o.lane,
                    timestamp_ns: o.timestamp_ns,
                    function_id: o.function_id,
                    thread_id: o.thread_id,
                    call_depth: o.call_depth,
                    marked: o.marked,
                    registers: &regs[..n],
                    stack,
                    message,
                };
                if note(inner.record(&thread, &record)) {
                    *refused += 1;
                }
            }
            Item::ChunkEnd { thread, chunk } => {
                note(inner.chunk_end(&thread, &chunk));
            }
            Item::Window { thread, window } => {
                if let Some(window) = batch.windows.get(window as usize) {
                    note(inner.window(&thread, window));
                }
            }
            Item::Lost { thread, loss } => {
                note(inner.events_lost(&thread, &loss));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Everything the inner sink saw, as text, in order.
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<String>>>);

    impl Log {
        fn push(&self, s: String) {
            self.0.lock().unwrap().push(s);
        }
        fn lines(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }

    /// Logs every call; refuses records whose function id is 13.
    struct Logger(Log);

    impl Sink for Logger {
        fn begin(&mut self, s: &SessionInfo) -> Result<(), SinkError> {
            self.0.push(format!("begin {}", s.pid));
            Ok(())
        }
        fn symbol(&mut self, id: u64, name: &str, address: u64) -> Result<(), SinkError> {
            self.0.push(format!("symbol {id} {name} {address:#x}"));
            Ok(())
        }
        fn symbol_at(
            &mut self,
            id: u64,
            name: &str,
            address: u64,
            source: Option<SymbolSource<'_>>,
        ) -> Result<(), SinkError> {
            self.0
                .push(format!("symbol {id} {name} {address:#x} at {source:?}"));
            Ok(())
        }
        fn thread(&mut self, t: &ThreadInfo, name: Option<&str>) -> Result<(), SinkError> {
            self.0.push(format!(
                "thread {} {} {} {} {:?}",
                t.number, t.pid, t.os_tid, t.verified, name
            ));
            Ok(())
        }
        fn chunk_begin(&mut self, t: &ThreadInfo, c: &ChunkInfo) -> Result<(), SinkError> {
            self.0.push(format!(
                "chunk {} {} ring {} marked {} seq {:?}",
                t.os_tid,
                c.lane.name(),
                c.ring,
                c.marked,
                c.seq
            ));
            Ok(())
        }
        fn record(&mut self, t: &ThreadInfo, r: &Record<'_>) -> Result<(), SinkError> {
            if r.function_id == 13 {
                return Err(SinkError::new("thirteen refused"));
            }
            self.0.push(format!(
                "record {} {:?} {} {} {} {} {} {:?} {:?} {:?} {}",
                t.os_tid,
                r.kind,
                r.lane.name(),
                r.timestamp_ns,
                r.function_id,
                r.thread_id,
                r.call_depth,
                r.registers,
                r.stack,
                String::from_utf8_lossy(r.message),
                r.marked,
            ));
            Ok(())
        }
        fn chunk_end(&mut self, t: &ThreadInfo, c: &ChunkInfo) -> Result<(), SinkError> {
            self.0.push(format!("end {} ring {}", t.os_tid, c.ring));
            Ok(())
        }
        fn window(&mut self, t: &ThreadInfo, w: &WindowInfo) -> Result<(), SinkError> {
            self.0.push(format!("window {} {w:?}", t.os_tid));
            Ok(())
        }
        fn events_lost(&mut self, t: &ThreadInfo, l: &LossInfo) -> Result<(), SinkError> {
            self.0.push(format!("lost {} {l:?}", t.os_tid));
            Ok(())
        }
        fn flush(&mut self) -> Result<(), SinkError> {
            self.0.push("flush".into());
            Ok(())
        }
        fn finish(&mut self, _: &Report) -> Result<SinkOutput, SinkError> {
            self.0.push("finish".into());
            Ok(SinkOutput::new(7))
        }
    }

    fn chunk(lane: LaneKind, ring: u32, marked: bool) -> ChunkInfo {
        ChunkInfo {
            lane,
            ring,
            marked,
            from_active: false,
            seq: Some(u64::from(ring) + 100),
            bytes: 64,
            from_fallback: false,
        }
    }

    /// Makes the same calls on `sink`; returns the lines a direct `Logger` logged.
    fn drive(sink: &mut impl Sink, records: u64) -> Vec<String> {
        let direct = Log::default();
        let mut reference = Logger(direct.clone());
        let t = ThreadInfo::new(1, 2, 3, 4);
        let regs: Vec<u64> = (0..20).collect();
        let stack = [0xAB; 40];
        let mut both = |f: &mut dyn FnMut(&mut dyn Sink)| {
            f(&mut *sink);
            f(&mut reference);
        };
        both(&mut |s| s.begin(&SessionInfo::new(99)).unwrap());
        both(&mut |s| s.symbol(1, "main", 0x1000).unwrap());
        both(&mut |s| s.thread(&t.with_number(5), Some("wörker")).unwrap());
        both(&mut |s| s.thread(&t.with_number(6), None).unwrap());
        both(&mut |s| {
            s.chunk_begin(&t, &chunk(LaneKind::Index, 0, false))
                .unwrap()
        });
        for i in 0..records {
            let mut r = Record::new(EventKind::Call, LaneKind::Index);
            r.timestamp_ns = i;
            r.function_id = i % 3;
            r.thread_id = 4;
            r.call_depth = (i % 5) as u32;
            both(&mut |s| s.record(&t, &r).unwrap());
            if i == records / 2 {
                let mut loss = LossInfo::new(LaneKind::Index, crate::LossCause::Refused, 41);
                loss.first_ns = 7;
                loss.last_ns = 9;
                both(&mut |s| s.events_lost(&t, &loss).unwrap());
            }
        }
        both(&mut |s| s.chunk_end(&t, &chunk(LaneKind::Index, 0, false)).unwrap());
        both(&mut |s| s.flush().unwrap());
        both(&mut |s| s.symbol(2, "détail", 0).unwrap());
        let at = SymbolSource {
            file: "src/spän.rs",
            line: 12,
        };
        both(&mut |s| s.symbol_at(3, "span", 0, Some(at)).unwrap());
        both(&mut |s| {
            s.chunk_begin(&t, &chunk(LaneKind::Detail, 1, true))
                .unwrap()
        });
        for i in 0..records / 10 {
            let mut r = Record::new(EventKind::Mark, LaneKind::Detail);
            r.timestamp_ns = i;
            r.function_id = 2;
            r.marked = i % 2 == 0;
            r.registers = &regs[..(i % 17) as usize];
            r.stack = &stack[..(i % 41) as usize];
            let msg = format!("mark {i}");
            r.message = msg.as_bytes();
            both(&mut |s| s.record(&t, &r).unwrap());
        }
        both(&mut |s| s.chunk_end(&t, &chunk(LaneKind::Detail, 1, true)).unwrap());
        let mut window = WindowInfo::new(3, 10, 20);
        window.trigger = Some(4);
        window.persisted = 7;
        both(&mut |s| s.window(&t, &window).unwrap());
        let out = sink.finish(&Report::default()).unwrap();
        reference.finish(&Report::default()).unwrap();
        assert!(out.complete && out.unwritten == 0, "{out:?}");
        direct.lines()
    }

    #[test]
    fn replays_every_call_in_order_across_many_batches() {
        let log = Log::default();
        let mut p = Pipelined::start(Logger(log.clone())).unwrap();
        // Enough index records for several batches, and detail records with every size of
        // register, stack and message part.
        let records = 3 * BATCH_ITEMS as u64 + 17;
        let expected = drive(&mut p, records);
        assert_eq!(log.lines(), expected);
        assert!(expected.iter().any(|l| l.contains("marked true")));
        assert!(expected.iter().any(|l| l.contains("détail")));
        assert!(
            expected.iter().any(|l| l.starts_with("symbol 3 span")
                && l.contains("src/spän.rs")
                && l.contains("line: 12")),
            "the symbol's source location was replayed"
        );
        assert!(
            expected
                .iter()
                .any(|l| l.starts_with("window") && l.contains("trigger: Some(4)")),
            "the window was replayed"
        );
        assert!(
            expected
                .iter()
                .any(|l| l.starts_with("lost") && l.contains("count: 41")),
            "the loss was replayed in place"
        );
    }

    #[test]
    fn refused_records_are_counted_as_unwritten() {
        let log = Log::default();
        let mut p = Pipelined::start(Logger(log.clone())).unwrap();
        let t = ThreadInfo::new(0, 0, 1, 1);
        for id in [1, 13, 2, 13] {
            let mut r = Record::new(EventKind::Return, LaneKind::Index);
            r.function_id = id;
            p.record(&t, &r).unwrap();
        }
        let out = p.finish(&Report::default()).unwrap();
        assert_eq!(out.unwritten, 2);
        assert!(!out.complete);
        assert_eq!(out.error.as_deref(), Some("thirteen refused"));
        assert_eq!(
            log.lines()
                .iter()
                .filter(|l| l.starts_with("record"))
                .count(),
            2
        );
        assert!(p.flush().is_err(), "finished: nothing more is accepted");
    }

    #[test]
    fn an_oversized_record_gets_a_batch_of_its_own() {
        let log = Log::default();
        let mut p = Pipelined::start(Logger(log.clone())).unwrap();
        let t = ThreadInfo::new(0, 0, 1, 1);
        let big = vec![b'x'; DATA_BYTES * 2];
        for i in 0..3 {
            let mut r = Record::new(EventKind::Message, LaneKind::Detail);
            r.function_id = i;
            r.message = if i == 1 { &big } else { b"small" };
            p.record(&t, &r).unwrap();
        }
        p.finish(&Report::default()).unwrap();
        let lines = log.lines();
        assert_eq!(lines.len(), 4, "three records and finish");
        assert!(lines[1].len() > big.len(), "the big message arrived whole");
    }
}
