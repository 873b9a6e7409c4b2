//! The symbol string table: agents register function and callsite names once, the controller
//! reads them to name events.
//!
//! It lives in the segment's [`RegionKind::Symbols`](ada_shm::RegionKind) region; the layout
//! below is owned by this module (the region kind's doc in `ada-shm` names `ada-agent`, the
//! table's main writer). Like registration ([`HeapRegistry`](crate::HeapRegistry)), the protocol
//! runs on borrowed atomics ([`SymbolTableRef`]), so it is model-checked on heap memory
//! ([`HeapSymbolTable`]).
//!
//! ```text
//! offset            field              writer       ordering contract
//!      0            entries      u32   creator      immutable after creation (Relaxed)
//!      4            name_bytes   u32   creator      immutable after creation (Relaxed)
//!    128            next_entry   u64   registrars   fetch_add(1) claims an entry index (Relaxed:
//!                                                   uniqueness is the RMW, not the ordering)
//!    136            next_word    u64   registrars   fetch_add(n) claims n name words (Relaxed)
//!    144            refused      u64   registrars   Relaxed counter: table or names area full
//!    256            entry[entries], 24 bytes each:
//!                     +0  state     u32  0 EMPTY, 1 READY, 2 SKIPPED; stored Release last,
//!                                        loaded Acquire by the reader before anything else
//!                     +4  name_word u32  first name word (index into the names area)
//!                     +8  name_len  u32  name length in bytes (<= MAX_SYMBOL_NAME)
//!                    +12  line      u32  source line, 0 = no source location
//!                    +16  address   u64
//! 256 + 24*entries  names: name_bytes / 8 words (u64), each holding 8 bytes of UTF-8,
//!                   little-endian, the last word of a name zero-padded
//! ```
//!
//! An entry's text is its name, or, for an entry with a source location (a `tracing` callsite:
//! [`SymbolTableRef::register_with_source`]), its name, a NUL byte and the source file; its
//! `line` is then nonzero. A name never holds a NUL (the writer cuts it at its first), so the
//! reader splits the text at the first NUL.
//!
//! **Register** (wait-free: two `fetch_add`s and a bounded number of stores): claim an entry
//! index, claim the name's words, store the words and the entry fields with `Relaxed`, then
//! publish `state = READY` with `Release`. A claim past the end is "full": nothing is written
//! out of bounds, `refused` is counted and [`SymbolError::Full`] returned. When the entry was
//! claimed but the names area was full, the entry is published as `SKIPPED` so the reader does
//! not wait for it. Claims are never given back (the table is append-only), so a large name that
//! did not fit can leave unused words at the end of the names area. The claim counters are 64-bit,
//! so refused claims, which still advance them, can never wrap them around onto used space.
//!
//! **Read** ([`SymbolTableRef::read_new`]): for every claimed index, load `state` with
//! `Acquire`; `READY` means the name words and fields are complete and visible. An index not yet
//! `READY` (its writer is between claim and publish, or died there) is remembered in the
//! [`SymbolCursor`] and re-checked on later calls, so it never holds back later entries.
//!
//! **Untrusted memory.** The reader only ever indexes the slices it was given: `next_entry` is
//! clamped to the capacity, and a `READY` entry whose name range lies outside the names area or
//! whose length exceeds [`MAX_SYMBOL_NAME`] is skipped (counted in
//! [`SymbolCursor::skipped`]), as is an entry with an unknown `state`. Invalid UTF-8 (which a
//! writer never produces: it stores a `&str` cut at a char boundary) is delivered **lossily**,
//! with U+FFFD replacement characters, so the id still gets a name. A writer facing a corrupted
//! header only ever gets `Full` or writes inside the slices. The `refused` counter is a claim
//! too: [`SymbolTableRef::refused_checked`] gives it only when it is consistent with
//! `next_entry`.

use crate::error::RegistryError;
use ada_shm::CacheLine;
use ada_shm::sync::{AtomicU32, AtomicU64, Ordering};

/// Layout version of the symbols region.
pub const SYMBOLS_VERSION: u32 = 2;

/// Longest name stored; longer names are truncated at a char boundary.
pub const MAX_SYMBOL_NAME: usize = 1024;

/// Most entries a table may have.
pub const MAX_SYMBOL_ENTRIES: u32 = 1 << 20;

/// Largest names area, in bytes.
pub const MAX_SYMBOL_NAME_BYTES: u32 = 1 << 28;

/// Bytes per name word.
const WORD: usize = 8;

/// Entry states.
const EMPTY: u32 = 0;
const READY: u32 = 1;
const SKIPPED: u32 = 2;

/// Sizes chosen by the creator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolTableConfig {
    /// Entries (distinct registrations) the table holds. Default 4096.
    pub entries: u32,
    /// Bytes of name storage, a multiple of 8. Default 256 KiB.
    pub name_bytes: u32,
}

