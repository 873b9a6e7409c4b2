//! [`Pipelined`]: runs a sink on a thread of its own, so the drain thread never waits on it.
//!
//! The drain thread's job is to turn rings over quickly: a traced thread whose rings are not
//! returned in time drops events. Writing a trace can stall (the kernel throttles `write` while
//! it writes back dirty pages: 79 ms stalls measured on this project's machines, enough to
//! overflow every ring pool). With `Pipelined`, the drain thread only copies each record into a
//! batch buffer (a few nanoseconds); full batches travel through a bounded channel to the sink
//! thread, which encodes and writes them. A stalled sink fills the channel (up to
//! [`Pipelined::MAX_QUEUED_BYTES`] of memory) before the drain waits.
//!
//! Order is kept: symbols, records and flushes reach the inner sink exactly in the order the
//! drain produced them. A record the inner sink refuses is counted and reported by
//! [`Sink::finish`] as unwritten (the drain counted it as persisted when it was queued).

use crate::report::Report;
use crate::sink::{SessionInfo, Sink, SinkError, SinkOutput, ThreadInfo};
use ada_atf::{Lane, RecordKind, RingRecord};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

enum Msg {
    Begin(SessionInfo),
    Batch(Vec<u8>),
    Flush,
    Finish(Box<Report>),
}

/// A sink running on its own thread (see the module docs).
#[derive(Debug)]
pub struct Pipelined<S: Sink + 'static> {
    tx: Option<SyncSender<Msg>>,
    batch: Vec<u8>,
    spare: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<(S, Result<SinkOutput, SinkError>)>>,
    inner_name: &'static str,
}

// Record encoding in a batch: tag byte, then fields little-endian.
const TAG_SYMBOL: u8 = 1;
const TAG_RECORD: u8 = 2;

impl<S: Sink + 'static> Pipelined<S> {
    /// Bytes of batches that may wait for the sink thread before the drain thread waits.
    pub const MAX_QUEUED_BYTES: usize = 64 << 20;
    const BATCH_BYTES: usize = 1 << 20;
    const QUEUE: usize = Self::MAX_QUEUED_BYTES / Self::BATCH_BYTES;

    /// Starts `inner`'s thread.
    pub fn start(inner: S) -> std::io::Result<Pipelined<S>> {
        let (tx, rx) = sync_channel::<Msg>(Self::QUEUE);
        let (spare_tx, spare) = sync_channel::<Vec<u8>>(Self::QUEUE + 2);
        let thread = std::thread::Builder::new()
            .name("ada-sink".into())
            .spawn(move || run_inner(inner, &rx, &spare_tx))?;
        Ok(Pipelined {
            tx: Some(tx),
            batch: Vec::with_capacity(Self::BATCH_BYTES),
            spare,
            thread: Some(thread),
            inner_name: std::any::type_name::<S>(),
        })
    }

    fn send(&mut self, msg: Msg) -> Result<(), SinkError> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| SinkError::new("the sink already finished"))?;
        tx.send(msg)
            .map_err(|_| SinkError::new(format!("the {} thread stopped", self.inner_name)))
    }

    fn ship(&mut self) -> Result<(), SinkError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let fresh = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(Self::BATCH_BYTES));
        let full = std::mem::replace(&mut self.batch, fresh);
        self.send(Msg::Batch(full))
    }

    #[inline]
    fn room(&mut self, need: usize) -> Result<(), SinkError> {
        if self.batch.len() + need > Self::BATCH_BYTES {
            self.ship()?;
        }
        Ok(())
    }
}

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn put_bytes(b: &mut Vec<u8>, v: &[u8]) {
    put_u32(b, v.len() as u32);
    b.extend_from_slice(v);
}

/// Reads what `put_*` wrote (the batch never leaves this process, so a short read is a bug,
/// reported as an error rather than a panic).
struct Cursor<'b> {
    b: &'b [u8],
}

impl<'b> Cursor<'b> {
    fn take(&mut self, n: usize) -> Option<&'b [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
    }
    fn bytes(&mut self) -> Option<&'b [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

fn kind_code(k: RecordKind) -> u8 {
    match k {
        RecordKind::Call => 1,
        RecordKind::Return => 2,
        RecordKind::Exception => 3,
        RecordKind::Mark => 4,
        RecordKind::Message => 5,
    }
}

