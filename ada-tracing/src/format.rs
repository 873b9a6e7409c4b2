//! An event's text, formatted once into a stack buffer: `LEVEL message name=value ...`.
//!
//! [`MessageBuf`] is an uninitialised `[MaybeUninit<u8>; MAX_MESSAGE_BYTES]` (what one detail
//! record holds: nothing is zeroed, only the bytes written are ever read) with a `fmt::Write`
//! adapter: formatting allocates nothing unless a field's own `Debug` or `Display` does.
//! Integers and booleans are written without `core::fmt` (`itoa`), strings and names are
//! copied as they are. Text past the end is cut at a character boundary and ends with
//! [`TRUNCATED`].

use ada_ringpool::record::MAX_MESSAGE_BYTES;
use std::fmt::{self, Write};
use std::mem::MaybeUninit;
use tracing::field::{Field, Visit};

/// What ends a text that did not fit.
pub const TRUNCATED: &str = "…";

/// A stack buffer of one detail record's message (see the module docs).
pub struct MessageBuf {
    /// `bytes[..len]` is written (initialised) and valid UTF-8; the rest is never read.
    bytes: [MaybeUninit<u8>; MAX_MESSAGE_BYTES],
    len: usize,
    truncated: bool,
}

impl MessageBuf {
    /// An empty buffer.
    #[inline]
    pub fn new() -> MessageBuf {
        MessageBuf {
            bytes: [MaybeUninit::uninit(); MAX_MESSAGE_BYTES],
            len: 0,
            truncated: false,
        }
    }

    /// The text so far (valid UTF-8: only whole `str`s and whole characters are copied in).
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: `bytes[..len]` has been written: `len` only grows in `push`, by the length of
        // the part it has just copied into `bytes[len..]`, and `len <= MAX_MESSAGE_BYTES`
        // (`push` indexes `bytes` with it). `MaybeUninit<u8>` has `u8`'s layout, and the
        // slice borrows `self`, so the bytes cannot change while it lives.
        unsafe { std::slice::from_raw_parts(self.bytes.as_ptr().cast::<u8>(), self.len) }
    }

    /// Appends `part`, which the caller has checked fits.
    #[inline]
    fn push(&mut self, part: &[u8]) {
        let end = self.len + part.len();
        for (to, &from) in self.bytes[self.len..end].iter_mut().zip(part) {
            to.write(from);
        }
        self.len = end;
    }

    /// Whether text was cut.
    #[cfg(test)]
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

impl Default for MessageBuf {
    fn default() -> Self {
        MessageBuf::new()
    }
}

impl Write for MessageBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.truncated {
            return Ok(());
        }
        // The last `TRUNCATED.len()` bytes are kept for the marker.
        let room = MAX_MESSAGE_BYTES - TRUNCATED.len() - self.len;
        if s.len() <= room {
            self.push(s.as_bytes());
            return Ok(());
        }
        let mut cut = room;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.push(&s.as_bytes()[..cut]);
        self.push(TRUNCATED.as_bytes());
        self.truncated = true;
        Ok(())
    }
}

/// Writes an event's fields into a [`MessageBuf`]: the `message` field as it is, every other
/// one as ` name=value` (`Debug` for values, strings unquoted), separated by one space.
pub struct FieldWriter<'b> {
    buf: &'b mut MessageBuf,
}

impl<'b> FieldWriter<'b> {
    /// A writer appending to `buf`.
    pub fn new(buf: &'b mut MessageBuf) -> FieldWriter<'b> {
        FieldWriter { buf }
    }

    fn separate(&mut self) {
        if self.buf.len > 0 {
            let _ = self.buf.write_str(" ");
        }
    }
}

impl FieldWriter<'_> {
    /// ` name=`, or just the separator for the `message` field.
    fn name(&mut self, field: &Field) {
        self.separate();
        if field.name() != "message" {
            let _ = self.buf.write_str(field.name());
            let _ = self.buf.write_str("=");
        }
    }

    fn integer(&mut self, field: &Field, value: impl itoa::Integer) {
        self.name(field);
        let _ = self.buf.write_str(itoa::Buffer::new().format(value));
    }
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.name(field);
        let _ = self.buf.write_str(value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.integer(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.integer(field, value);
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.integer(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.integer(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.name(field);
        let _ = self.buf.write_str(if value { "true" } else { "false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // The message is `format_args!`, whose `Debug` is its text.
        self.name(field);
        let _ = write!(self.buf, "{value:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing::{Event, Subscriber};
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

    /// Formats each event as the ADA layer does and keeps the text.
    #[derive(Clone, Default)]
    struct Texts(Arc<Mutex<Vec<String>>>);

    impl<S: Subscriber> Layer<S> for Texts {
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            let mut buf = MessageBuf::new();
            event.record(&mut FieldWriter::new(&mut buf));
            let text = String::from_utf8(buf.as_bytes().to_vec()).expect("UTF-8");
            self.0.lock().expect("not poisoned").push(text);
        }
    }

    fn texts_of(emit: impl FnOnce()) -> Vec<String> {
        let texts = Texts::default();
        let subscriber = tracing_subscriber::registry().with(texts.clone());
        tracing::subscriber::with_default(subscriber, emit);
        let texts = texts.0.lock().expect("not poisoned");
        texts.clone()
    }

    #[test]
    fn every_field_type_is_written_as_its_debug_text() {
        let texts = texts_of(|| {
            tracing::info!(
                neg = -5i64,
                max = u64::MAX,
                small = 7u8,
                wide = -(1i128 << 100),
                huge = u128::MAX,
                yes = true,
                no = false,
                text = "plain",
                dbg = ?Some("q"),
                shown = %1.5f64,
                float = 2.25f64,
                "hi {}",
                2
            );
            tracing::warn!(only = 0u32);
        });
        let want = format!(
            "hi 2 neg=-5 max={} small=7 wide={} huge={} yes=true no=false text=plain \
             dbg=Some(\"q\") shown=1.5 float=2.25",
            u64::MAX,
            -(1i128 << 100),
            u128::MAX
        );
        assert_eq!(texts, [want, "only=0".to_string()]);
    }

    #[test]
    fn text_that_fits_is_kept_whole() {
        let mut buf = MessageBuf::new();
        let word = "done";
        write!(buf, "INFO x={} {word}", 1).unwrap();
        assert_eq!(buf.as_bytes(), b"INFO x=1 done");
        assert!(!buf.truncated());
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary_and_marked() {
        let mut buf = MessageBuf::new();
        // 'é' is two bytes: the cut falls inside one unless it backs off.
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        buf.write_str("a").unwrap();
        buf.write_str(&long).unwrap();
        buf.write_str("never").unwrap();
        assert!(buf.truncated());
        let text = std::str::from_utf8(buf.as_bytes()).expect("valid UTF-8");
        assert!(text.ends_with(TRUNCATED), "{text}");
        assert!(!text.contains("never"));
        assert!(buf.as_bytes().len() <= MAX_MESSAGE_BYTES);
        assert!(buf.as_bytes().len() >= MAX_MESSAGE_BYTES - 1 - TRUNCATED.len());
    }
}
