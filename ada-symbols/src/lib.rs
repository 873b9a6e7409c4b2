//! `ada-symbols`: names for code addresses recorded by the ADA tracer.
//!
//! What it is: a small symbolizer for traces read **after** the run. A trace of functions
//! traced by address (`-finstrument-functions`: each event's function id is the function's
//! address in its process) records the modules each traced process had loaded — one
//! [`Module`] per file-backed executable mapping: path, address range, file offset and, when
//! the controller could read it, the ELF build id. Given those modules and an address,
//! [`Symbolizer::symbolize`] returns a [`Resolved`]: which module, the offset in it, the
//! function's name (from the symbol table, else from DWARF; C++ names demangled with
//! `cpp_demangle`, Rust names with `rustc-demangle`) and the source file and line when the
//! module has DWARF line information.
//!
//! How an address is mapped: the address's offset in its mapping plus the mapping's file
//! offset is a file offset; the ELF `PT_LOAD` segment holding that file offset turns it into
//! the virtual address the symbol table and DWARF use. This is right for position-independent
//! executables, shared libraries (also ones loaded with `dlopen`) and fixed-address
//! executables alike, whatever the linker's segment layout.
//!
//! Each module file is read once and cached (its symbol table sorted, its DWARF parsed lazily
//! by `addr2line`). A file is opened without blocking, must be a regular file of at most
//! [`MAX_MODULE_BYTES`], and is read whole into memory: no memory map, so a file truncated
//! while it is read cannot crash the reader. Module paths usually come from a trace file, which
//! is not trusted: whatever a path names, the result is a [`Resolved`] (or `None` for an
//! address in no module), never a panic.
//!
//! A stripped module yields its path and offset with no name and [`Problem::NoSymbol`]; a file
//! that is gone, unreadable, not a regular file, too large or not ELF yields
//! [`Problem::CannotRead`] saying why; a file whose build id differs from the one recorded
//! (it was rebuilt or replaced since the run) yields [`Problem::BuildIdMismatch`] and no names,
//! which would be wrong.
//!
//! What it is not: it reads no process memory and no `/proc` (the controller records the
//! modules during the run: `ada_controller::modules`), runs no debuginfod lookups, follows no
//! `.gnu_debuglink` or split-DWARF files, and understands only ELF. It is never used in the
//! traced process or the controller's drain.
//!
//! ```
//! use ada_symbols::{Module, Problem, Symbolizer};
//!
//! let modules = [Module::new("/definitely/not/here", 0x1000, 0x2000, 0)];
//! let mut symbolizer = Symbolizer::new();
//! let found = symbolizer.symbolize(&modules, 0x1234).expect("inside the module");
//! assert_eq!(found.offset, 0x234);
//! assert!(found.function.is_none());
//! assert!(matches!(found.problem, Some(Problem::CannotRead(_))));
//! assert!(symbolizer.symbolize(&modules, 0x5000).is_none());
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod demangle;
mod image;

/// The README's examples, run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use demangle::demangle;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::Image;

/// The largest module file [`Symbolizer`] reads: 1 GiB. A larger file is
/// [`Problem::CannotRead`].
pub const MAX_MODULE_BYTES: u64 = 1 << 30;

/// Module files a [`Symbolizer`] keeps parsed at once; when a new one would exceed this, the
/// cache is emptied first.
pub const MAX_CACHED_MODULES: usize = 256;

/// One file-backed executable mapping of a traced process, as the controller recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Module {
    /// The mapped file.
    pub path: PathBuf,
    /// First address of the mapping.
    pub start: u64,
    /// One past its last address.
    pub end: u64,
    /// The file offset the mapping starts at.
    pub file_offset: u64,
    /// The file's ELF build id, when it was recorded.
    pub build_id: Option<Vec<u8>>,
}

impl Module {
    /// A module mapped at `start..end` from `file_offset` of `path`, build id unknown.
    pub fn new(path: impl Into<PathBuf>, start: u64, end: u64, file_offset: u64) -> Self {
        Module {
            path: path.into(),
            start,
            end,
            file_offset,
            build_id: None,
        }
    }

    /// With the file's build id.
    pub fn with_build_id(mut self, build_id: Vec<u8>) -> Self {
        self.build_id = Some(build_id);
        self
    }

    /// The module's base: the address its file offset 0 would be mapped at (`start -
    /// file_offset`, wrapping).
    pub fn base(&self) -> u64 {
        self.start.wrapping_sub(self.file_offset)
    }

    /// Whether `address` lies in the mapping.
    pub fn contains(&self, address: u64) -> bool {
        self.start <= address && address < self.end
    }

    /// The file name of the path (the whole path when it has none), for short labels.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .unwrap_or(self.path.as_os_str())
            .to_string_lossy()
            .into_owned()
    }
}

/// Why a [`Resolved`] has no function name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The module's file could not be used: gone, unreadable, not a regular file, larger than
    /// [`MAX_MODULE_BYTES`], or not an ELF file. The text says which.
    CannotRead(String),
    /// The file's build id is not the one recorded during the run (the file was rebuilt or
    /// replaced since): its names would be wrong, so none are given.
    BuildIdMismatch {
        /// The build id recorded during the run.
        recorded: Vec<u8>,
        /// The file's build id now (`None`: it has none).
        found: Option<Vec<u8>>,
    },
    /// The file was read, but neither its symbol table nor its debug information names the
    /// address (a stripped module, or code without a symbol).
    NoSymbol,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::CannotRead(why) => write!(f, "cannot read the module: {why}"),
            Problem::BuildIdMismatch { recorded, found } => {
                write!(
                    f,
                    "the module changed since the run (build id {} recorded, ",
                    hex(recorded)
                )?;
                match found {
                    Some(id) => write!(f, "{} now)", hex(id)),
                    None => write!(f, "none now)"),
                }
            }
            Problem::NoSymbol => write!(f, "no name: the module has no symbol for it (stripped?)"),
        }
    }
}

