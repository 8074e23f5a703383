//! The kernel heap: one area of contiguous frames ([`MAX_HEAP_SIZE`], less
//! on a small machine, see [`size_for`]), reached through the direct map,
//! managed by a first-fit linked-list allocator.
//!
//! It is the `#[global_allocator]`, so `alloc::{boxed::Box, vec::Vec, ...}`
//! work after [`init`]. Allocation failure returns null from the allocator
//! (the `alloc` crate then reports it); nothing panics inside the allocator.
//! [`used_bytes`] is there for leak checks.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{NonNull, null_mut};
use core::sync::atomic::{AtomicUsize, Ordering};

use linked_list_allocator::Heap;
use spin::Mutex;

use crate::mm::frames;
use crate::mm::paging::phys_to_virt;

/// Heap size on a machine with enough memory.
pub const MAX_HEAP_SIZE: usize = 4 << 20;
/// Smallest heap the kernel runs with.
pub const MIN_HEAP_SIZE: usize = 1 << 20;

static HEAP: Mutex<Heap> = Mutex::new(Heap::empty());
static SIZE: AtomicUsize = AtomicUsize::new(0);

struct KernelHeap;

#[global_allocator]
static GLOBAL: KernelHeap = KernelHeap;

// SAFETY: allocation and deallocation are serialised by the mutex, taken
// with interrupts disabled so an interrupt handler cannot deadlock on it;
// `Heap` hands out non-overlapping blocks that satisfy the layout.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        crate::arch::without_interrupts(|| {
            HEAP.lock()
                .allocate_first_fit(layout)
                .map_or(null_mut(), |p| p.as_ptr())
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            crate::arch::without_interrupts(|| {
                // SAFETY: the caller passes a pointer this allocator returned
                // for the same layout (GlobalAlloc contract).
                unsafe { HEAP.lock().deallocate(p, layout) }
            });
        }
    }
}

/// The heap size for a machine with `free_bytes` of free RAM: a quarter of
/// it, between [`MIN_HEAP_SIZE`] and [`MAX_HEAP_SIZE`], in 64 KiB steps.
pub const fn size_for(free_bytes: u64) -> usize {
    let quarter = (free_bytes / 4) as usize & !0xffff;
    if quarter < MIN_HEAP_SIZE {
        MIN_HEAP_SIZE
    } else if quarter > MAX_HEAP_SIZE {
        MAX_HEAP_SIZE
    } else {
        quarter
    }
}

/// Takes `size` bytes of frames (a multiple of the frame size) and makes
/// them the heap. Returns the physical address of the heap area.
pub fn init(size: usize) -> Result<u64, frames::OutOfFrames> {
    let pages = size / frames::FRAME_SIZE as usize;
    let phys = frames::alloc(pages, 1)?;
    crate::arch::without_interrupts(|| {
        // SAFETY: the frames were just allocated for the heap alone and are
        // mapped read-write in the direct map for the kernel's lifetime.
        unsafe { HEAP.lock().init(phys_to_virt(phys.0) as *mut u8, size) }
    });
    SIZE.store(size, Ordering::Relaxed);
    Ok(phys.0)
}

/// The heap's size (0 before [`init`]).
pub fn size() -> usize {
    SIZE.load(Ordering::Relaxed)
}

/// Allocates `layout` from the heap, or `None` when it does not fit.
/// Unlike `Box`/`Vec`, running out is an ordinary result, never a panic.
pub fn try_alloc(layout: Layout) -> Option<NonNull<u8>> {
    if layout.size() == 0 {
        return None;
    }
    // SAFETY: non-zero size, checked above.
    NonNull::new(unsafe { GLOBAL.alloc(layout) })
}

/// Frees a block from [`try_alloc`].
///
/// # Safety
/// `ptr` must come from [`try_alloc`] with the same `layout` and not have
/// been freed yet.
pub unsafe fn free(ptr: NonNull<u8>, layout: Layout) {
    // SAFETY: forwarded to the caller.
    unsafe { GLOBAL.dealloc(ptr.as_ptr(), layout) }
}

/// Bytes currently allocated (including allocator alignment padding).
pub fn used_bytes() -> usize {
    crate::arch::without_interrupts(|| HEAP.lock().used())
}

/// Bytes still free.
pub fn free_bytes() -> usize {
    crate::arch::without_interrupts(|| HEAP.lock().free())
}
