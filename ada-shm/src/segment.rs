//! Creating, attaching and viewing a POSIX shared-memory segment.
//!
//! Lifecycle:
//! 1. The creator (the controller) calls [`Segment::create`]: `shm_open(O_CREAT|O_EXCL|O_RDWR,
//!    0600)` under a fresh random name, `ftruncate` to the planned size (the kernel zero-fills),
//!    maps it, writes the header with `magic = 0`, and finally publishes `magic` with a release
//!    store. The creator unlinks the name when its `Segment` drops.
//! 2. Another process calls [`Segment::attach`]: it opens the name read-write, maps the size the
//!    kernel reports, loads `magic` with acquire (zero means "not ready, retry"), copies the rest
//!    of the header out of the mapping and validates every field before handing out views. A
//!    segment whose creator pid is gone is reported as [`ShmError::CreatorDead`] unless the caller
//!    asks to salvage it ([`AttachOptions::allow_stale`]).
//!
//! Views: [`Segment::view`] and [`Segment::view_slice`] are the one audited place where an
//! offset becomes a reference. They check bounds and alignment and only hand out types that are
//! [`ShmSafe`]: made of atomics, so a concurrent write by the other process is never a data race
//! and every bit pattern is a valid value.
//!
//! Known limit: a hostile process that shares our uid could shrink the segment after we mapped
//! it, and the next access would fault (`SIGBUS`); the 0600 mode and unguessable names keep other
//! users out, and the controller is the creator, so only the traced process could do this to
//! itself.

use crate::clock::{ClockId, realtime_ns};
use crate::header::{HEADER_SIZE, MAGIC, RegionKind, RegionSpec, SegmentHeader};
use crate::name::{NAME_PREFIX, SegmentName};
use crate::{CacheLine, Off, ShmError};
use core::ptr::NonNull;
use memmap2::{MmapOptions, MmapRaw};
use rustix::fs::Mode;
use rustix::shm;
use std::fs::File;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use zerocopy::{FromBytes, KnownLayout};

/// Types that may be viewed in place inside a segment another process writes.
///
/// # Safety
/// Implementors promise that every byte of the type belongs to an atomic (so another process
/// writing it concurrently is not a data race for this one), that every bit pattern is a valid
/// value (`FromBytes`), and that the type has no padding whose contents matter.
pub unsafe trait ShmSafe: FromBytes + KnownLayout + Sync {}

// SAFETY: an atomic is its own single field; any bit pattern is a valid u32/u64.
unsafe impl ShmSafe for AtomicU32 {}
// SAFETY: as above.
unsafe impl ShmSafe for AtomicU64 {}
// SAFETY: an array of ShmSafe elements has no bytes outside its elements.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {}
// SAFETY: CacheLine adds only padding after a ShmSafe value; padding is never read.
unsafe impl<T: ShmSafe> ShmSafe for CacheLine<T> {}

/// How [`Segment::attach`] treats a segment whose creator has died.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttachOptions {
    /// Attach even when the creator pid is gone (to salvage or clean up what it left).
    pub allow_stale: bool,
}

/// A validated region of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// What it holds.
    pub kind: RegionKind,
    /// Version of the region's layout.
    pub version: u32,
    /// Offset from the start of the segment.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

impl Region {
    /// A typed offset `delta` bytes into the region, if at least `size_of::<T>()` bytes remain.
    pub fn at<T>(&self, delta: u64) -> Result<Off<T>, ShmError> {
        let len = core::mem::size_of::<T>() as u64;
        match delta.checked_add(len) {
            Some(end) if end <= self.size => Ok(Off::new(self.offset + delta)),
            _ => Err(ShmError::RegionTooSmall {
                kind: self.kind as u32,
                size: self.size,
                needed: delta.saturating_add(len),
            }),
        }
    }
}

