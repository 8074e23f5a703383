//! The kernel's global physical frame allocator.
//!
//! Wraps a [`frames::FrameAllocator`] covering physical 0 up to the end of
//! the highest usable RAM region. Its bitmap is carved out of the first
//! usable region above the kernel image. [`init`] makes every usable region
//! of the PVH memory map allocatable, minus the first MiB, the kernel image
//! (physical 0 up to the end of `.modules.data`), the PVH boot modules (the
//! initrd) and the bitmap itself.
//!
//! All functions lock with interrupts disabled, so they may be called from
//! interrupt handlers.

use spin::Mutex;

pub use frames::{FRAME_SIZE, FrameError, OutOfFrames, PhysAddr};

use crate::mm::paging::phys_to_virt;
use crate::mm::{PAGE_SIZE, align_up};
use crate::pvh::BootInfo;

static ALLOCATOR: Mutex<Option<frames::FrameAllocator<'static>>> = Mutex::new(None);

/// What [`init`] did, for the boot log.
#[derive(Clone, Copy, Debug)]
pub struct InitSummary {
    /// Frames made allocatable.
    pub free_frames: u64,
    /// Frames covered by the bitmap.
    pub total_frames: u64,
    /// Physical range of the bitmap.
    pub bitmap: (u64, u64),
    /// Everything below this was reserved (first MiB + kernel image).
    pub reserved_below: u64,
}

/// Below this the boot page tables map all physical memory.
const EARLY_MAPPED: u64 = 4 << 30;

/// Builds the allocator from the memory map. Call once, while the boot page
/// tables are live or after the kernel's own (both map the bitmap).
pub fn init(boot: &BootInfo) -> InitSummary {
    let top = boot.usable_top();
    let nframes = top / FRAME_SIZE;
    let words = frames::bitmap_words(nframes);
    let bitmap_bytes = align_up(words as u64 * 8, PAGE_SIZE);
    let reserved_below = crate::layout::image_phys_end().max(1 << 20);

    // First usable place above the image and any boot module starting in
    // the region, below 4 GiB, big enough.
    let bitmap_phys = boot
        .usable()
        .filter_map(|r| {
            let start = boot
                .modules()
                .iter()
                .filter(|m| m.start >= r.start && m.start < r.end())
                .fold(r.start.max(reserved_below), |s, m| s.max(m.start + m.size));
            let start = align_up(start, PAGE_SIZE);
            let end = r.end().min(EARLY_MAPPED);
            (end > start && end - start >= bitmap_bytes).then_some(start)
        })
        .next()
        .expect("no room for the frame bitmap in usable memory");

    // SAFETY: [bitmap_phys, +bitmap_bytes) is usable RAM above the kernel
    // image that nothing else uses (it is reserved below, before any frame
    // is handed out); it lies below 4 GiB so both the boot tables and the
    // kernel's direct map cover it; the 'static slice is created once.
    let bits: &'static mut [u64] =
        unsafe { core::slice::from_raw_parts_mut(phys_to_virt(bitmap_phys) as *mut u64, words) };
    let mut fa = frames::FrameAllocator::new(bits, PhysAddr(0), nframes)
        .expect("frame bitmap sized with bitmap_words");
    for r in boot.usable() {
        let end = r.end().min(top);
        if let Err(e) = fa.add_range(PhysAddr(r.start), PhysAddr(end)) {
            log::warn!("memory map entry {:#x}..{:#x} ignored: {e}", r.start, end);
        }
    }
    fa.reserve_range(PhysAddr(0), PhysAddr(reserved_below));
    fa.reserve_range(PhysAddr(bitmap_phys), PhysAddr(bitmap_phys + bitmap_bytes));
    for m in boot.modules() {
        // Rounds outward to whole frames.
        fa.reserve_range(PhysAddr(m.start), PhysAddr(m.start + m.size));
    }
    let summary = InitSummary {
        free_frames: fa.free_count(),
        total_frames: fa.total_frames(),
        bitmap: (bitmap_phys, bitmap_phys + bitmap_bytes),
        reserved_below,
    };
    *ALLOCATOR.lock() = Some(fa);
    summary
}

fn with<R>(f: impl FnOnce(&mut frames::FrameAllocator<'static>) -> R) -> R {
    crate::arch::without_interrupts(|| {
        let mut guard = ALLOCATOR.lock();
        f(guard.as_mut().expect("mm::frames::init not called"))
    })
}

/// Allocates `count` contiguous frames aligned to `align_frames` frames.
pub fn alloc(count: usize, align_frames: usize) -> Result<PhysAddr, OutOfFrames> {
    with(|fa| fa.alloc(count, align_frames))
}

/// Allocates `count` contiguous frames and zeroes them.
pub fn alloc_zeroed(count: usize, align_frames: usize) -> Result<PhysAddr, OutOfFrames> {
    let p = alloc(count, align_frames)?;
    // SAFETY: the frames were just allocated (exclusively ours) and are RAM,
    // which the direct map covers.
    unsafe {
        core::ptr::write_bytes(phys_to_virt(p.0) as *mut u8, 0, count * FRAME_SIZE as usize);
    }
    Ok(p)
}

/// Frees `count` frames at `addr` (errors on double free, bad range).
pub fn free(addr: PhysAddr, count: usize) -> Result<(), FrameError> {
    with(|fa| fa.free(addr, count))
}

/// Gives the whole frames inside `[start, end)` to the allocator (for
/// example a module region's unused tail); returns how many.
pub fn add_range(start: PhysAddr, end: PhysAddr) -> Result<u64, FrameError> {
    with(|fa| fa.add_range(start, end))
}

/// Free frames.
pub fn free_frames() -> u64 {
    with(|fa| fa.free_count())
}

/// Frames covered by the allocator (physical 0 to the top of RAM).
pub fn total_frames() -> u64 {
    with(|fa| fa.total_frames())
}

/// True if the frame at `addr` is free.
pub fn is_free(addr: PhysAddr) -> bool {
    with(|fa| fa.is_free(addr))
}
