//! Physical frame allocator over 4 KiB frames.
//!
//! [`FrameAllocator`] keeps one bit per frame (1 = used or unavailable, 0 =
//! free) in a caller-provided bitmap of `u64` words, viewed as a `bitvec`
//! bit slice (whose searches and fills go a word at a time), so it needs
//! no heap and works the same
//! in the kernel (bitmap carved out of RAM at boot) and on the host (bitmap in
//! a `Vec`, for the unit tests below).
//!
//! A new allocator covers a fixed span of frames, all of them *used*. Memory
//! becomes allocatable only through [`FrameAllocator::add_range`], which the
//! kernel calls for each usable region of the firmware memory map, and later
//! for any range it gives back (for example the unused tails of the module
//! regions). [`FrameAllocator::reserve_range`] takes frames out again (the
//! kernel image, the first MiB).
//!
//! Allocation is first fit from the lowest address, contiguous, with an
//! alignment given in frames and counted from physical address 0. Errors are
//! values, never panics: exhaustion is [`OutOfFrames`], and freeing a frame
//! that is already free, an unaligned address or an address outside the span
//! is a [`FrameError`] that leaves the allocator unchanged.
#![cfg_attr(not(test), no_std)]

use bitvec::prelude::{BitSlice, Lsb0};
use core::fmt;

/// Size of one frame in bytes.
pub const FRAME_SIZE: u64 = 4096;

/// A physical address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct PhysAddr(pub u64);

impl PhysAddr {
    /// Wraps a raw physical address.
    pub const fn new(addr: u64) -> Self {
        PhysAddr(addr)
    }

    /// The raw address.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// True if the address is a multiple of [`FRAME_SIZE`].
    pub const fn is_frame_aligned(self) -> bool {
        self.0.is_multiple_of(FRAME_SIZE)
    }
}

impl fmt::Debug for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhysAddr({:#x})", self.0)
    }
}

impl fmt::Display for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// No run of free frames of the requested length and alignment exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfFrames {
    /// Frames requested.
    pub count: usize,
    /// Alignment requested, in frames.
    pub align_frames: usize,
}

impl fmt::Display for OutOfFrames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "out of frames: no free run of {} frame(s) aligned to {} frame(s)",
            self.count, self.align_frames
        )
    }
}

/// Why a free, add or construction request was refused. The allocator is
/// unchanged when one of these is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The address is not a multiple of [`FRAME_SIZE`].
    Unaligned(PhysAddr),
    /// Part of the range lies outside the frames this allocator covers.
    OutOfRange {
        /// Start of the offending range.
        start: PhysAddr,
        /// End (exclusive) of the offending range.
        end: PhysAddr,
    },
    /// [`FrameAllocator::free`] of a frame that is already free.
    DoubleFree(PhysAddr),
    /// [`FrameAllocator::add_range`] over a frame that is already free.
    AlreadyFree(PhysAddr),
    /// A count of zero frames.
    ZeroCount,
    /// The bitmap given to [`FrameAllocator::new`] is too small.
    BitmapTooSmall {
        /// Words needed ([`bitmap_words`]).
        needed: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Unaligned(a) => write!(f, "address {a} is not frame aligned"),
            FrameError::OutOfRange { start, end } => {
                write!(f, "range {start}..{end} is outside the allocator's span")
            }
            FrameError::DoubleFree(a) => write!(f, "double free of frame {a}"),
            FrameError::AlreadyFree(a) => write!(f, "frame {a} is already free"),
            FrameError::ZeroCount => write!(f, "zero frame count"),
            FrameError::BitmapTooSmall { needed } => {
                write!(f, "bitmap too small: {needed} words needed")
            }
        }
    }
}

/// Number of `u64` bitmap words needed to track `nframes` frames.
pub const fn bitmap_words(nframes: u64) -> usize {
    nframes.div_ceil(64) as usize
}

/// Bitmap frame allocator over the frames `base .. base + nframes * 4 KiB`.
pub struct FrameAllocator<'a> {
    /// One bit per frame, 1 = used (exactly `nframes` bits).
    bits: &'a mut BitSlice<u64, Lsb0>,
    /// Frame number (address / 4 KiB) of the first covered frame.
    base: u64,
    /// Number of covered frames.
    nframes: u64,
    /// Number of free frames.
    free: u64,
    /// No frame below this index is free.
    hint: u64,
}