/// A mapped ADA segment. Dropping the creator's `Segment` unlinks the name; the memory stays
/// valid for every process that still has it mapped.
///
/// ```
/// use ada_shm::clock::ClockId;
/// use ada_shm::sync::{AtomicU64, Ordering};
/// use ada_shm::{Off, RegionKind, RegionSpec, Segment};
///
/// let spec = RegionSpec { kind: RegionKind::Control, version: 1, size: 4096 };
/// let segment = Segment::create(&[spec], ClockId::Monotonic)?;
/// let region = segment.region(RegionKind::Control)?;
/// assert_eq!(region.size, 4096);
///
/// // A typed offset into the region becomes a reference only through a checked view.
/// let counter: Off<AtomicU64> = region.at(64)?;
/// segment.view(counter)?.fetch_add(1, Ordering::Relaxed);
/// assert_eq!(segment.view(counter)?.load(Ordering::Relaxed), 1);
///
/// // Past the region's end, or misaligned: an error, never a bad reference.
/// assert!(region.at::<AtomicU64>(4096).is_err());
/// assert!(segment.view(Off::<AtomicU64>::new(region.offset + 4)).is_err());
/// # Ok::<(), ada_shm::ShmError>(())
/// ```
pub struct Segment {
    name: SegmentName,
    map: MmapRaw,
    header: SegmentHeader,
    owner: bool,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("name", &self.name)
            .field("size", &self.header.total_size)
            .field(
                "session_id",
                &format_args!("{:016x}", self.header.session_id),
            )
            .field("creator_pid", &self.header.creator_pid)
            .field("owner", &self.owner)
            .finish()
    }
}

impl Segment {
    /// Creates a new segment holding `regions`, under a fresh unguessable name.
    pub fn create(regions: &[RegionSpec], clock: ClockId) -> Result<Segment, ShmError> {
        let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
        let mut last_err = None;
        // A collision needs two equal 64-bit random ids; retrying covers a stale name anyway.
        for _ in 0..3 {
            let (name, session_id) = SegmentName::generate(pid)?;
            match Self::create_named(&name, session_id, regions, clock) {
                Err(e @ ShmError::AlreadyExists { .. }) => last_err = Some(e),
                other => return other,
            }
        }
        Err(last_err.expect("loop ran"))
    }

    /// Creates a segment under an explicit `name` (exclusively: it fails if the name exists).
    pub fn create_named(
        name: &SegmentName,
        session_id: u64,
        regions: &[RegionSpec],
        clock: ClockId,
    ) -> Result<Segment, ShmError> {
        let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
        let header = SegmentHeader::plan(regions, session_id, pid, clock, realtime_ns())?;
        let fd = shm::open(
            name.as_str(),
            shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR,
            Mode::RUSR | Mode::WUSR,
        )
        .map_err(|e| ShmError::from_errno("shm_open", name.as_str(), e))?;
        // From here on a failure must not leave the name behind.
        let unlink_on_err = |e: ShmError| {
            let _ = shm::unlink(name.as_str());
            e
        };
        rustix::fs::ftruncate(&fd, header.total_size)
            .map_err(|e| unlink_on_err(ShmError::from_errno("ftruncate", name.as_str(), e)))?;
        let file = File::from(fd);
        let map = MmapOptions::new()
            .len(header.total_size as usize)
            .map_raw(&file)
            .map_err(|source| {
                unlink_on_err(ShmError::Os {
                    op: "mmap",
                    name: name.to_string(),
                    source,
                })
            })?;
        let base = map.as_mut_ptr();
        let mut unpublished = header;
        unpublished.magic = 0;
        // SAFETY: the mapping is at least total_size >= HEADER_SIZE bytes long and page-aligned;
        // nobody else can have published views yet because magic is still zero.
        unsafe {
            core::ptr::copy_nonoverlapping(
                (&raw const unpublished).cast::<u8>(),
                base,
                HEADER_SIZE,
            );
        }
        // SAFETY: offset 0 is page-aligned (so 8-aligned) and inside the mapping; from now on the
        // magic word is only accessed atomically, by every process.
        let magic = unsafe { AtomicU64::from_ptr(base.cast::<u64>()) };
        // Release: a reader that acquires a non-zero magic sees every header byte written above.
        magic.store(MAGIC, Ordering::Release);
        Ok(Segment {
            name: name.clone(),
            map,
            header,
            owner: true,
        })
    }

