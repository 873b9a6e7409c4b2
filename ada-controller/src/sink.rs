//! [`Sink`]: where drained events go. The ATF v4 writer ([`crate::AtfSink`]) is the default; a
//! custom controller implements this trait to send events elsewhere.

use crate::report::Report;
use ada_atf::RingRecord;
use std::path::PathBuf;

/// The traced session, as the sink learns it before the first event.
#[derive(Debug, Clone, Default)]
pub struct SessionInfo {
    /// The segment name (`ADA_SHM`).
    pub segment: String,
    /// The traced process (0 if unknown).
    pub pid: u32,
    /// Its executable, if known.
    pub executable: Option<String>,
    /// Its arguments.
    pub args: Vec<String>,
}

/// The thread a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadInfo {
    /// Registry slot.
    pub slot: u32,
    /// Claim generation of the slot (slots are reused by later threads).
    pub generation: u32,
    /// Process id of the thread's process.
    pub pid: u32,
    /// OS thread id.
    pub os_tid: u64,
}

/// A sink's failure. The drain keeps draining (the traced program never waits on a sink):
/// records a failing sink could not take are counted as unwritten in the [`Report`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

impl SinkError {
    /// A sink error from anything printable.
    pub fn new(msg: impl std::fmt::Display) -> Self {
        SinkError(msg.to_string())
    }
}

/// What a sink produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkOutput {
    /// Where the trace is, for sinks that write one.
    pub dir: Option<PathBuf>,
    /// Events the sink wrote (including any it adds, such as trace start/end).
    pub events: u64,
    /// Bytes it wrote.
    pub bytes: u64,
    /// Whether its output is complete (nothing failed).
    pub complete: bool,
    /// Records it accepted but could not write.
    pub unwritten: u64,
    /// Its last error, if any.
    pub error: Option<String>,
}

/// Receives what the drain thread takes out of the rings. Called only from the drain thread, in
/// this order: [`begin`](Sink::begin), then any number of [`symbol`](Sink::symbol),
/// [`record`](Sink::record) and [`flush`](Sink::flush), then [`finish`](Sink::finish) once.
/// A symbol always arrives before the first record that names it.
pub trait Sink: Send {
    /// The session starts.
    fn begin(&mut self, session: &SessionInfo) -> Result<(), SinkError> {
        let _ = session;
        Ok(())
    }
    /// A function id got a name.
    fn symbol(&mut self, function_id: u64, name: &str, address: u64) -> Result<(), SinkError> {
        let _ = (function_id, name, address);
        Ok(())
    }
    /// One validated record (index records carry no registers, stack or message).
    fn record(&mut self, thread: &ThreadInfo, record: &RingRecord<'_>) -> Result<(), SinkError>;
    /// End of a drain pass that produced records: a good moment to hand buffers to the OS.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// The session is over; `report` holds the final accounting. Returns what was produced.
    fn finish(&mut self, report: &Report) -> Result<SinkOutput, SinkError>;
}

/// A sink that counts and discards (benchmarks, `--no-output` style use, tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CountingSink {
    /// Records received.
    pub records: u64,
    /// Symbols received.
    pub symbols: u64,
}

impl Sink for CountingSink {
    fn symbol(&mut self, _: u64, _: &str, _: u64) -> Result<(), SinkError> {
        self.symbols += 1;
        Ok(())
    }
    fn record(&mut self, _: &ThreadInfo, _: &RingRecord<'_>) -> Result<(), SinkError> {
        self.records += 1;
        Ok(())
    }
    fn finish(&mut self, _: &Report) -> Result<SinkOutput, SinkError> {
        Ok(SinkOutput {
            events: self.records,
            complete: true,
            ..SinkOutput::default()
        })
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn begin(&mut self, session: &SessionInfo) -> Result<(), SinkError> {
        (**self).begin(session)
    }
    fn symbol(&mut self, function_id: u64, name: &str, address: u64) -> Result<(), SinkError> {
        (**self).symbol(function_id, name, address)
    }
    fn record(&mut self, thread: &ThreadInfo, record: &RingRecord<'_>) -> Result<(), SinkError> {
        (**self).record(thread, record)
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        (**self).flush()
    }
    fn finish(&mut self, report: &Report) -> Result<SinkOutput, SinkError> {
        (**self).finish(report)
    }
}