impl fmt::Debug for FrameAllocator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameAllocator")
            .field("start", &self.span().0)
            .field("end", &self.span().1)
            .field("free", &self.free)
            .finish()
    }
}

impl<'a> FrameAllocator<'a> {
    /// Creates an allocator covering `nframes` frames from `base`, all used.
    ///
    /// `bits` must hold at least [`bitmap_words`]`(nframes)` words; its
    /// previous contents are overwritten.
    pub fn new(bits: &'a mut [u64], base: PhysAddr, nframes: u64) -> Result<Self, FrameError> {
        if !base.is_frame_aligned() {
            return Err(FrameError::Unaligned(base));
        }
        let needed = bitmap_words(nframes);
        if bits.len() < needed {
            return Err(FrameError::BitmapTooSmall { needed });
        }
        let bits = &mut BitSlice::from_slice_mut(&mut bits[..needed])[..nframes as usize];
        bits.fill(true);
        Ok(FrameAllocator {
            bits,
            base: base.0 / FRAME_SIZE,
            nframes,
            free: 0,
            hint: nframes,
        })
    }

    /// The covered span `[start, end)` in bytes.
    pub fn span(&self) -> (PhysAddr, PhysAddr) {
        (
            PhysAddr(self.base * FRAME_SIZE),
            PhysAddr((self.base + self.nframes) * FRAME_SIZE),
        )
    }

    /// Number of free frames.
    pub fn free_count(&self) -> u64 {
        self.free
    }

    /// Number of covered frames (free or not).
    pub fn total_frames(&self) -> u64 {
        self.nframes
    }

    /// True if the frame containing `addr` is covered and free.
    pub fn is_free(&self, addr: PhysAddr) -> bool {
        match self.index_of(addr.0 / FRAME_SIZE) {
            Some(i) => !self.bit(i),
            None => false,
        }
    }

    /// Makes the whole frames inside `[start, end)` allocatable and returns
    /// how many there were. `start` is rounded up and `end` down to frame
    /// boundaries. Fails, changing nothing, if any of those frames is outside
    /// the span or already free.
    pub fn add_range(&mut self, start: PhysAddr, end: PhysAddr) -> Result<u64, FrameError> {
        let first = start.0.div_ceil(FRAME_SIZE);
        let last = end.0 / FRAME_SIZE;
        if last <= first {
            return Ok(0);
        }
        let (lo, hi) = self
            .indices(first, last)
            .ok_or(FrameError::OutOfRange { start, end })?;
        if let Some(i) = self.first_clear(lo, hi) {
            return Err(FrameError::AlreadyFree(self.addr_of(i)));
        }
        self.set_range(lo, hi, false);
        Ok(hi - lo)
    }

    /// Takes the frames touching `[start, end)` out of circulation (rounding
    /// outward), ignoring the part outside the span, and returns how many of
    /// them were free. Frames already used stay used: this is how the kernel
    /// excludes its own image and the first MiB from the firmware map.
    pub fn reserve_range(&mut self, start: PhysAddr, end: PhysAddr) -> u64 {
        let first = (start.0 / FRAME_SIZE).max(self.base);
        let last = end.0.div_ceil(FRAME_SIZE).min(self.base + self.nframes);
        if last <= first {
            return 0;
        }
        let range = &mut self.bits[(first - self.base) as usize..(last - self.base) as usize];
        let taken = range.count_zeros() as u64;
        range.fill(true);
        self.free -= taken;
        taken
    }