impl Default for SymbolTableConfig {
    fn default() -> Self {
        SymbolTableConfig {
            entries: 4096,
            name_bytes: 256 * 1024,
        }
    }
}

impl SymbolTableConfig {
    /// Checks that `entries` is in `1..=`[`MAX_SYMBOL_ENTRIES`] and `name_bytes` is a non-zero
    /// multiple of 8 no larger than [`MAX_SYMBOL_NAME_BYTES`].
    pub fn validate(&self) -> Result<(), RegistryError> {
        if self.entries == 0 || self.entries > MAX_SYMBOL_ENTRIES {
            return Err(RegistryError::BadHeader(
                "symbol table entries must be between 1 and 1048576",
            ));
        }
        if self.name_bytes == 0
            || self.name_bytes > MAX_SYMBOL_NAME_BYTES
            || !(self.name_bytes as usize).is_multiple_of(WORD)
        {
            return Err(RegistryError::BadHeader(
                "symbol name bytes must be a non-zero multiple of 8 up to 256 MiB",
            ));
        }
        Ok(())
    }

    /// Bytes the symbols region needs: header, entries, names area.
    pub fn region_size(&self) -> u64 {
        size_of::<SymbolHeader>() as u64
            + u64::from(self.entries) * size_of::<SymbolEntry>() as u64
            + u64::from(self.name_bytes)
    }

    /// Number of 8-byte name words.
    pub fn name_words(&self) -> u32 {
        self.name_bytes / WORD as u32
    }
}

/// Immutable sizes written by the creator.
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct SymbolParams {
    entries: AtomicU32,
    name_bytes: AtomicU32,
}

/// The claim counters every registering thread updates.
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct SymbolClaims {
    next_entry: AtomicU64,
    next_word: AtomicU64,
    refused: AtomicU64,
}

/// The header at the start of the symbols region (see the module docs for the byte diagram).
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct SymbolHeader {
    params: CacheLine<SymbolParams>,
    claims: CacheLine<SymbolClaims>,
}

/// One registered name: where its bytes are, its address, and whether it is published.
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(loom, shuttle)),
    derive(zerocopy::FromBytes, zerocopy::KnownLayout)
)]
pub struct SymbolEntry {
    state: AtomicU32,
    name_word: AtomicU32,
    name_len: AtomicU32,
    line: AtomicU32,
    address: AtomicU64,
}

#[cfg(not(any(loom, shuttle)))]
// SAFETY: every field is an atomic inside padding; any bit pattern is a valid value.
unsafe impl ada_shm::ShmSafe for SymbolHeader {}

#[cfg(not(any(loom, shuttle)))]
// SAFETY: five atomics, no padding (4 × u32 then a u64 at offset 16); any bit pattern is valid.
unsafe impl ada_shm::ShmSafe for SymbolEntry {}

#[cfg(not(any(loom, shuttle)))]
const _: () = {
    assert!(core::mem::size_of::<SymbolHeader>() == 256);
    assert!(core::mem::offset_of!(SymbolHeader, claims) == 128);
    assert!(core::mem::size_of::<SymbolEntry>() == 24);
    assert!(core::mem::offset_of!(SymbolEntry, address) == 16);
};

impl SymbolHeader {
    /// The sizes as written (untrusted until validated and checked against the region size).
    pub fn config(&self) -> SymbolTableConfig {
        let p = &self.params;
        // Relaxed (both): immutable after creation.
        SymbolTableConfig {
            entries: p.entries.load(Ordering::Relaxed),
            name_bytes: p.name_bytes.load(Ordering::Relaxed),
        }
    }
}

/// Why a registration failed.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SymbolError {
    /// Every entry, or the names area, is used up; the registration was counted in
    /// [`SymbolTableRef::refused`].
    #[error("symbol table is full (entries or name storage exhausted)")]
    Full,
}

/// Where a symbol is defined in the source: a file and a line (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolSource<'b> {
    /// The source file, as the registrar named it (a `tracing` callsite's `file!()`).
    pub file: &'b str,
    /// The line, from 1.
    pub line: u32,
}

/// A published symbol, as the reader sees it. `name` and `source` borrow the cursor's buffer.
#[derive(Debug, Clone, Copy)]
pub struct SymbolRecord<'b> {
    /// Function id: entry index + 1.
    pub id: u64,
    /// The name (lossily decoded if the stored bytes were not UTF-8).
    pub name: &'b str,
    /// The address registered with it.
    pub address: u64,
    /// Where it is defined, when the registrar said.
    pub source: Option<SymbolSource<'b>>,
}

