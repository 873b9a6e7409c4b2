//! An event's text, formatted once into a stack buffer: `LEVEL message name=value ...`.
//!
//! [`MessageBuf`] is a fixed `[u8; MAX_MESSAGE_BYTES]` (what one detail record holds) with a
//! `fmt::Write` adapter: formatting allocates nothing unless a field's own `Debug` or
//! `Display` does. Text past the end is cut at a character boundary and ends with
//! [`TRUNCATED`].

use ada_ringpool::record::MAX_MESSAGE_BYTES;
use std::fmt::{self, Write};
use tracing::field::{Field, Visit};

/// What ends a text that did not fit.
pub const TRUNCATED: &str = "…";

/// A stack buffer of one detail record's message (see the module docs).
pub struct MessageBuf {
    bytes: [u8; MAX_MESSAGE_BYTES],
    len: usize,
    truncated: bool,
}

impl MessageBuf {
    /// An empty buffer.
    #[inline]
    pub fn new() -> MessageBuf {
        MessageBuf {
            bytes: [0; MAX_MESSAGE_BYTES],
            len: 0,
            truncated: false,
        }
    }

    /// The text so far (valid UTF-8: only whole `str`s and whole characters are copied in).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
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
            self.bytes[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
            self.len += s.len();
            return Ok(());
        }
        let mut cut = room;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        for part in [&s.as_bytes()[..cut], TRUNCATED.as_bytes()] {
            self.bytes[self.len..self.len + part.len()].copy_from_slice(part);
            self.len += part.len();
        }
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

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.separate();
        if field.name() != "message" {
            let _ = write!(self.buf, "{}=", field.name());
        }
        let _ = self.buf.write_str(value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.separate();
        // The message is `format_args!`, whose `Debug` is its text.
        let _ = if field.name() == "message" {
            write!(self.buf, "{value:?}")
        } else {
            write!(self.buf, "{}={value:?}", field.name())
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
