//! `kapi_alloc` / `kapi_free`: kernel heap memory, tracked per module.

use super::{owner, resources, service};
use core::alloc::Layout;

/// Allocates `size` bytes aligned to `align` for the running module; null
/// when out of memory or for a zero size or bad alignment.
pub extern "C" fn kapi_alloc(size: usize, align: usize) -> *mut u8 {
    service(|| {
        let Ok(layout) = Layout::from_size_align(size, align) else {
            return core::ptr::null_mut();
        };
        if size == 0 {
            return core::ptr::null_mut();
        }
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { alloc::alloc::alloc(layout) };
        if !p.is_null() {
            let me = owner();
            resources::with(me, |r| r.allocs.insert(p as usize, (size, align)));
        }
        p
    })
}
crate::export_symbol!(kapi_alloc);

/// Frees an allocation of the running module; a pointer it does not own is a
/// violation.
///
/// # Safety
/// `ptr` must come from `kapi_alloc` with the same size and alignment.
pub unsafe extern "C" fn kapi_free(ptr: *mut u8, size: usize, align: usize) {
    service(|| {
        let me = owner();
        let owned = resources::with(me, |r| r.allocs.remove(&(ptr as usize)));
        match owned.flatten() {
            Some((s, a)) if s == size && a == align => free_raw(ptr as usize, size, align),
            _ => crate::modules::guard::violation(
                crate::modules::guard::Abort::violation(format_args!(
                    "free of {ptr:p} ({size} bytes) it does not own"
                )),
                (),
            ),
        }
    })
}
crate::export_symbol!(kapi_free);

/// Returns an allocation to the heap.
pub(super) fn free_raw(addr: usize, size: usize, align: usize) {
    if let Ok(layout) = Layout::from_size_align(size, align) {
        // SAFETY: `addr` was returned by `alloc` with this layout and was
        // removed from its owner's record, so it is freed exactly once.
        unsafe { alloc::alloc::dealloc(addr as *mut u8, layout) }
    }
}
