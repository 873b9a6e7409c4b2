//! [`TraceSink`]: the default sink, an ATF v4 trace written by one thread while one or several
//! drain workers map and encode the events (see its docs), and [`BlockSink`], a worker's sink.

use crate::atf_sink::{
    AtfSink, SymbolMap, index_event, loss_payload, persistence_window, ring_record, session_thread,
    symbol_def,
};
use crate::modules::Module;
use crate::pipelined::Pipelined;
use crate::report::Report;
use crate::sink::{
    ChunkInfo, LossInfo, Record, SessionInfo, Sink, SinkError, SinkOutput, ThreadInfo, WindowInfo,
};
use ada_atf::{BlockEncoder, EncodedBlock, EventRef, PayloadRef, RecordMapper, SymbolEntry};
use ada_registry::SymbolSource;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Bytes of encoded events a worker's block holds before it is shipped.
pub const BLOCK_BYTES: usize = 256 << 10;
/// Bytes of blocks that may wait for the writer thread before a worker waits.
pub const MAX_QUEUED_BYTES: usize = 64 << 20;
/// Blocks the channel holds.
const QUEUE: usize = MAX_QUEUED_BYTES / BLOCK_BYTES;

/// What the workers (and the coordinator) send the writer thread.
enum ToWriter {
    Begin(SessionInfo),
    /// A block of worker `.0` (its emptied block goes back to that worker).
    Block(usize, EncodedBlock),
    /// Modules of a process (for the manifest).
    Modules(u32, Vec<Module>),
    Flush,
    /// The merged report and every worker's symbols.
    Finish(Box<Report>, Vec<SymbolEntry>),
}

/// Why the merged writer failed (the trace writer's own errors pass through unchanged).
#[derive(Debug, thiserror::Error)]
enum MergeError {
    #[error("the trace writer thread stopped")]
    Stopped,
    #[error("the trace writer thread panicked")]
    Panicked,
    #[error("the trace was already finished")]
    Finished,
    #[error("the drain stopped without finishing the trace")]
    NotFinished,
}

impl From<MergeError> for SinkError {
    fn from(e: MergeError) -> Self {
        SinkError::new(e)
    }
}

/// A drain worker's sink: maps and encodes the worker's events into blocks for the merged
/// writer (see [`TraceSink`]).
#[derive(Debug)]
pub struct BlockSink {
    worker: usize,
    encoder: BlockEncoder,
    mapper: RecordMapper,
    symbols: SymbolMap,
    tx: SyncSender<ToWriter>,
    /// Blocks the writer emptied, back for reuse.
    spare: Receiver<EncodedBlock>,
}

impl BlockSink {
    /// Sends the block being filled to the writer (nothing if it is empty).
    fn ship(&mut self) -> Result<(), SinkError> {
        if self.encoder.is_empty() {
            return Ok(());
        }
        let spare = self.spare.try_recv().unwrap_or_default();
        let block = self.encoder.take(spare);
        self.tx
            .send(ToWriter::Block(self.worker, block))
            .map_err(|_| MergeError::Stopped.into())
    }

    #[inline]
    fn put(&mut self, event: &EventRef<'_>) -> Result<(), SinkError> {
        self.encoder.write(event).map_err(SinkError::new)?;
        self.ship_if_full()
    }

    #[inline]
    fn ship_if_full(&mut self) -> Result<(), SinkError> {
        if self.encoder.len() >= BLOCK_BYTES {
            self.ship()?;
        }
        Ok(())
    }
}

impl Sink for BlockSink {
    /// The writer thread begins the trace: nothing to do here.
    fn begin(&mut self, _session: &SessionInfo) -> Result<(), SinkError> {
        Ok(())
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
        self.symbols.insert(function_id, name, address, source);
        let now = ada_shm::clock::MonotonicClock::read();
        self.put(&symbol_def(now, function_id, name, address, source))
    }

    /// Written and shipped at once: the definition reaches the stream before any worker's
    /// events of the thread.
    fn thread(&mut self, thread: &ThreadInfo, name: Option<&str>) -> Result<(), SinkError> {
        let now = ada_shm::clock::MonotonicClock::read();
        let def = EventRef::thread_def(
            now,
            session_thread(thread),
            thread.pid,
            thread.os_tid,
            name.unwrap_or(""),
            thread.verified,
        );
        self.encoder.write(&def).map_err(SinkError::new)?;
        self.ship()
    }

    /// Straight to the writer thread: modules go to the manifest, not the stream.
    fn modules(&mut self, pid: u32, modules: &[Module]) -> Result<(), SinkError> {
        self.tx
            .send(ToWriter::Modules(pid, modules.to_vec()))
            .map_err(|_| MergeError::Stopped.into())
    }

