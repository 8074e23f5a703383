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
        let Some(block) = crate::mm::heap::Block::try_new(layout) else {
            return Ok(core::ptr::null_mut());
        };
        let addr = block.addr();
        resources::with(owner(), |r| r.allocs.insert(addr, block));
        Ok(addr as *mut u8)
    })
}
crate::export_symbol!(kapi_alloc);

/// Frees an allocation of the running module. A pointer it does not own,
/// or a size or alignment other than the block's, is a violation, and the
/// block stays recorded: it is released with the module.
pub extern "C" fn kapi_free(ptr: *mut u8, size: usize, align: usize) {
    service("kapi_free", || {
        let addr = ptr as usize;
        // Taken out of the record with its size and alignment checked, and
        // freed by dropping it once the record's lock is released.
        let taken = resources::with(owner(), |r| match r.allocs.get(&addr) {
            Some(b) if b.layout().size() == size && b.layout().align() == align => {
                r.allocs.remove(&addr).ok_or(None)
            }
            other => Err(other.map(|b| (b.layout().size(), b.layout().align()))),
        })
        .unwrap_or(Err(None));
        match taken {
            Ok(block) => {
                drop(block);
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