/// The reader's position: every index below `next` was looked at; `pending` holds those among
/// them that were not published yet. Also holds the buffers names are assembled in.
#[derive(Debug, Default, Clone)]
pub struct SymbolCursor {
    next: u32,
    pending: Vec<u32>,
    skipped: u64,
    rewound: u64,
    /// The claim counter at the previous read: a value below it means the counter went back.
    last_claimed: u32,
    bytes: Vec<u8>,
    text: String,
}

impl SymbolCursor {
    /// A cursor at the start of the table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Claimed entries seen but not yet published (being written, or abandoned by a writer that
    /// died between claim and publish). They are re-checked on every call.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Entries skipped because they were corrupt (unknown state, name out of bounds or too long).
    /// Reading goes on past them: later entries are still delivered.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Times the table's claim counter was seen below a value it had before (it only ever
    /// grows: someone rewrote it). Entries re-claimed below the cursor are not read again.
    pub fn rewound(&self) -> u64 {
        self.rewound
    }
}

/// What the reader found at one index.
enum Probe<'b> {
    /// Not published yet: look again later.
    NotYet,
    /// Settled without a record (refused by its writer, or corrupt).
    Settled { corrupt: bool },
    /// Published.
    Ready(SymbolRecord<'b>),
}

/// The table as borrowed atomics: the algorithm's whole world.
#[derive(Clone, Copy)]
pub struct SymbolTableRef<'a> {
    header: &'a SymbolHeader,
    entries: &'a [SymbolEntry],
    words: &'a [AtomicU64],
}

impl std::fmt::Debug for SymbolTableRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymbolTableRef")
            .field("entries", &self.entries.len())
            .field("name_words", &self.words.len())
            .field("refused", &self.refused())
            .finish()
    }
}