impl<S: Sink + 'static> Sink for Pipelined<S> {
    fn begin(&mut self, session: &SessionInfo) -> Result<(), SinkError> {
        self.ship()?;
        self.send(Msg::Begin(session.clone()))
    }

    fn symbol(&mut self, function_id: u64, name: &str, address: u64) -> Result<(), SinkError> {
        self.room(1 + 16 + 4 + name.len())?;
        self.batch.push(TAG_SYMBOL);
        put_u64(&mut self.batch, function_id);
        put_u64(&mut self.batch, address);
        put_bytes(&mut self.batch, name.as_bytes());
        Ok(())
    }

    #[inline]
    fn record(&mut self, thread: &ThreadInfo, r: &RingRecord<'_>) -> Result<(), SinkError> {
        let registers = &r.registers[..r.registers.len().min(ada_atf::MAX_REGISTERS)];
        let regs = registers.len() * 8;
        self.room(64 + 12 + regs + r.stack.len() + r.message.len() + 32)?;
        let b = &mut self.batch;
        b.push(TAG_RECORD);
        put_u32(b, thread.slot);
        put_u32(b, thread.generation);
        put_u32(b, thread.pid);
        put_u64(b, thread.os_tid);
        b.push(kind_code(r.kind));
        b.push(matches!(r.lane, Lane::Detail) as u8);
        put_u64(b, r.timestamp_ns);
        put_u64(b, r.function_id);
        put_u32(b, r.thread_id as u32);
        put_u32(b, r.call_depth);
        put_u32(b, registers.len() as u32);
        for &reg in registers {
            put_u64(b, reg);
        }
        put_bytes(b, r.stack);
        put_bytes(b, r.message);
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
        let thread = self
            .thread
            .take()
            .ok_or_else(|| SinkError::new("the sink already finished"))?;
        let (_inner, result) = thread
            .join()
            .map_err(|_| SinkError::new(format!("the {} thread panicked", self.inner_name)))?;
        result
    }
}

/// The sink thread: replays batches into `inner` until `Finish`.
fn run_inner<S: Sink>(
    mut inner: S,
    rx: &Receiver<Msg>,
    spare: &SyncSender<Vec<u8>>,
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
                if let Err(e) = replay(&mut inner, &batch, &mut refused) {
                    last_error = Some(e.to_string());
                }
                batch.clear();
                let _ = spare.try_send(batch);
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
    let err = SinkError::new("the drain stopped without finishing the sink");
    (inner, Err(err))
}

fn replay<S: Sink>(inner: &mut S, batch: &[u8], refused: &mut u64) -> Result<(), SinkError> {
    let corrupt = || SinkError::new("internal: malformed pipeline batch");
    let mut c = Cursor { b: batch };
    let mut regs = [0u64; ada_atf::MAX_REGISTERS];
    let mut result = Ok(());
    while let Some(tag) = c.u8() {
        match tag {
            TAG_SYMBOL => {
                let id = c.u64().ok_or_else(corrupt)?;
                let address = c.u64().ok_or_else(corrupt)?;
                let name = c.bytes().ok_or_else(corrupt)?;
                inner.symbol(id, &String::from_utf8_lossy(name), address)?;
            }
            TAG_RECORD => {
                let thread = ThreadInfo {
                    slot: c.u32().ok_or_else(corrupt)?,
                    generation: c.u32().ok_or_else(corrupt)?,
                    pid: c.u32().ok_or_else(corrupt)?,
                    os_tid: c.u64().ok_or_else(corrupt)?,
                };
                let kind = RecordKind::try_from(u32::from(c.u8().ok_or_else(corrupt)?))
                    .map_err(|_| corrupt())?;
                let lane = if c.u8().ok_or_else(corrupt)? == 1 {
                    Lane::Detail
                } else {
                    Lane::Index
                };
                let timestamp_ns = c.u64().ok_or_else(corrupt)?;
                let function_id = c.u64().ok_or_else(corrupt)?;
                let thread_id = c.u32().ok_or_else(corrupt)? as i32;
                let call_depth = c.u32().ok_or_else(corrupt)?;
                let n = (c.u32().ok_or_else(corrupt)? as usize).min(regs.len());
                for r in regs.iter_mut().take(n) {
                    *r = c.u64().ok_or_else(corrupt)?;
                }
                let stack = c.bytes().ok_or_else(corrupt)?;
                let message = c.bytes().ok_or_else(corrupt)?;
                let record = RingRecord {
                    kind,
                    lane,
                    timestamp_ns,
                    function_id,
                    thread_id,
                    call_depth,
                    registers: &regs[..n],
                    stack,
                    message,
                };
                if let Err(e) = inner.record(&thread, &record) {
                    *refused += 1;
                    result = Err(e);
                }
            }
            _ => return Err(corrupt()),
        }
    }
    result
}