    fn chunk_begin(&mut self, _: &ThreadInfo, _: &ChunkInfo) -> Result<(), SinkError> {
        Ok(())
    }

    /// As [`AtfSink`] encodes it: index-shaped records through the one-pass index encoder,
    /// the others through the mapper.
    #[inline]
    fn record(&mut self, thread: &ThreadInfo, record: &Record<'_>) -> Result<(), SinkError> {
        if let Some(event) = index_event(thread, record, &self.symbols) {
            self.encoder.write_index(&event).map_err(SinkError::new)?;
        } else {
            let record = ring_record(thread, record);
            let event = self.mapper.map(&record, &self.symbols);
            self.encoder.write(&event).map_err(SinkError::new)?;
        }
        self.ship_if_full()
    }

    fn events_lost(&mut self, thread: &ThreadInfo, loss: &LossInfo) -> Result<(), SinkError> {
        self.put(&EventRef::new(
            session_thread(thread),
            loss.at_ns,
            loss_payload(loss),
        ))
    }

    fn window(&mut self, thread: &ThreadInfo, window: &WindowInfo) -> Result<(), SinkError> {
        let w = persistence_window(thread, window);
        let event = EventRef::new(w.thread_id, w.start_ns, PayloadRef::WindowMark(w));
        let written = self.encoder.write(&event).map_err(SinkError::new);
        // To window_metadata.jsonl and the manifest even if the event could not be encoded.
        self.encoder.write_window(&w);
        written.and_then(|()| self.ship_if_full())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.ship()?;
        self.tx
            .send(ToWriter::Flush)
            .map_err(|_| MergeError::Stopped.into())
    }

    /// Ships what is left; the writer thread finishes the trace ([`TraceSink`]'s `finish`).
    fn finish(&mut self, _report: &Report) -> Result<SinkOutput, SinkError> {
        self.ship()?;
        Ok(SinkOutput::default())
    }
}

/// The merged writer: the `ada-sink` thread and what the coordinator keeps of it.
#[derive(Debug)]
struct Merged {
    tx: Option<SyncSender<ToWriter>>,
    thread: Option<JoinHandle<Result<SinkOutput, SinkError>>>,
    /// Per worker, the receiving end of its spare blocks, until its [`BlockSink`] is made.
    spares: Vec<Option<Receiver<EncodedBlock>>>,
    /// The coordinator's own sink (worker index `workers`), for calls made on the
    /// [`TraceSink`] itself.
    own: Option<BlockSink>,
    /// Symbols of the workers' sinks, collected at the end.
    symbols: Vec<SymbolEntry>,
}

/// The default sink: an ATF v4 trace written by one thread (`ada-sink`).
///
/// With one drain worker (the default on a machine of up to 7 cores: see
/// [`ControllerBuilder::drain_threads`](crate::ControllerBuilder::drain_threads)) it is
/// [`Pipelined`]`<`[`AtfSink`]`>` as ever: the drain thread queues typed records and the
/// `ada-sink` thread maps, encodes and writes them.
///
/// With `W > 1` workers (`ada-drain-0` … `ada-drain-<W-1>`, each draining a disjoint set of
/// slots: see [`Drainer::workers`](crate::Drainer::workers)) the mapping and encoding, most of
/// a drain's cost per event, happen in the workers: each has a [`BlockSink`] that maps its
/// events with its own symbol map (read from the segment's table, so a `SymbolDef` precedes its
/// first use in the stream: the worker writes it into the same block before the record) and
/// encodes them into an [`EncodedBlock`] with the placeholder event id. Full blocks (and
/// windows, which travel with them) go through one bounded channel to the `ada-sink` thread,
/// whose [`AtfSink`] appends each with the next event ids
/// ([`TraceWriter::append_block`](ada_atf::TraceWriter::append_block)), so `events.bin` is one
/// stream with ids `1..=n` that every ATF v4 reader reads unchanged. One worker's blocks keep
/// their order, so each thread's events keep theirs. A thread definition ships its worker's
/// block at once, so it reaches the stream before any worker's events of the thread (another
/// worker may deliver a fallback-only thread's events: see the [drain's docs](crate::drain)).
/// Symbol definitions are written once per worker that meets the symbol (readers keep the
/// first); the manifest lists each symbol once.
///
/// **Bounded memory.** A block holds about [`BLOCK_BYTES`]; the channel holds
/// [`MAX_QUEUED_BYTES`] of blocks. When it is full a worker waits for room (it never discards
/// an event it accepted): meanwhile the traced threads' rings fill, and their pool policies
/// drop — and count — events, as with any slow drain.
///
/// The manifest is written once, at the end, from the merged [`Report`].
#[derive(Debug)]
pub struct TraceSink(Inner);