/// What [`Symbolizer::symbolize`] found for an address inside a module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The module's path.
    pub module: PathBuf,
    /// The address's offset from the module's [base](Module::base).
    pub offset: u64,
    /// The function's name, demangled (`None`: see [`problem`](Resolved::problem)).
    pub function: Option<String>,
    /// The source file, when the module has DWARF line information for the address.
    pub file: Option<String>,
    /// The source line, likewise.
    pub line: Option<u32>,
    /// Why `function` is `None` (`None` when it is known).
    pub problem: Option<Problem>,
}

impl Resolved {
    /// `module+0x<offset>`, with the module's file name.
    pub fn module_offset(&self) -> String {
        let name = self
            .module
            .file_name()
            .unwrap_or(self.module.as_os_str())
            .to_string_lossy();
        format!("{name}+0x{:x}", self.offset)
    }

    /// The function name, else [`module_offset`](Resolved::module_offset).
    pub fn label(&self) -> String {
        match &self.function {
            Some(f) => f.clone(),
            None => self.module_offset(),
        }
    }

    /// `file:line`, when both are known.
    pub fn file_line(&self) -> Option<String> {
        Some(format!("{}:{}", self.file.as_ref()?, self.line?))
    }
}

/// Resolves addresses against modules, caching each module file it reads (see the
/// [crate docs](crate)).
#[derive(Default)]
pub struct Symbolizer {
    images: HashMap<PathBuf, Result<Arc<Image>, String>>,
}

impl std::fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbolizer")
            .field("cached", &self.images.len())
            .finish()
    }
}

impl Symbolizer {
    /// A symbolizer with nothing cached.
    pub fn new() -> Self {
        Symbolizer::default()
    }

    /// Resolves `address` against `modules` (one process's): `None` when no module contains
    /// it. When several do (a library unloaded and another loaded at its addresses), the last
    /// in the slice wins.
    pub fn symbolize(&mut self, modules: &[Module], address: u64) -> Option<Resolved> {
        let module = modules.iter().rev().find(|m| m.contains(address))?;
        let offset = address.wrapping_sub(module.base());
        let mut resolved = Resolved {
            module: module.path.clone(),
            offset,
            function: None,
            file: None,
            line: None,
            problem: None,
        };
        let image = match self.image(&module.path) {
            Ok(image) => image,
            Err(why) => {
                resolved.problem = Some(Problem::CannotRead(why));
                return Some(resolved);
            }
        };
        if let Some(recorded) = &module.build_id
            && image.build_id() != Some(recorded.as_slice())
        {
            resolved.problem = Some(Problem::BuildIdMismatch {
                recorded: recorded.clone(),
                found: image.build_id().map(<[u8]>::to_vec),
            });
            return Some(resolved);
        }
        // The address's file offset, then the virtual address of that offset in the file.
        let file_offset = (address - module.start).wrapping_add(module.file_offset);
        let vaddr = image.vaddr_of_file_offset(file_offset);
        let found = image.lookup(vaddr);
        resolved.function = found.function;
        resolved.file = found.file;
        resolved.line = found.line;
        if resolved.function.is_none() {
            resolved.problem = Some(Problem::NoSymbol);
        }
        Some(resolved)
    }

    /// The parsed file at `path`, read on first use.
    fn image(&mut self, path: &Path) -> Result<Arc<Image>, String> {
        if let Some(cached) = self.images.get(path) {
            return cached.clone();
        }
        if self.images.len() >= MAX_CACHED_MODULES {
            self.images.clear();
        }
        let loaded = Image::load(path, MAX_MODULE_BYTES).map(Arc::new);
        self.images.insert(path.to_owned(), loaded.clone());
        loaded
    }
}

/// `bytes` as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lower-case or upper-case hex text as bytes (`None` for an odd length or a non-hex digit).
pub fn parse_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_bad_text() {
        assert_eq!(hex(&[0x0f, 0xa0]), "0fa0");
        assert_eq!(parse_hex("0fA0"), Some(vec![0x0f, 0xa0]));
        assert_eq!(parse_hex("0fa"), None);
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(parse_hex("é0"), None);
        assert_eq!(parse_hex(""), Some(vec![]));
    }

    #[test]
    fn an_address_outside_every_module_is_none_and_the_last_match_wins() {
        let modules = [
            Module::new("/nope/a", 0x1000, 0x2000, 0),
            Module::new("/nope/b", 0x1800, 0x3000, 0x800),
        ];
        let mut s = Symbolizer::new();
        assert!(s.symbolize(&modules, 0xfff).is_none());
        assert!(s.symbolize(&modules, 0x3000).is_none());
        let r = s.symbolize(&modules, 0x1900).unwrap();
        assert_eq!(r.module, Path::new("/nope/b"));
        assert_eq!(r.offset, 0x900, "from the base 0x1000 = 0x1800 - 0x800");
        assert_eq!(r.module_offset(), "b+0x900");
        assert_eq!(r.label(), "b+0x900");
        assert!(matches!(r.problem, Some(Problem::CannotRead(_))));
    }
}
