//! One module file, read and parsed: its load segments, sorted function symbols, build id and
//! DWARF context.

use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::Arc;

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SymbolKind};

use crate::demangle::demangle;

type Reader = gimli::EndianArcSlice<gimli::RunTimeEndian>;

/// A parsed module file (its bytes are not kept: the DWARF sections are copied out).
pub(crate) struct Image {
    /// `PT_LOAD` segments: (file offset, file size, virtual address).
    segments: Vec<(u64, u64, u64)>,
    /// Function symbols, sorted by address: (address, size, demangled name).
    symbols: Vec<(u64, u64, String)>,
    build_id: Option<Vec<u8>>,
    dwarf: Option<addr2line::Context<Reader>>,
}

/// What an image knows about one virtual address.
#[derive(Default)]
pub(crate) struct Found {
    pub(crate) function: Option<String>,
    pub(crate) file: Option<String>,
    pub(crate) line: Option<u32>,
}

impl Image {
    /// Reads and parses `path`: a regular file of at most `max` bytes, opened without
    /// blocking (a FIFO or device never blocks the reader), an ELF file.
    pub(crate) fn load(path: &Path, max: u64) -> Result<Image, String> {
        let bytes = read_limited(path, max)?;
        let file = object::File::parse(bytes.as_slice())
            .map_err(|e| format!("{}: not an ELF file ({e})", path.display()))?;
        let segments = file
            .segments()
            .map(|s| {
                let (offset, size) = s.file_range();
                (offset, size, s.address())
            })
            .collect();
        let mut symbols: Vec<(u64, u64, String)> = file
            .symbols()
            .chain(file.dynamic_symbols())
            .filter(|s| s.kind() == SymbolKind::Text && s.is_definition() && s.address() != 0)
            .filter_map(|s| {
                let name = s.name().ok()?;
                (!name.is_empty()).then(|| (s.address(), s.size(), demangle(name).into_owned()))
            })
            .collect();
        // By address; of aliases at one address, a sized one first.
        symbols.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        symbols.dedup_by(|later, earlier| later.0 == earlier.0);
        let build_id = file.build_id().ok().flatten().map(<[u8]>::to_vec);
        let dwarf = load_dwarf(&file);
        Ok(Image {
            segments,
            symbols,
            build_id,
            dwarf,
        })
    }

    pub(crate) fn build_id(&self) -> Option<&[u8]> {
        self.build_id.as_deref()
    }

    /// The virtual address of file offset `offset`: through the load segment holding it, else
    /// the offset itself.
    pub(crate) fn vaddr_of_file_offset(&self, offset: u64) -> u64 {
        self.segments
            .iter()
            .find(|&&(start, size, _)| offset >= start && offset - start < size)
            .map_or(offset, |&(start, _, vaddr)| {
                vaddr.wrapping_add(offset - start)
            })
    }

    /// The function (symbol table first, then DWARF) and source line of `vaddr`.
    pub(crate) fn lookup(&self, vaddr: u64) -> Found {
        let mut found = Found {
            function: self.symbol(vaddr).map(str::to_owned),
            ..Found::default()
        };
        let Some(ctx) = &self.dwarf else {
            return found;
        };
        if let Ok(Some(loc)) = ctx.find_location(vaddr) {
            found.file = loc.file.map(str::to_owned);
            found.line = loc.line;
        }
        if found.function.is_none()
            && let Ok(mut frames) = ctx.find_frames(vaddr).skip_all_loads()
        {
            // The last frame is the function the code belongs to (earlier ones are inlined
            // into it).
            let mut outermost = None;
            while let Ok(Some(frame)) = frames.next() {
                if let Some(Ok(name)) = frame.function.as_ref().map(|f| f.raw_name()) {
                    outermost = Some(demangle(&name).into_owned());
                }
            }
            found.function = outermost;
        }
        found
    }

    /// The symbol whose range holds `vaddr`. A symbol without a size holds up to the next
    /// symbol; the last one, only its own address (past it, nothing says where it ends).
    fn symbol(&self, vaddr: u64) -> Option<&str> {
        let i = self
            .symbols
            .partition_point(|s| s.0 <= vaddr)
            .checked_sub(1)?;
        let (address, size, name) = &self.symbols[i];
        let holds = if *size == 0 {
            vaddr == *address || i + 1 < self.symbols.len()
        } else {
            vaddr - address < *size
        };
        holds.then_some(name.as_str())
    }
}

/// The DWARF sections of `file`, copied out and parsed; `None` when it has no debug
/// information or it does not parse.
fn load_dwarf(file: &object::File<'_>) -> Option<addr2line::Context<Reader>> {
    file.section_by_name(".debug_info")?;
    let endian = if file.is_little_endian() {
        gimli::RunTimeEndian::Little
    } else {
        gimli::RunTimeEndian::Big
    };
    let load = |id: gimli::SectionId| -> Result<Reader, object::Error> {
        let data = match file.section_by_name(id.name()) {
            Some(section) => section.uncompressed_data()?,
            None => std::borrow::Cow::Borrowed(&[][..]),
        };
        Ok(gimli::EndianArcSlice::new(Arc::from(&*data), endian))
    };
    let dwarf = gimli::Dwarf::load(load).ok()?;
    addr2line::Context::from_dwarf(dwarf).ok()
}

/// The bytes of `path`: opened read-only and non-blocking, a regular file of at most `max`
/// bytes, read whole.
fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.file_type().is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    if meta.len() > max {
        return Err(format!(
            "{}: {} bytes, more than the {max} read",
            path.display(),
            meta.len()
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(format!(
            "{}: grew past the {max} bytes read",
            path.display()
        ));
    }
    Ok(bytes)
}