#[derive(Debug)]
enum Inner {
    Single(Pipelined<AtfSink>),
    Merged(Box<Merged>),
}

impl TraceSink {
    /// One drain thread feeding `sink` through [`Pipelined`] (its `ada-sink` thread).
    pub fn single(sink: AtfSink) -> std::io::Result<TraceSink> {
        Ok(TraceSink(Inner::Single(Pipelined::start(sink)?)))
    }

    /// `workers` drain workers encoding events for `sink`, which the `ada-sink` thread
    /// writes; [`worker_sinks`](TraceSink::worker_sinks) hands out the workers' sinks.
    pub fn merged(sink: AtfSink, workers: usize) -> std::io::Result<TraceSink> {
        let (tx, rx) = sync_channel::<ToWriter>(QUEUE);
        // One more for the coordinator's own sink.
        let mut senders = Vec::with_capacity(workers + 1);
        let mut spares = Vec::with_capacity(workers + 1);
        for _ in 0..=workers {
            // A spare block waits here only after the writer emptied it: at most the blocks
            // in flight.
            let (s, r) = sync_channel::<EncodedBlock>(QUEUE + 2);
            senders.push(s);
            spares.push(Some(r));
        }
        let thread = std::thread::Builder::new()
            .name("ada-sink".into())
            .spawn(move || run_writer(sink, &rx, &senders))?;
        let mut merged = Merged {
            tx: Some(tx),
            thread: Some(thread),
            spares,
            own: None,
            symbols: Vec::new(),
        };
        merged.own = merged.block_sink(workers);
        Ok(TraceSink(Inner::Merged(Box::new(merged))))
    }

    /// The sinks of the drain workers (`None` for a single-worker sink, or once taken): the
    /// `w`-th is worker `w`'s, for [`Drainer::workers`](crate::Drainer::workers). The
    /// controller takes them when the session starts; a custom controller running its own
    /// workers takes them after [`Sink::begin`] and gives them back with
    /// [`collect`](TraceSink::collect) before [`Sink::finish`].
    pub fn worker_sinks(&mut self) -> Option<Vec<BlockSink>> {
        let Inner::Merged(m) = &mut self.0 else {
            return None;
        };
        let workers = m.spares.len().saturating_sub(1);
        (0..workers).map(|w| m.block_sink(w)).collect()
    }

    /// Takes the workers' sinks back at the end of the session: ships what they hold and keeps
    /// their symbols for the manifest.
    pub fn collect(&mut self, sinks: Vec<BlockSink>) -> Result<(), SinkError> {
        let Inner::Merged(m) = &mut self.0 else {
            return Ok(());
        };
        let mut result = Ok(());
        for mut s in sinks {
            if let Err(e) = s.ship() {
                result = Err(e);
            }
            m.symbols.extend(s.symbols.entries());
        }
        result
    }

    /// The number of drain workers the sink was made for (1 for a single-worker sink).
    pub fn workers(&self) -> usize {
        match &self.0 {
            Inner::Single(_) => 1,
            Inner::Merged(m) => m.spares.len().saturating_sub(1),
        }
    }
}

impl Merged {
    fn block_sink(&mut self, worker: usize) -> Option<BlockSink> {
        let spare = self.spares.get_mut(worker)?.take()?;
        Some(BlockSink {
            worker,
            encoder: BlockEncoder::new(ada_atf::DEFAULT_MAX_RECORD_LEN),
            mapper: RecordMapper::new(ada_atf::manifest::host_arch()),
            symbols: SymbolMap::default(),
            tx: self.tx.clone()?,
            spare,
        })
    }

    fn own(&mut self) -> Result<&mut BlockSink, SinkError> {
        self.own.as_mut().ok_or_else(|| MergeError::Finished.into())
    }

    fn send(&mut self, msg: ToWriter) -> Result<(), SinkError> {
        let tx = self.tx.as_ref().ok_or(MergeError::Finished)?;
        tx.send(msg).map_err(|_| MergeError::Stopped.into())
    }
}

impl Sink for TraceSink {
    fn begin(&mut self, session: &SessionInfo) -> Result<(), SinkError> {
        match &mut self.0 {
            Inner::Single(s) => s.begin(session),
            Inner::Merged(m) => m.send(ToWriter::Begin(session.clone())),
        }
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
        match &mut self.0 {
            Inner::Single(s) => s.symbol_at(function_id, name, address, source),
            Inner::Merged(m) => m.own()?.symbol_at(function_id, name, address, source),
        }
    }