    /// Attaches to an existing segment and validates its header.
    pub fn attach(name: &SegmentName, options: AttachOptions) -> Result<Segment, ShmError> {
        let fd = shm::open(name.as_str(), shm::OFlags::RDWR, Mode::empty())
            .map_err(|e| ShmError::from_errno("shm_open", name.as_str(), e))?;
        let stat =
            rustix::fs::fstat(&fd).map_err(|e| ShmError::from_errno("fstat", name.as_str(), e))?;
        let size = u64::try_from(stat.st_size).unwrap_or(0);
        if size == 0 {
            // The creator has opened but not yet sized it.
            return Err(ShmError::NotReady {
                name: name.to_string(),
            });
        }
        if size < HEADER_SIZE as u64 {
            return Err(ShmError::SizeOutOfBounds {
                what: "segment smaller than its header",
                claimed: HEADER_SIZE as u64,
                actual: size,
            });
        }
        let len = usize::try_from(size).map_err(|_| ShmError::SizeOutOfBounds {
            what: "segment larger than the address space",
            claimed: size,
            actual: usize::MAX as u64,
        })?;
        let file = File::from(fd);
        let map = MmapOptions::new()
            .len(len)
            .map_raw(&file)
            .map_err(|source| ShmError::Os {
                op: "mmap",
                name: name.to_string(),
                source,
            })?;
        let base = map.as_mut_ptr();
        // SAFETY: offset 0 is page-aligned and inside the mapping; the magic word is only ever
        // accessed atomically.
        let magic = unsafe { AtomicU64::from_ptr(base.cast::<u64>()) };
        // Acquire: pairs with the creator's release store; every header byte is visible after.
        let magic_value = magic.load(Ordering::Acquire);
        // SegmentHeader is FromBytes, so any bytes are a valid value, and a volatile copy never
        // hands out a reference into memory the peer may write.
        let header_ptr = base.cast::<SegmentHeader>();
        // SAFETY: the mapping holds at least HEADER_SIZE bytes, page-aligned.
        let mut header: SegmentHeader = unsafe { core::ptr::read_volatile(header_ptr) };
        header.magic = magic_value;
        header.validate(name.as_str(), size)?;
        if !options.allow_stale && !crate::process::exists(header.creator_pid) {
            return Err(ShmError::CreatorDead {
                name: name.to_string(),
                pid: header.creator_pid,
            });
        }
        Ok(Segment {
            name: name.clone(),
            map,
            header,
            owner: false,
        })
    }

    /// The segment's name.
    pub fn name(&self) -> &SegmentName {
        &self.name
    }

    /// The validated header (a private copy: the shared one is immutable after publication).
    pub fn header(&self) -> &SegmentHeader {
        &self.header
    }

    /// Size of the mapping in bytes.
    pub fn len(&self) -> u64 {
        self.header.total_size
    }

    /// Always false: a segment holds at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether this process created the segment (and will unlink it on drop).
    pub fn is_owner(&self) -> bool {
        self.owner
    }

    /// Whether the creator process is still running.
    pub fn creator_alive(&self) -> bool {
        crate::process::exists(self.header.creator_pid)
    }

    /// The region of `kind`, or [`ShmError::MissingRegion`].
    pub fn region(&self, kind: RegionKind) -> Result<Region, ShmError> {
        self.header
            .region(kind)
            .map(|r| Region {
                kind,
                version: r.version,
                offset: r.offset,
                size: r.size,
            })
            .ok_or(ShmError::MissingRegion { kind: kind as u32 })
    }

    /// Resolves `off` to a reference, after checking it lies inside the mapping and is aligned.
    pub fn view<T: ShmSafe>(&self, off: Off<T>) -> Result<&T, ShmError> {
        let ptr = self.checked_ptr(
            off.raw(),
            core::mem::size_of::<T>() as u64,
            core::mem::align_of::<T>() as u64,
        )?;
        // checked_ptr proved [off, off + size_of::<T>()) lies inside the mapping, which lives as
        // long as `self`, and is aligned for T. T: ShmSafe (all atomics, any bit pattern valid).
        // SAFETY: so a shared reference is sound even while another process writes the memory.
        Ok(unsafe { &*ptr.as_ptr().cast::<T>() })
    }

    /// Resolves `count` consecutive `T`s starting at `off`.
    pub fn view_slice<T: ShmSafe>(&self, off: Off<T>, count: u64) -> Result<&[T], ShmError> {
        let size = core::mem::size_of::<T>() as u64;
        let len = count.checked_mul(size).ok_or(ShmError::OutOfBounds {
            offset: off.raw(),
            len: u64::MAX,
            align: core::mem::align_of::<T>() as u64,
            size: self.len(),
        })?;
        let ptr = self.checked_ptr(off.raw(), len, core::mem::align_of::<T>() as u64)?;
        // SAFETY: as in `view`, for `count` elements: the whole range is inside the mapping and
        // aligned, and T: ShmSafe.
        Ok(unsafe { core::slice::from_raw_parts(ptr.as_ptr().cast::<T>(), count as usize) })
    }

    /// A raw pointer to `len` bytes at `offset`, bounds-checked, for byte-level record access
    /// (ring payloads) that copies in or out and never forms references.
    pub fn bytes_ptr(&self, offset: u64, len: u64) -> Result<NonNull<u8>, ShmError> {
        self.checked_ptr(offset, len, 1)
    }