    /// Allocates `count` contiguous frames whose first frame number is a
    /// multiple of `align_frames` (0 counts as 1), lowest address first.
    pub fn alloc(&mut self, count: usize, align_frames: usize) -> Result<PhysAddr, OutOfFrames> {
        let err = OutOfFrames {
            count,
            align_frames,
        };
        let count = count as u64;
        let align = align_frames.max(1) as u64;
        if count == 0 || count > self.free {
            return Err(err);
        }
        let mut i = match self.first_clear(self.hint, self.nframes) {
            Some(i) => i,
            None => return Err(err),
        };
        // Nothing below the first free frame is free: remember that.
        self.hint = i;
        loop {
            // Align the candidate (absolute frame numbers).
            let abs = self.base + i;
            i = abs.div_ceil(align) * align - self.base;
            if i + count > self.nframes {
                return Err(err);
            }
            match self.first_set(i, i + count) {
                None => {
                    self.set_range(i, i + count, true);
                    if i == self.hint {
                        self.hint = i + count;
                    }
                    return Ok(self.addr_of(i));
                }
                Some(used) => match self.first_clear(used + 1, self.nframes) {
                    Some(next) => i = next,
                    None => return Err(err),
                },
            }
        }
    }

    /// Frees `count` frames starting at `addr`. Fails, changing nothing, if
    /// `addr` is unaligned, the range leaves the span, or a frame in it is
    /// already free (a double free).
    pub fn free(&mut self, addr: PhysAddr, count: usize) -> Result<(), FrameError> {
        if !addr.is_frame_aligned() {
            return Err(FrameError::Unaligned(addr));
        }
        if count == 0 {
            return Err(FrameError::ZeroCount);
        }
        let first = addr.0 / FRAME_SIZE;
        let last = first
            .checked_add(count as u64)
            .ok_or(FrameError::OutOfRange {
                start: addr,
                end: PhysAddr(u64::MAX),
            })?;
        let (lo, hi) = self.indices(first, last).ok_or(FrameError::OutOfRange {
            start: addr,
            end: PhysAddr(last.saturating_mul(FRAME_SIZE)),
        })?;
        if let Some(i) = self.first_clear(lo, hi) {
            return Err(FrameError::DoubleFree(self.addr_of(i)));
        }
        self.set_range(lo, hi, false);
        Ok(())
    }

    // ---- internals -------------------------------------------------------

    fn index_of(&self, frame: u64) -> Option<u64> {
        let i = frame.checked_sub(self.base)?;
        (i < self.nframes).then_some(i)
    }

    /// Bitmap indices `[lo, hi)` for absolute frames `[first, last)`, if covered.
    fn indices(&self, first: u64, last: u64) -> Option<(u64, u64)> {
        let lo = first.checked_sub(self.base)?;
        let hi = last.checked_sub(self.base)?;
        (hi <= self.nframes && lo <= hi).then_some((lo, hi))
    }

    fn addr_of(&self, i: u64) -> PhysAddr {
        PhysAddr((self.base + i) * FRAME_SIZE)
    }

    fn bit(&self, i: u64) -> bool {
        self.bits[i as usize]
    }

    /// Marks `[lo, hi)` used or free and keeps the counters right. The caller
    /// has checked that every bit in the range has the opposite value.
    fn set_range(&mut self, lo: u64, hi: u64, used: bool) {
        self.bits[lo as usize..hi as usize].fill(used);
        let n = hi - lo;
        if used {
            self.free -= n;
        } else {
            self.free += n;
            self.hint = self.hint.min(lo);
        }
    }

    /// First index in `[lo, hi)` whose bit equals `want_used`.
    fn find(&self, lo: u64, hi: u64, want_used: bool) -> Option<u64> {
        let range = self.bits.get(lo as usize..hi as usize)?;
        let found = if want_used {
            range.first_one()
        } else {
            range.first_zero()
        };
        found.map(|i| lo + i as u64)
    }

    fn first_clear(&self, lo: u64, hi: u64) -> Option<u64> {
        self.find(lo, hi, false)
    }

