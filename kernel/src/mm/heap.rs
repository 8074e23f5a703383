//! The kernel heap: one area of contiguous frames ([`MAX_HEAP_SIZE`], less
//! on a small machine, see [`size_for`]), reached through the direct map,
//! managed by a first-fit linked-list allocator, plus one more arena given
//! to it later ([`add_arena`]: the tail of the data range's last live huge
//! page after the module phase).
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
/// The second arena and its `[start, end)` virtual range.
static ARENA: Mutex<(Heap, u64, u64)> = Mutex::new((Heap::empty(), 0, 0));
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
            if let Ok(p) = HEAP.lock().allocate_first_fit(layout) {
                return p.as_ptr();
            }
            let mut a = ARENA.lock();
            if a.2 == 0 {
                return null_mut();
            }
            a.0.allocate_first_fit(layout)
                .map_or(null_mut(), |p| p.as_ptr())
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            crate::arch::without_interrupts(|| {
                let mut a = ARENA.lock();
                let at = p.as_ptr() as u64;
                if (a.1..a.2).contains(&at) {
                    // SAFETY: the caller passes a pointer this allocator
                    // returned for the same layout (GlobalAlloc contract),
                    // and it lies in the arena, so the arena returned it.
                    unsafe { a.0.deallocate(p, layout) }
                } else {
                    drop(a);
                    // SAFETY: as above; not in the arena, so from the heap.
                    unsafe { HEAP.lock().deallocate(p, layout) }
                }
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

/// A block of the heap that its owner frees by dropping it: for memory
/// handed out by address (to modules, through the module API), so that the
/// code that keeps the record of who holds what needs no unsafe code.
#[derive(Debug)]
pub struct Block {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: a `Block` is plain heap memory, owned by whoever holds the
// `Block`; freeing it from another CPU is what the heap's lock is for.
unsafe impl Send for Block {}

impl Block {
    /// Allocates `layout`, or `None` when it does not fit (or is empty).
    pub fn try_new(layout: Layout) -> Option<Block> {
        try_alloc(layout).map(|ptr| Block { ptr, layout })
    }

    /// Allocates `layout` (or `None`, as [`Block::try_new`]) and lets
    /// `init` fill all its bytes before anyone else can see them.
    pub fn try_new_with(layout: Layout, init: impl FnOnce(&mut [u8])) -> Option<Block> {
        let b = Block::try_new(layout)?;
        // SAFETY: the block is fresh heap memory of `layout.size()` bytes,
        // owned by `b` alone, whose address nobody has been given yet; the
        // slice ends with this call.
        init(unsafe { core::slice::from_raw_parts_mut(b.ptr.as_ptr(), layout.size()) });
        Some(b)
    }

    /// Its address.
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Its layout (size and alignment).
    pub fn layout(&self) -> Layout {
        self.layout
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `try_alloc` with `layout`, and only this
        // drop frees it (the block owns it and is not `Clone`).
        unsafe { free(self.ptr, self.layout) }
    }
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

/// Gives `[start, end)` to the heap as its second arena (there is one).
///
/// # Safety
/// The range must be mapped read-write for the kernel's lifetime and used
/// by nothing else.
pub unsafe fn add_arena(start: u64, end: u64) -> Result<(), &'static str> {
    if end <= start || end - start < 64 {
        return Err("arena too small");
    }
    crate::arch::without_interrupts(|| {
        let mut a = ARENA.lock();
        if a.2 != 0 {
            return Err("the heap has its second arena already");
        }
        // SAFETY: the caller promises a range mapped read-write for the
        // kernel's lifetime that nothing else uses.
        unsafe { a.0.init(start as *mut u8, (end - start) as usize) };
        a.1 = start;
        a.2 = end;
        Ok(())
    })
}

/// Allocates `layout` from the second arena only (the data range's tail,
/// inside the kernel image's mapping), or `None` when it does not fit there
/// or there is no arena. Free it with [`free`].
pub fn try_alloc_arena(layout: Layout) -> Option<NonNull<u8>> {
    if layout.size() == 0 {
        return None;
    }
    crate::arch::without_interrupts(|| {
        let mut a = ARENA.lock();
        if a.2 == 0 {
            return None;
        }
        a.0.allocate_first_fit(layout).ok()
    })
}

/// The second arena's `(start, end, used bytes, free bytes)`, if there is one.
pub fn arena() -> Option<(u64, u64, usize, usize)> {
    crate::arch::without_interrupts(|| {
        let a = ARENA.lock();
        (a.2 != 0).then(|| (a.1, a.2, a.0.used(), a.0.free()))
    })
}

/// Bytes currently allocated (including allocator alignment padding).
pub fn used_bytes() -> usize {
    crate::arch::without_interrupts(|| HEAP.lock().used() + ARENA.lock().0.used())
}

/// Bytes still free.
pub fn free_bytes() -> usize {
    crate::arch::without_interrupts(|| HEAP.lock().free() + ARENA.lock().0.free())
}