    fn checked_ptr(&self, offset: u64, len: u64, align: u64) -> Result<NonNull<u8>, ShmError> {
        let size = self.len();
        let in_bounds = offset.checked_add(len).is_some_and(|end| end <= size);
        if !in_bounds || align == 0 || !offset.is_multiple_of(align) {
            return Err(ShmError::OutOfBounds {
                offset,
                len,
                align,
                size,
            });
        }
        // SAFETY: offset <= size and the mapping is `size` bytes long, so the result stays inside
        // (or one past the end of) the same allocation.
        let ptr = unsafe { self.map.as_mut_ptr().add(offset as usize) };
        // The base is page-aligned, so `offset % align == 0` makes the address aligned.
        Ok(NonNull::new(ptr).expect("mapping is never at address zero"))
    }

    /// Removes the name now (the creator also does this on drop). Processes that attached keep
    /// their mapping.
    pub fn unlink(&self) -> Result<(), ShmError> {
        shm::unlink(self.name.as_str())
            .map_err(|e| ShmError::from_errno("shm_unlink", self.name.as_str(), e))
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        if self.owner {
            // Already gone (someone cleaned up) is fine; nothing else can be done in drop.
            let _ = shm::unlink(self.name.as_str());
        }
    }
}

/// What a file in `/dev/shm` named like an ADA segment turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SegmentState {
    /// The creator pid in its name is running: in use (or being created), never touched.
    Live,
    /// Stale: a valid ADA segment of the current user whose creator (the pid in its name, which
    /// its header repeats) is not running. [`remove_stale_segments`] removes these, and only
    /// these.
    Stale,
    /// The file belongs to another user: left alone.
    OtherUser {
        /// Its owner.
        uid: u32,
    },
    /// Its creator is gone but the file is not a valid ADA segment (or its header names another
    /// creator): left alone.
    Invalid {
        /// Why it is not one.
        reason: String,
    },
}

/// An ADA segment found in the system, and whether its creator still runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleSegment {
    /// The segment name.
    pub name: SegmentName,
    /// The creator pid embedded in the name.
    pub pid: u32,
    /// Whether that pid is alive.
    pub creator_alive: bool,
    /// What the segment is, and so whether it may be removed.
    pub state: SegmentState,
}

/// Lists the ADA segments in `/dev/shm` (Linux) with whether their creator is alive, so a
/// controller or `ada` command can report (and remove) segments left by crashed controllers.
///
/// A segment is [`SegmentState::Stale`] only if its name is an ADA name (`ada_<pid>_<16 hex>`),
/// the file belongs to the effective user, its header validates, the header's creator pid is the
/// name's, and that pid is not running. Known limit: a pid the kernel has since reused for
/// another process counts as alive, so such a segment is kept (and listed as live).
pub fn list_segments() -> Vec<StaleSegment> {
    let Ok(dir) = std::fs::read_dir("/dev/shm") else {
        return Vec::new();
    };
    let mut found: Vec<StaleSegment> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|file| {
            let rest = file.strip_prefix(NAME_PREFIX)?;
            let (pid, sid) = rest.split_once('_')?;
            let pid: u32 = pid.parse().ok()?;
            if sid.len() != 16 || !sid.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let name = SegmentName::parse(&file).ok()?;
            let creator_alive = crate::process::exists(pid);
            let state = if creator_alive {
                SegmentState::Live
            } else {
                // Gone meanwhile (its creator or another cleaner removed it): not listed.
                probe_dead_creator(&name, pid)?
            };
            Some(StaleSegment {
                name,
                pid,
                creator_alive,
                state,
            })
        })
        .collect();
    found.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    found
}

/// Removes every [`SegmentState::Stale`] segment [`list_segments`] finds, and returns each with
/// the outcome of its `shm_unlink` (a segment another cleaner removed first counts as removed).
/// Segments in any other state are never touched.
pub fn remove_stale_segments() -> Vec<(StaleSegment, Result<(), ShmError>)> {
    remove_stale_segments_where(|_| true)
}

/// [`remove_stale_segments`], but only the stale segments `remove` agrees to (a caller that can
/// look inside, e.g. at processes still recording into a dead controller's segment, keeps
/// those).
pub fn remove_stale_segments_where(
    mut remove: impl FnMut(&StaleSegment) -> bool,
) -> Vec<(StaleSegment, Result<(), ShmError>)> {
    list_segments()
        .into_iter()
        .filter(|s| s.state == SegmentState::Stale && remove(s))
        .map(|s| {
            let result = match shm::unlink(s.name.as_str()) {
                Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
                Err(e) => Err(ShmError::from_errno("shm_unlink", s.name.as_str(), e)),
            };
            (s, result)
        })
        .collect()
}

