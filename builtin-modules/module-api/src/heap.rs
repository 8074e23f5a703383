//! The global allocator of module code: `kapi_alloc`/`kapi_free`.

use crate::sys;
use core::alloc::{GlobalAlloc, Layout};

/// Allocates through the kernel; memory allocated during a failed probe is
/// released by the kernel.
pub struct KapiAllocator;

// SAFETY: the kernel's allocator returns null or a block of at least `size`
// bytes aligned to `align`, and `kapi_free` takes back exactly what
// `kapi_alloc` returned with the same size and alignment.
unsafe impl GlobalAlloc for KapiAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl comment.
        unsafe { sys::kapi_alloc(layout.size(), layout.align()) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller passes a block from `alloc` with its layout.
        unsafe { sys::kapi_free(ptr, layout.size(), layout.align()) }
    }
}

#[cfg(target_os = "none")]
#[global_allocator]
static ALLOCATOR: KapiAllocator = KapiAllocator;