    fn first_set(&self, lo: u64, hi: u64) -> Option<u64> {
        self.find(lo, hi, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn bitmap(nframes: u64) -> Vec<u64> {
        vec![0; bitmap_words(nframes)]
    }

    #[test]
    fn new_allocator_has_nothing_free() {
        let mut bits = bitmap(100);
        let mut a = FrameAllocator::new(&mut bits, PhysAddr(0), 100).unwrap();
        assert_eq!(a.free_count(), 0);
        assert_eq!(a.total_frames(), 100);
        assert_eq!(
            a.alloc(1, 1),
            Err(OutOfFrames {
                count: 1,
                align_frames: 1
            })
        );
    }

    #[test]
    fn new_rejects_bad_arguments() {
        let mut bits = bitmap(64);
        assert_eq!(
            FrameAllocator::new(&mut bits, PhysAddr(0), 65).unwrap_err(),
            FrameError::BitmapTooSmall { needed: 2 }
        );
        assert_eq!(
            FrameAllocator::new(&mut bits, PhysAddr(0x1001), 10).unwrap_err(),
            FrameError::Unaligned(PhysAddr(0x1001))
        );
    }

    #[test]
    fn allocates_lowest_first_and_contiguous() {
        let mut bits = bitmap(256);
        let mut a = FrameAllocator::new(&mut bits, PhysAddr(0), 256).unwrap();
        assert_eq!(
            a.add_range(PhysAddr(0x10000), PhysAddr(0x20000)).unwrap(),
            16
        );
        assert_eq!(a.free_count(), 16);
        assert_eq!(a.alloc(1, 1).unwrap(), PhysAddr(0x10000));
        assert_eq!(a.alloc(3, 1).unwrap(), PhysAddr(0x11000));
        assert_eq!(a.alloc(1, 1).unwrap(), PhysAddr(0x14000));
        assert_eq!(a.free_count(), 11);
        assert!(!a.is_free(PhysAddr(0x12000)));
        assert!(a.is_free(PhysAddr(0x15000)));
    }

    #[test]
    fn alignment_is_absolute() {
        // Span starts at frame 3 so index alignment differs from address alignment.
        let mut bits = bitmap(1200);
        let mut a = FrameAllocator::new(&mut bits, PhysAddr(3 * FRAME_SIZE), 1200).unwrap();
        a.add_range(PhysAddr(3 * FRAME_SIZE), PhysAddr(1203 * FRAME_SIZE))
            .unwrap();
        let p = a.alloc(1, 1).unwrap();
        assert_eq!(p, PhysAddr(3 * FRAME_SIZE));
        let p = a.alloc(4, 16).unwrap();
        assert_eq!(p.0 % (16 * FRAME_SIZE), 0);
        assert_eq!(p, PhysAddr(16 * FRAME_SIZE));
        let huge = a.alloc(512, 512).unwrap();
        assert_eq!(huge, PhysAddr(512 * FRAME_SIZE));
        // Frames skipped for alignment are still free.
        assert!(a.is_free(PhysAddr(4 * FRAME_SIZE)));
        assert_eq!(a.free_count(), 1200 - 1 - 4 - 512);
        // No second 2 MiB-aligned run of 512 frames fits.
        assert!(a.alloc(512, 512).is_err());
        // Alignment 0 means 1.
        assert_eq!(a.alloc(1, 0).unwrap(), PhysAddr(4 * FRAME_SIZE));
    }

    #[test]
    fn exhaustion_returns_err_and_free_restores() {
        let mut bits = bitmap(8);
        let mut a = FrameAllocator::new(&mut bits, PhysAddr(0), 8).unwrap();
        a.add_range(PhysAddr(0), PhysAddr(8 * FRAME_SIZE)).unwrap();
        let mut got = Vec::new();
        for _ in 0..8 {
            got.push(a.alloc(1, 1).unwrap());
        }
        assert_eq!(a.free_count(), 0);
        assert!(a.alloc(1, 1).is_err());
        assert!(a.alloc(0, 1).is_err());
        a.free(got[5], 1).unwrap();
        assert_eq!(a.alloc(1, 1).unwrap(), got[5]);
        assert!(a.alloc(1, 1).is_err());
    }

    #[test]
    fn fragmentation_blocks_contiguous_requests() {
        let mut bits = bitmap(16);
        let mut a = FrameAllocator::new(&mut bits, PhysAddr(0), 16).unwrap();
        a.add_range(PhysAddr(0), PhysAddr(16 * FRAME_SIZE)).unwrap();
        let all = a.alloc(16, 1).unwrap();
        assert_eq!(all, PhysAddr(0));
        // Free every other frame: 8 free, but no run of 2.
        for i in (0..16).step_by(2) {
            a.free(PhysAddr(i * FRAME_SIZE), 1).unwrap();
        }
        assert_eq!(a.free_count(), 8);
        assert!(a.alloc(2, 1).is_err());
        a.free(PhysAddr(FRAME_SIZE), 1).unwrap();
        assert_eq!(a.alloc(3, 1).unwrap(), PhysAddr(0));
    }

    #[test]
    fn double_free_and_bad_frees_are_detected_without_change() {
        let mut bits = bitmap(64);
        let mut a = FrameAllocator::new(&mut bits, PhysAddr(MIB), 64).unwrap();
        a.add_range(PhysAddr(MIB), PhysAddr(MIB + 64 * FRAME_SIZE))
            .unwrap();
        let p = a.alloc(4, 1).unwrap();
        a.free(PhysAddr(p.0 + FRAME_SIZE), 1).unwrap();
        let before = a.free_count();
        // Range containing one already-free frame: refused as a whole.
        assert_eq!(
            a.free(p, 4),
            Err(FrameError::DoubleFree(PhysAddr(p.0 + FRAME_SIZE)))
        );
        assert_eq!(a.free_count(), before);
        assert!(!a.is_free(p));
        assert_eq!(
            a.free(PhysAddr(p.0 + 1), 1),
            Err(FrameError::Unaligned(PhysAddr(p.0 + 1)))
        );
        assert_eq!(a.free(p, 0), Err(FrameError::ZeroCount));
        assert!(matches!(
            a.free(PhysAddr(0), 1),
            Err(FrameError::OutOfRange { .. })
        ));
        assert!(matches!(
            a.free(PhysAddr(MIB + 63 * FRAME_SIZE), 2),
            Err(FrameError::OutOfRange { .. })
        ));
        assert!(matches!(
            a.free(PhysAddr(!0xfff), usize::MAX),
            Err(FrameError::OutOfRange { .. })
        ));
        assert_eq!(a.free_count(), before);
    }

    #[test]
    fn add_range_gives_back_used_frames_and_rounds_inward() {
        let mut bits = bitmap(512);
        let mut a = FrameAllocator::new(&mut bits, PhysAddr(0), 512).unwrap();
        // Partial frames at both ends are not added.
        assert_eq!(a.add_range(PhysAddr(0x800), PhysAddr(0x3800)).unwrap(), 2);
        assert!(!a.is_free(PhysAddr(0)));
        assert!(a.is_free(PhysAddr(0x1000)));
        assert!(a.is_free(PhysAddr(0x2000)));
        assert!(!a.is_free(PhysAddr(0x3000)));
        // Empty range.
        assert_eq!(a.add_range(PhysAddr(0x5000), PhysAddr(0x5000)).unwrap(), 0);
        // Overlapping an already-free frame: refused whole.
        assert_eq!(
            a.add_range(PhysAddr(0x2000), PhysAddr(0x6000)),
            Err(FrameError::AlreadyFree(PhysAddr(0x2000)))
        );
        assert!(!a.is_free(PhysAddr(0x4000)));
        // Out of span.
        assert!(matches!(
            a.add_range(PhysAddr(0x100000), PhysAddr(0x300000)),
            Err(FrameError::OutOfRange { .. })
        ));
        // Allocate everything, then hand a used middle range back.
        let n = a.free_count() as usize;
        a.alloc(n, 1).unwrap();
        a.reserve_range(PhysAddr(0), PhysAddr(512 * FRAME_SIZE));
        assert_eq!(a.free_count(), 0);
        assert_eq!(
            a.add_range(PhysAddr(0x40000), PhysAddr(0x80000)).unwrap(),
            64
        );
        assert_eq!(a.alloc(64, 64).unwrap(), PhysAddr(0x40000));
    }

    #[test]
    fn reserve_range_rounds_outward_and_clips() {
        let mut bits = bitmap(100);
        let mut a = FrameAllocator::new(&mut bits, PhysAddr(0), 100).unwrap();
        a.add_range(PhysAddr(0), PhysAddr(100 * FRAME_SIZE))
            .unwrap();
        assert_eq!(a.reserve_range(PhysAddr(0x1800), PhysAddr(0x2001)), 2);
        assert!(a.is_free(PhysAddr(0)));
        assert!(!a.is_free(PhysAddr(0x1000)));
        assert!(!a.is_free(PhysAddr(0x2000)));
        assert!(a.is_free(PhysAddr(0x3000)));
        // Reserving again takes nothing; clipping past the span is fine.
        assert_eq!(a.reserve_range(PhysAddr(0x1000), PhysAddr(0x3000)), 0);
        assert_eq!(
            a.reserve_range(PhysAddr(98 * FRAME_SIZE), PhysAddr(u64::MAX)),
            2
        );
        assert_eq!(a.free_count(), 100 - 4);
        assert_eq!(a.alloc(1, 1).unwrap(), PhysAddr(0));
        assert_eq!(a.alloc(1, 1).unwrap(), PhysAddr(0x3000));
    }

    #[test]
    fn word_boundaries() {
        let mut bits = bitmap(200);
        let mut a = FrameAllocator::new(&mut bits, PhysAddr(0), 200).unwrap();
        a.add_range(PhysAddr(60 * FRAME_SIZE), PhysAddr(200 * FRAME_SIZE))
            .unwrap();
        assert_eq!(a.alloc(130, 1).unwrap(), PhysAddr(60 * FRAME_SIZE));
        assert_eq!(a.free_count(), 10);
        assert!(a.alloc(11, 1).is_err());
        assert_eq!(a.alloc(10, 1).unwrap(), PhysAddr(190 * FRAME_SIZE));
        a.free(PhysAddr(60 * FRAME_SIZE), 140).unwrap();
        assert_eq!(a.free_count(), 140);
        assert_eq!(a.alloc(64, 64).unwrap(), PhysAddr(64 * FRAME_SIZE));
        assert_eq!(a.alloc(64, 64).unwrap(), PhysAddr(128 * FRAME_SIZE));
        assert!(a.alloc(64, 64).is_err());
    }

    /// Random operations against a plain `Vec<bool>` model.
    #[test]
    fn matches_a_simple_model() {
        const N: u64 = 300;
        let mut bits = bitmap(N);
        let base = 5u64;
        let mut a = FrameAllocator::new(&mut bits, PhysAddr(base * FRAME_SIZE), N).unwrap();
        let mut model = vec![false; N as usize]; // true = free
        let mut live: Vec<(u64, usize)> = Vec::new();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        a.add_range(
            PhysAddr(base * FRAME_SIZE),
            PhysAddr((base + N) * FRAME_SIZE),
        )
        .unwrap();
        model.iter_mut().for_each(|f| *f = true);
        for _ in 0..5000 {
            if rnd() % 3 != 0 || live.is_empty() {
                let count = (rnd() % 9 + 1) as usize;
                let align = 1usize << (rnd() % 4);
                // Model: lowest aligned free run.
                let expect = (0..N).find(|&i| {
                    (base + i).is_multiple_of(align as u64)
                        && i + count as u64 <= N
                        && (i..i + count as u64).all(|j| model[j as usize])
                });
                match (a.alloc(count, align), expect) {
                    (Ok(p), Some(i)) => {
                        assert_eq!(p, PhysAddr((base + i) * FRAME_SIZE));
                        for j in i..i + count as u64 {
                            model[j as usize] = false;
                        }
                        live.push((i, count));
                    }
                    (Err(_), None) => {}
                    (got, want) => panic!("alloc({count},{align}): got {got:?}, model {want:?}"),
                }
            } else {
                let k = (rnd() % live.len() as u64) as usize;
                let (i, count) = live.swap_remove(k);
                a.free(PhysAddr((base + i) * FRAME_SIZE), count).unwrap();
                assert_eq!(
                    a.free(PhysAddr((base + i) * FRAME_SIZE), count),
                    Err(FrameError::DoubleFree(PhysAddr((base + i) * FRAME_SIZE)))
                );
                for j in i..i + count as u64 {
                    model[j as usize] = true;
                }
            }
            assert_eq!(a.free_count(), model.iter().filter(|f| **f).count() as u64);
        }
    }
}