/// Classifies a segment whose name's pid `pid` is not running; `None` if it no longer exists.
fn probe_dead_creator(name: &SegmentName, pid: u32) -> Option<SegmentState> {
    let invalid = |reason: String| Some(SegmentState::Invalid { reason });
    let fd = match shm::open(name.as_str(), shm::OFlags::RDONLY, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return None,
        Err(e) => {
            // Unreadable: most likely another user's (mode 0600); say whose if we can tell.
            use std::os::unix::fs::MetadataExt;
            return match std::fs::metadata(format!("/dev/shm{name}")) {
                Ok(meta) if meta.uid() != rustix::process::geteuid().as_raw() => {
                    Some(SegmentState::OtherUser { uid: meta.uid() })
                }
                Ok(_) => invalid(format!("cannot open it: {e}")),
                Err(_) => None,
            };
        }
    };
    let stat = match rustix::fs::fstat(&fd) {
        Ok(stat) => stat,
        Err(e) => return invalid(format!("cannot stat it: {e}")),
    };
    if stat.st_uid != rustix::process::geteuid().as_raw() {
        return Some(SegmentState::OtherUser { uid: stat.st_uid });
    }
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    let mut bytes = [0u8; HEADER_SIZE];
    match rustix::io::pread(&fd, &mut bytes, 0) {
        Ok(n) if n == HEADER_SIZE => {}
        Ok(n) => {
            return invalid(format!(
                "{n} bytes, smaller than an ADA header ({HEADER_SIZE} bytes)"
            ));
        }
        Err(e) => return invalid(format!("cannot read its header: {e}")),
    }
    let header = SegmentHeader::read_from_bytes(&bytes).expect("HEADER_SIZE bytes");
    if let Err(e) = header.validate(name.as_str(), size) {
        return invalid(format!("not a valid ADA segment header: {e}"));
    }
    if header.creator_pid != pid {
        return invalid(format!(
            "its header names creator pid {}, not the name's {pid}",
            header.creator_pid
        ));
    }
    Some(SegmentState::Stale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::RegionSpec;

    fn specs() -> Vec<RegionSpec> {
        vec![
            RegionSpec {
                kind: RegionKind::Control,
                version: 1,
                size: 512,
            },
            RegionSpec {
                kind: RegionKind::Registry,
                version: 1,
                size: 3 * 4096,
            },
        ]
    }

    #[test]
    fn create_attach_view_and_unlink() {
        let seg = Segment::create(&specs(), ClockId::Monotonic).unwrap();
        assert!(seg.is_owner());
        let other = Segment::attach(seg.name(), AttachOptions::default()).unwrap();
        assert_eq!(other.header(), seg.header());
        let region = seg.region(RegionKind::Registry).unwrap();
        let off = region.at::<AtomicU64>(8).unwrap();
        seg.view(off).unwrap().store(0xabcd, Ordering::Relaxed);
        assert_eq!(other.view(off).unwrap().load(Ordering::Relaxed), 0xabcd);
        // Out of bounds and misaligned offsets are errors, not UB.
        assert!(seg.view(Off::<AtomicU64>::new(seg.len())).is_err());
        assert!(seg.view(Off::<AtomicU64>::new(4097)).is_err());
        assert!(seg.view_slice(off, u64::MAX).is_err());
        assert!(region.at::<AtomicU64>(region.size).is_err());
        let name = seg.name().clone();
        drop(seg);
        assert!(matches!(
            Segment::attach(&name, AttachOptions::default()),
            Err(ShmError::NotFound { .. })
        ));
        // The attached mapping stays usable after the unlink.
        assert_eq!(other.view(off).unwrap().load(Ordering::Relaxed), 0xabcd);
    }

    #[test]
    fn segment_is_private_to_its_user() {
        let seg = Segment::create(&specs(), ClockId::Monotonic).unwrap();
        let meta = std::fs::metadata(format!("/dev/shm{}", seg.name())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let again = Segment::create_named(seg.name(), 1, &specs(), ClockId::Monotonic);
        assert!(matches!(again, Err(ShmError::AlreadyExists { .. })));
        assert!(
            list_segments()
                .iter()
                .any(|s| s.name == *seg.name() && s.creator_alive)
        );
    }
}