    fn thread(&mut self, thread: &ThreadInfo, name: Option<&str>) -> Result<(), SinkError> {
        match &mut self.0 {
            Inner::Single(s) => s.thread(thread, name),
            Inner::Merged(m) => m.own()?.thread(thread, name),
        }
    }

    fn modules(&mut self, pid: u32, modules: &[Module]) -> Result<(), SinkError> {
        match &mut self.0 {
            Inner::Single(s) => s.modules(pid, modules),
            Inner::Merged(m) => m.send(ToWriter::Modules(pid, modules.to_vec())),
        }
    }

    fn chunk_begin(&mut self, thread: &ThreadInfo, chunk: &ChunkInfo) -> Result<(), SinkError> {
        match &mut self.0 {
            Inner::Single(s) => s.chunk_begin(thread, chunk),
            Inner::Merged(_) => Ok(()),
        }
    }

    #[inline]
    fn record(&mut self, thread: &ThreadInfo, record: &Record<'_>) -> Result<(), SinkError> {
        match &mut self.0 {
            Inner::Single(s) => s.record(thread, record),
            Inner::Merged(m) => m.own()?.record(thread, record),
        }
    }

    fn chunk_end(&mut self, thread: &ThreadInfo, chunk: &ChunkInfo) -> Result<(), SinkError> {
        match &mut self.0 {
            Inner::Single(s) => s.chunk_end(thread, chunk),
            Inner::Merged(_) => Ok(()),
        }
    }

    fn events_lost(&mut self, thread: &ThreadInfo, loss: &LossInfo) -> Result<(), SinkError> {
        match &mut self.0 {
            Inner::Single(s) => s.events_lost(thread, loss),
            Inner::Merged(m) => m.own()?.events_lost(thread, loss),
        }
    }

    fn window(&mut self, thread: &ThreadInfo, window: &WindowInfo) -> Result<(), SinkError> {
        match &mut self.0 {
            Inner::Single(s) => s.window(thread, window),
            Inner::Merged(m) => m.own()?.window(thread, window),
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        match &mut self.0 {
            Inner::Single(s) => s.flush(),
            Inner::Merged(m) => m.own()?.flush(),
        }
    }

    fn finish(&mut self, report: &Report) -> Result<SinkOutput, SinkError> {
        let m = match &mut self.0 {
            Inner::Single(s) => return s.finish(report),
            Inner::Merged(m) => m,
        };
        let own = m.own.take().ok_or(MergeError::Finished)?;
        let mut symbols = std::mem::take(&mut m.symbols);
        symbols.extend(own.symbols.entries());
        let mut own = own;
        let shipped = own.ship();
        drop(own);
        m.send(ToWriter::Finish(Box::new(report.clone()), symbols))?;
        drop(m.tx.take());
        let thread = m.thread.take().ok_or(MergeError::Finished)?;
        let result = thread.join().map_err(|_| MergeError::Panicked)?;
        shipped.and(result)
    }
}

/// The `ada-sink` thread of a merged trace: appends blocks in the order they arrive, hands
/// emptied ones back, and finishes the trace with the merged report.
fn run_writer(
    mut sink: AtfSink,
    rx: &Receiver<ToWriter>,
    spares: &[SyncSender<EncodedBlock>],
) -> Result<SinkOutput, SinkError> {
    let mut refused = 0u64;
    let mut last_error: Option<String> = None;
    while let Ok(msg) = rx.recv() {
        match msg {
            ToWriter::Begin(session) => {
                if let Err(e) = sink.begin(&session) {
                    last_error = Some(e.to_string());
                }
            }
            ToWriter::Block(worker, block) => {
                if let Err(e) = sink.append_block(&block) {
                    refused += block.events();
                    last_error = Some(e.to_string());
                }
                if let Some(back) = spares.get(worker) {
                    let _ = back.try_send(block);
                }
            }
            ToWriter::Modules(pid, modules) => {
                if let Err(e) = sink.modules(pid, &modules) {
                    last_error = Some(e.to_string());
                }
            }
            ToWriter::Flush => {
                if let Err(e) = sink.flush() {
                    last_error = Some(e.to_string());
                }
            }
            ToWriter::Finish(report, symbols) => {
                for entry in &symbols {
                    sink.know_symbol(entry);
                }
                return sink.finish(&report).map(|mut out| {
                    out.unwritten += refused;
                    if refused > 0 {
                        out.complete = false;
                        out.error = out.error.or(last_error);
                    }
                    out
                });
            }
        }
    }
    Err(MergeError::NotFinished.into())
}