/// `name` cut at its first NUL (the separator before a source file) and to at most
/// [`MAX_SYMBOL_NAME`] bytes, at a char boundary.
fn truncate_name(name: &str) -> &str {
    let name = name.split('\0').next().unwrap_or_default();
    if name.len() <= MAX_SYMBOL_NAME {
        return name;
    }
    let mut end = MAX_SYMBOL_NAME;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

impl<'a> SymbolTableRef<'a> {
    /// Wraps validated parts: `entries.len()` is the capacity, `words` the names area. Their
    /// lengths are what the algorithms trust, never the header's fields.
    pub fn new(
        header: &'a SymbolHeader,
        entries: &'a [SymbolEntry],
        words: &'a [AtomicU64],
    ) -> Self {
        SymbolTableRef {
            header,
            entries,
            words,
        }
    }

    /// Writes the sizes into the header (creator only, before anyone else can see the table; the
    /// rest of a fresh table is zero, which is its empty state).
    pub fn initialize(&self) {
        let p = &self.header.params;
        // Relaxed (both): nobody else knows the segment yet; handing its name over (or spawning
        // the model's threads) orders these stores before any reader.
        p.entries.store(self.capacity(), Ordering::Relaxed);
        p.name_bytes
            .store((self.words.len() * WORD) as u32, Ordering::Relaxed);
    }

    /// The header.
    pub fn header(&self) -> &'a SymbolHeader {
        self.header
    }

    /// Number of entries.
    pub fn capacity(&self) -> u32 {
        self.entries.len() as u32
    }

    /// The sizes this view was built with.
    pub fn config(&self) -> SymbolTableConfig {
        SymbolTableConfig {
            entries: self.capacity(),
            name_bytes: (self.words.len() * WORD) as u32,
        }
    }

    /// Registrations refused because the table or name area was full.
    pub fn refused(&self) -> u64 {
        // Relaxed: a statistic.
        self.header.claims.refused.load(Ordering::Relaxed)
    }

    /// [`refused`](Self::refused), checked for plausibility: `None` when the counter cannot be
    /// true, so a damaged header never reaches a report as a count.
    ///
    /// Every refusal advanced `next_entry` first, so an honest table has `refused <=
    /// next_entry`; and a refusal is a distinct registration (agents register each callsite
    /// once), so a count above `u32::MAX` is taken as damage too.
    pub fn refused_checked(&self) -> Option<u64> {
        // Acquire: pairs with the Release in `refuse`, so the `next_entry` increment of every
        // refusal counted here is visible below.
        let refused = self.header.claims.refused.load(Ordering::Acquire);
        // Relaxed: ordered after the Acquire load above.
        let claims = self.header.claims.next_entry.load(Ordering::Relaxed);
        (refused <= claims && refused <= u64::from(u32::MAX)).then_some(refused)
    }

    /// Entries claimed so far (published or not), clamped to the capacity.
    pub fn claimed(&self) -> u32 {
        // Relaxed: a snapshot; each entry's own state says whether it is published.
        let next = self.header.claims.next_entry.load(Ordering::Relaxed);
        next.min(u64::from(self.capacity())) as u32
    }

    fn refuse(&self) -> SymbolError {
        // Release: `refused_checked` loads it with Acquire, and then sees this claim's
        // `next_entry` increment (sequenced before), so `refused <= next_entry` holds for it.
        self.header.claims.refused.fetch_add(1, Ordering::Release);
        SymbolError::Full
    }

    /// Registers `name` at `address`; returns the new function id (>= 1, = entry index + 1).
    /// Wait-free: a few fetch_adds and stores, no loop that can spin. A name is cut at its
    /// first NUL, and names longer than [`MAX_SYMBOL_NAME`] bytes are truncated at a char
    /// boundary. Registering the same name twice yields two ids (deduplication is the caller's
    /// business).
    pub fn register(&self, name: &str, address: u64) -> Result<u64, SymbolError> {
        self.register_with_source(name, address, None)
    }

    /// [`register`](Self::register) with where the symbol is defined. The source is kept when
    /// its line is nonzero, its file is not empty and holds no NUL, and name and file fit in
    /// [`MAX_SYMBOL_NAME`] bytes together; otherwise the name is registered without it.
    pub fn register_with_source(
        &self,
        name: &str,
        address: u64,
        source: Option<SymbolSource<'_>>,
    ) -> Result<u64, SymbolError> {
        let name = truncate_name(name).as_bytes();
        let source = source.filter(|s| {
            s.line != 0
                && !s.file.is_empty()
                && !s.file.contains('\0')
                && name.len() + 1 + s.file.len() <= MAX_SYMBOL_NAME
        });
        let (separator, file, line): (&[u8], &[u8], u32) = match source {
            Some(s) => (b"\0", s.file.as_bytes(), s.line),
            None => (b"", b"", 0),
        };
        let len = name.len() + separator.len() + file.len();
        let cap = self.entries.len() as u64;
        // Relaxed: the RMW alone makes the index unique; the entry is published by its state.
        let index = self
            .header
            .claims
            .next_entry
            .fetch_add(1, Ordering::Relaxed);
        if index >= cap {
            return Err(self.refuse());
        }
        let entry = &self.entries[index as usize];
        let n = len.div_ceil(WORD) as u64;
        let first = if n == 0 {
            0
        } else {
            // Relaxed: as above, the RMW makes the word range ours alone.
            let first = self.header.claims.next_word.fetch_add(n, Ordering::Relaxed);
            match first.checked_add(n) {
                Some(end) if end <= self.words.len() as u64 => first,
                _ => {
                    // Release: the reader that acquires SKIPPED stops waiting for this entry.
                    entry.state.store(SKIPPED, Ordering::Release);
                    return Err(self.refuse());
                }
            }
        };
        let dest = &self.words[first as usize..(first + n) as usize];
        let mut text = name.iter().chain(separator).chain(file).copied();
        for word in dest {
            let mut le = [0u8; WORD];
            for (byte, b) in le.iter_mut().zip(&mut text) {
                *byte = b;
            }
            // Relaxed: published by the Release store of `state` below.
            word.store(u64::from_le_bytes(le), Ordering::Relaxed);
        }
        // Relaxed (all four): published by the Release store of `state` below.
        entry.name_word.store(first as u32, Ordering::Relaxed);
        entry.name_len.store(len as u32, Ordering::Relaxed);
        entry.line.store(line, Ordering::Relaxed);
        entry.address.store(address, Ordering::Relaxed);
        // Release: a reader that acquires READY sees the name words and fields stored above.
        entry.state.store(READY, Ordering::Release);
        Ok(index + 1)
    }

    /// Reader (controller): visits every entry published since the cursor's last call, in index
    /// order where possible; an entry whose writer has not published yet (or died mid-write)
    /// does not block later published entries: it is remembered and revisited on later calls.
    /// Each published entry is visited exactly once per cursor.
    pub fn read_new(&self, cursor: &mut SymbolCursor, mut visit: impl FnMut(SymbolRecord<'_>)) {
        let cap = self.capacity();
        let SymbolCursor {
            next,
            pending,
            skipped,
            rewound,
            last_claimed,
            bytes,
            text,
        } = cursor;
        // Revisit the stragglers first: they have lower indices than anything new.
        pending.retain(|&index| {
            if index >= cap {
                return false; // a cursor from a larger table: nothing to revisit here
            }
            match self.probe(index, bytes, text) {
                Probe::NotYet => true,
                Probe::Settled { corrupt } => {
                    *skipped += u64::from(corrupt);
                    false
                }
                Probe::Ready(record) => {
                    visit(record);
                    false
                }
            }
        });
        let end = self.claimed();
        // Counted once per going back (not on every read while it stays below `next`).
        if end < *last_claimed && *last_claimed <= cap {
            *rewound += 1;
        }
        *last_claimed = end;
        for index in (*next).min(cap)..end {
            match self.probe(index, bytes, text) {
                Probe::NotYet => pending.push(index),
                Probe::Settled { corrupt } => *skipped += u64::from(corrupt),
                Probe::Ready(record) => visit(record),
            }
        }
        *next = (*next).max(end);
    }

    /// Looks at entry `index` (< capacity), assembling its name in `bytes` / `text`.
    fn probe<'b>(&self, index: u32, bytes: &'b mut Vec<u8>, text: &'b mut String) -> Probe<'b> {
        let entry = &self.entries[index as usize];
        // Acquire: pairs with the writer's Release; READY makes its words and fields visible.
        match entry.state.load(Ordering::Acquire) {
            EMPTY => return Probe::NotYet,
            READY => {}
            SKIPPED => return Probe::Settled { corrupt: false },
            _ => return Probe::Settled { corrupt: true },
        }
        // Relaxed (all four): ordered after the Acquire load of `state` above.
        let first = entry.name_word.load(Ordering::Relaxed) as usize;
        let len = entry.name_len.load(Ordering::Relaxed) as usize;
        let line = entry.line.load(Ordering::Relaxed);
        let address = entry.address.load(Ordering::Relaxed);
        let n = len.div_ceil(WORD);
        let words = match first.checked_add(n) {
            Some(end) if len <= MAX_SYMBOL_NAME => self.words.get(first..end),
            _ => None,
        };
        let Some(words) = words else {
            return Probe::Settled { corrupt: true };
        };
        bytes.clear();
        for word in words {
            // Relaxed: ordered after the Acquire load of `state` above.
            bytes.extend_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        bytes.truncate(len);
        let bytes: &'b Vec<u8> = bytes;
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => {
                text.clear();
                text.push_str(&String::from_utf8_lossy(bytes));
                text.as_str()
            }
        };
        // Untrusted: a line without a file (or a file without a line) is no source.
        let (name, file) = match text.split_once('\0') {
            Some((name, file)) => (name, file),
            None => (text, ""),
        };
        let source = (line != 0 && !file.is_empty()).then_some(SymbolSource { file, line });
        Probe::Ready(SymbolRecord {
            id: u64::from(index) + 1,
            name,
            address,
            source,
        })
    }
}

/// A symbol table on the heap, for model checking and unit tests.
#[derive(Debug)]
pub struct HeapSymbolTable {
    header: SymbolHeader,
    entries: Box<[SymbolEntry]>,
    words: Box<[AtomicU64]>,
}

impl HeapSymbolTable {
    /// A fresh, empty table.
    ///
    /// # Panics
    /// If `cfg` does not pass [`SymbolTableConfig::validate`].
    pub fn new(cfg: SymbolTableConfig) -> Self {
        if let Err(e) = cfg.validate() {
            panic!("invalid symbol table config {cfg:?}: {e}");
        }
        let table = HeapSymbolTable {
            header: SymbolHeader::default(),
            entries: (0..cfg.entries).map(|_| SymbolEntry::default()).collect(),
            words: (0..cfg.name_words()).map(|_| AtomicU64::new(0)).collect(),
        };
        table.view().initialize();
        table
    }

    /// The borrowed view the algorithm runs on.
    pub fn view(&self) -> SymbolTableRef<'_> {
        SymbolTableRef::new(&self.header, &self.entries, &self.words)
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg(entries: u32, name_bytes: u32) -> SymbolTableConfig {
        SymbolTableConfig {
            entries,
            name_bytes,
        }
    }

    fn read_all(t: SymbolTableRef<'_>, cursor: &mut SymbolCursor) -> Vec<(u64, String, u64)> {
        let mut out = Vec::new();
        t.read_new(cursor, |r| out.push((r.id, r.name.to_owned(), r.address)));
        out
    }

    #[test]
    fn config_validation_and_size() {
        let d = SymbolTableConfig::default();
        assert_eq!(d, cfg(4096, 256 * 1024));
        d.validate().unwrap();
        assert_eq!(d.region_size(), 256 + 4096 * 24 + 256 * 1024);
        for bad in [
            cfg(0, 8),
            cfg(MAX_SYMBOL_ENTRIES + 1, 8),
            cfg(1, 0),
            cfg(1, 12),
            cfg(1, MAX_SYMBOL_NAME_BYTES + 8),
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        cfg(MAX_SYMBOL_ENTRIES, MAX_SYMBOL_NAME_BYTES)
            .validate()
            .unwrap();
        let t = HeapSymbolTable::new(cfg(3, 64));
        assert_eq!(t.view().header().config(), cfg(3, 64));
        assert_eq!(t.view().config(), cfg(3, 64));
    }

    #[test]
    fn a_claim_counter_going_back_is_counted_once_per_rewind() {
        let t = HeapSymbolTable::new(cfg(8, 256));
        let v = t.view();
        for name in ["a", "b", "c"] {
            v.register(name, 0).unwrap();
        }
        let mut c = SymbolCursor::new();
        assert_eq!(read_all(v, &mut c).len(), 3);
        // A peer rewinds the counter; it stays low over many later reads.
        v.header.claims.next_entry.store(1, Ordering::Relaxed);
        for _ in 0..10 {
            assert!(read_all(v, &mut c).is_empty());
        }
        assert_eq!(c.rewound(), 1, "one rewind, however many reads see it");
        v.header.claims.next_entry.store(0, Ordering::Relaxed);
        read_all(v, &mut c);
        assert_eq!(c.rewound(), 2, "a second step back is a second rewind");
    }

    #[test]
    fn register_and_read_round_trip_with_ids_from_one() {
        let t = HeapSymbolTable::new(cfg(8, 256));
        let v = t.view();
        assert_eq!(v.register("main", 0x1000), Ok(1));
        assert_eq!(v.register("", 0x2000), Ok(2));
        assert_eq!(v.register("exactly8", 3), Ok(3));
        assert_eq!(v.register("ünïcödé::φ<'a>", 4), Ok(4));
        let mut c = SymbolCursor::new();
        let got = read_all(v, &mut c);
        assert_eq!(
            got,
            vec![
                (1, "main".into(), 0x1000),
                (2, String::new(), 0x2000),
                (3, "exactly8".into(), 3),
                (4, "ünïcödé::φ<'a>".into(), 4),
            ]
        );
        // Each entry is delivered once; new ones after that.
        assert!(read_all(v, &mut c).is_empty());
        assert_eq!(v.register("later", 5), Ok(5));
        assert_eq!(read_all(v, &mut c), vec![(5, "later".into(), 5)]);
        assert!(read_all(v, &mut c).is_empty());
        // A fresh cursor sees everything again.
        assert_eq!(read_all(v, &mut SymbolCursor::new()).len(), 5);
        assert_eq!(v.claimed(), 5);
        assert_eq!(v.refused(), 0);
    }

    /// `(name, file, line)` of every new entry.
    fn sources(t: SymbolTableRef<'_>) -> Vec<(String, Option<(String, u32)>)> {
        let mut out = Vec::new();
        t.read_new(&mut SymbolCursor::new(), |r| {
            let source = r.source.map(|s| (s.file.to_owned(), s.line));
            out.push((r.name.to_owned(), source))
        });
        out
    }

    #[test]
    fn a_source_location_travels_with_its_name_and_a_bad_one_is_left_out() {
        let t = HeapSymbolTable::new(cfg(8, 4096));
        let v = t.view();
        let at = |file, line| Some(SymbolSource { file, line });
        v.register_with_source("app::fetch", 0, at("src/main.rs", 12))
            .unwrap();
        // A NUL in a name ends it: a name cannot forge a source.
        v.register_with_source("evil\0src/forged.rs", 0, None)
            .unwrap();
        // Line 0, an empty file or a file with a NUL is no source.
        v.register_with_source("no_line", 0, at("a.rs", 0)).unwrap();
        v.register_with_source("no_file", 0, at("", 3)).unwrap();
        v.register_with_source("nul_file", 0, at("a\0b.rs", 3))
            .unwrap();
        // Name and file must fit in one name's bytes together.
        let long = "f".repeat(MAX_SYMBOL_NAME - 4);
        v.register_with_source(&long, 0, at("x.rs", 1)).unwrap();
        v.register_with_source("fits", 0, at(&long[..MAX_SYMBOL_NAME - 5], 2))
            .unwrap();
        let line = |file: &str, line| Some((file.to_owned(), line));
        assert_eq!(
            sources(v),
            vec![
                ("app::fetch".into(), line("src/main.rs", 12)),
                ("evil".into(), None),
                ("no_line".into(), None),
                ("no_file".into(), None),
                ("nul_file".into(), None),
                (long.clone(), None),
                ("fits".into(), line(&long[..MAX_SYMBOL_NAME - 5], 2)),
            ]
        );
    }

    #[test]
    fn a_hostile_line_or_separator_alone_gives_no_source() {
        let t = HeapSymbolTable::new(cfg(4, 256));
        let v = t.view();
        v.register("plain", 0).unwrap();
        v.register_with_source(
            "sep",
            0,
            Some(SymbolSource {
                file: "f.rs",
                line: 9,
            }),
        )
        .unwrap();
        // Another process writes a line into the plain entry and zeroes the other's.
        t.entries[0].line.store(77, Ordering::Relaxed);
        t.entries[1].line.store(0, Ordering::Relaxed);
        assert_eq!(
            sources(v),
            vec![("plain".into(), None), ("sep".into(), None)],
            "a line needs a file and a file needs a line"
        );
    }

    #[test]
    fn long_names_are_truncated_at_a_char_boundary() {
        let t = HeapSymbolTable::new(cfg(4, 4096));
        let v = t.view();
        let ascii = "a".repeat(MAX_SYMBOL_NAME + 100);
        // 'é' is 2 bytes: 1023 ASCII bytes then 'é' straddles the 1024 limit.
        let straddle = format!("{}é tail", "b".repeat(MAX_SYMBOL_NAME - 1));
        let exact = "c".repeat(MAX_SYMBOL_NAME);
        v.register(&ascii, 1).unwrap();
        v.register(&straddle, 2).unwrap();
        v.register(&exact, 3).unwrap();
        let got = read_all(v, &mut SymbolCursor::new());
        assert_eq!(got[0].1, "a".repeat(MAX_SYMBOL_NAME));
        assert_eq!(got[1].1, "b".repeat(MAX_SYMBOL_NAME - 1));
        assert_eq!(got[2].1, exact);
        assert_eq!(truncate_name("€€"), "€€");
    }

    #[test]
    fn full_table_and_full_name_area_are_refused_and_counted() {
        let t = HeapSymbolTable::new(cfg(2, 64));
        let v = t.view();
        assert_eq!(v.register("one", 1), Ok(1));
        assert_eq!(v.register("two", 2), Ok(2));
        assert_eq!(v.register("three", 3), Err(SymbolError::Full));
        assert_eq!(v.register("four", 4), Err(SymbolError::Full));
        assert_eq!(v.refused(), 2);
        assert_eq!(v.refused_checked(), Some(2));
        assert_eq!(v.claimed(), 2);
        assert_eq!(read_all(v, &mut SymbolCursor::new()).len(), 2);
        assert!(SymbolError::Full.to_string().contains("full"));

        // Names area: 16 bytes = 2 words.
        let t = HeapSymbolTable::new(cfg(4, 16));
        let v = t.view();
        assert_eq!(v.register("0123456789", 1), Ok(1)); // 2 words: area now used up
        assert_eq!(v.register("x", 2), Err(SymbolError::Full));
        assert_eq!(v.register("", 3), Ok(3), "an empty name needs no words");
        assert_eq!(v.refused(), 1);
        let mut c = SymbolCursor::new();
        let got = read_all(v, &mut c);
        assert_eq!(
            got,
            vec![(1, "0123456789".into(), 1), (3, String::new(), 3)]
        );
        assert_eq!(c.pending(), 0, "the refused entry is SKIPPED, not pending");
        assert_eq!(c.skipped(), 0, "and is not corrupt either");
    }

    #[test]
    fn unpublished_entry_does_not_block_later_ones_and_arrives_once_published() {
        let t = HeapSymbolTable::new(cfg(4, 64));
        let v = t.view();
        // A writer claims index 0 and its word, then stalls (or dies) before publishing.
        // (Orderings in these tests: single-threaded setup, any ordering would do.)
        t.header.claims.next_entry.fetch_add(1, Ordering::Relaxed);
        t.header.claims.next_word.fetch_add(1, Ordering::Relaxed);
        assert_eq!(v.register("second", 22), Ok(2));
        let mut c = SymbolCursor::new();
        assert_eq!(read_all(v, &mut c), vec![(2, "second".into(), 22)]);
        assert_eq!(c.pending(), 1);
        assert!(read_all(v, &mut c).is_empty());
        assert_eq!(v.register("third", 33), Ok(3));
        assert_eq!(read_all(v, &mut c), vec![(3, "third".into(), 33)]);
        // The stalled writer finishes.
        t.words[0].store(u64::from_le_bytes(*b"first\0\0\0"), Ordering::Relaxed);
        let e = &t.entries[0];
        e.name_word.store(0, Ordering::Relaxed);
        e.name_len.store(5, Ordering::Relaxed);
        e.address.store(11, Ordering::Relaxed);
        e.state.store(READY, Ordering::Release);
        assert_eq!(v.register("fourth", 44), Ok(4));
        // Stragglers first, then new entries: index order.
        assert_eq!(
            read_all(v, &mut c),
            vec![(1, "first".into(), 11), (4, "fourth".into(), 44)]
        );
        assert_eq!(c.pending(), 0);
        assert!(read_all(v, &mut c).is_empty());
    }

    #[test]
    fn corrupt_entries_are_skipped_or_shown_lossily() {
        let t = HeapSymbolTable::new(cfg(4, 32));
        let v = t.view();
        for name in ["a", "b", "c", "d"] {
            v.register(name, 0).unwrap();
        }
        // Relaxed (all): single-threaded setup.
        t.entries[0].name_word.store(4, Ordering::Relaxed); // one past the last word
        t.entries[1]
            .name_len
            .store(MAX_SYMBOL_NAME as u32 + 1, Ordering::Relaxed);
        t.entries[2].state.store(77, Ordering::Relaxed);
        t.words[3].store(u64::from(0xffu8), Ordering::Relaxed); // "d" becomes invalid UTF-8
        t.header
            .claims
            .next_entry
            .store(u64::MAX, Ordering::Relaxed);
        let mut c = SymbolCursor::new();
        assert_eq!(read_all(v, &mut c), vec![(4, "\u{fffd}".into(), 0)]);
        assert_eq!(c.skipped(), 3);
        // A scribbled refusal count is not believed: more refusals than claims, or an
        // implausible number, is damage, never a count.
        t.header
            .claims
            .refused
            .store(12_345_678_901_234_567_890, Ordering::Relaxed);
        assert_eq!(v.refused_checked(), None);
        t.header.claims.next_entry.store(10, Ordering::Relaxed);
        t.header.claims.refused.store(11, Ordering::Relaxed);
        assert_eq!(v.refused_checked(), None);
        t.header.claims.refused.store(3, Ordering::Relaxed);
        assert_eq!(v.refused_checked(), Some(3));
        t.header
            .claims
            .next_entry
            .store(u64::MAX, Ordering::Relaxed);
        assert_eq!(v.claimed(), 4);
        // A corrupt counter only ever refuses.
        assert_eq!(v.register("e", 0), Err(SymbolError::Full));
        t.header.claims.next_entry.store(0, Ordering::Relaxed);
        t.header
            .claims
            .next_word
            .store(u64::MAX - 1, Ordering::Relaxed);
        assert_eq!(
            v.register("long enough for two words", 0),
            Err(SymbolError::Full)
        );
        assert_eq!(t.entries[0].state.load(Ordering::Relaxed), SKIPPED);
    }

    /// A table of `entries` entries and `words` name words filled from `garbage`.
    fn garbage_table(entries: u32, words: u32, garbage: &[u64]) -> HeapSymbolTable {
        let t = HeapSymbolTable::new(cfg(entries, words * 8));
        let mut g = garbage.iter().copied().cycle();
        let mut next = || g.next().unwrap_or(0);
        let h = &t.header;
        // Relaxed (all): single-threaded setup before the table is read.
        h.params.entries.store(next() as u32, Ordering::Relaxed);
        h.params.name_bytes.store(next() as u32, Ordering::Relaxed);
        h.claims.next_entry.store(next(), Ordering::Relaxed);
        h.claims.next_word.store(next(), Ordering::Relaxed);
        h.claims.refused.store(next(), Ordering::Relaxed);
        for e in t.entries.iter() {
            // Bias the state towards READY so the name checks are exercised.
            let s = next();
            e.state
                .store(if s % 4 == 0 { s as u32 } else { READY }, Ordering::Relaxed);
            // Keep some word offsets and lengths small enough to be in bounds.
            let w = next();
            e.name_word.store(
                if w % 2 == 0 { (w % 8) as u32 } else { w as u32 },
                Ordering::Relaxed,
            );
            let l = next();
            e.name_len.store(
                if l % 2 == 0 {
                    (l % 40) as u32
                } else {
                    l as u32
                },
                Ordering::Relaxed,
            );
            e.line.store(next() as u32, Ordering::Relaxed);
            e.address.store(next(), Ordering::Relaxed);
        }
        for w in t.words.iter() {
            w.store(next(), Ordering::Relaxed);
        }
        t
    }

    proptest! {
        #[test]
        fn read_new_survives_garbage(
            entries in 1u32..12,
            words in 1u32..12,
            garbage in proptest::collection::vec(any::<u64>(), 1..200),
            registrations in proptest::collection::vec(".{0,20}", 0..4),
        ) {
            let t = garbage_table(entries, words, &garbage);
            let v = t.view();
            let mut c = SymbolCursor::new();
            let mut seen = std::collections::HashSet::new();
            for round in 0..3 {
                v.read_new(&mut c, |r| {
                    assert!((1..=u64::from(entries)).contains(&r.id), "id {}", r.id);
                    assert!(seen.insert(r.id), "id {} delivered twice", r.id);
                    assert!(r.name.len() <= 3 * MAX_SYMBOL_NAME, "lossy name bounded");
                });
                if round == 0 {
                    // Writers on a garbage header never panic and never hand out a bad id.
                    for name in &registrations {
                        if let Ok(id) = v.register(name, 0) {
                            prop_assert!((1..=u64::from(entries)).contains(&id));
                        }
                    }
                }
            }
            prop_assert!(c.pending() <= entries as usize);
        }
    }
}
