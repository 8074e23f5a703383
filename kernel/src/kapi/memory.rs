//! `kapi_alloc` / `kapi_free`: kernel heap memory, tracked per module.

use super::{owner, resources, service};
use crate::modules::guard::Abort;
use core::alloc::Layout;

/// Allocates `size` bytes aligned to `align` for the running module; null
/// when out of memory or for a zero size or bad alignment.
pub extern "C" fn kapi_alloc(size: usize, align: usize) -> *mut u8 {
    service("kapi_alloc", || {
        let Ok(layout) = Layout::from_size_align(size, align) else {
            return Ok(core::ptr::null_mut());
        };
        let Some(p) = crate::mm::heap::try_alloc(layout) else {
            return Ok(core::ptr::null_mut());
        };
        let addr = p.as_ptr() as usize;
        resources::with(owner(), |r| r.allocs.insert(addr, (size, align)));
        Ok(p.as_ptr())
    })
}
crate::export_symbol!(kapi_alloc);

/// Frees an allocation of the running module. A pointer it does not own,
/// or a size or alignment other than the block's, is a violation, and the
/// block stays recorded: it is released with the module.
pub extern "C" fn kapi_free(ptr: *mut u8, size: usize, align: usize) {
    service("kapi_free", || {
        let addr = ptr as usize;
        let taken = resources::with(owner(), |r| match r.allocs.get(&addr) {
            Some(&(s, a)) if s == size && a == align => {
                r.allocs.remove(&addr);
                Ok(())
            }
            other => Err(other.copied()),
        })
        .unwrap_or(Err(None));
        match taken {
            Ok(()) => {
                free_raw(addr, size, align);
                Ok(())
            }
            Err(Some((s, a))) => Err(Abort::violation(format_args!(
                "kapi_free of {addr:#x} with size {size}, align {align}: allocated with size {s}, align {a}"
            ))),
            Err(None) => Err(Abort::violation(format_args!(
                "kapi_free of {addr:#x} ({size} bytes), which it did not allocate"
            ))),
        }
    })
}
crate::export_symbol!(kapi_free);

/// Returns an allocation to the heap: the one unsafe step of the module
/// heap, taken only for a block that was just removed from its owner's
/// record with this exact size and alignment.
#[allow(unsafe_code)]
pub(super) fn free_raw(addr: usize, size: usize, align: usize) {
    let (Ok(layout), Some(p)) = (
        Layout::from_size_align(size, align),
        core::ptr::NonNull::new(addr as *mut u8),
    ) else {
        return;
    };
    // SAFETY: `addr` was returned by `heap::try_alloc` with this layout (the
    // record says so) and was removed from the record, so it is freed once.
    unsafe { crate::mm::heap::free(p, layout) }
}
