//! Test module `fault_free`: its probe allocates a 4096-byte block, then
//! frees it claiming 1000 bytes. The kernel must refuse the free (a
//! violation) and keep the block recorded, so that it is released with the
//! module instead of leaking untracked.

#![no_std]
// Freeing with the wrong layout needs `unsafe`; built only for the tests.
#![allow(unsafe_code)]

extern crate alloc;

use core::alloc::Layout;
use module_api::{ProbeContext, ProbeError, info};

module_api::module! {
    name: "fault_free",
    probe: probe,
}

/// Size of the block.
const SIZE: usize = 4096;
/// Size the free claims.
const WRONG: usize = 1000;

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let layout = Layout::from_size_align(SIZE, 8).expect("layout");
    // SAFETY: a non-zero-sized layout.
    let p = unsafe { alloc::alloc::alloc(layout) };
    if p.is_null() {
        return Err(ProbeError::no_memory(format_args!("{SIZE} bytes")));
    }
    info!("fault_free: freeing {SIZE}-byte block {p:p} as {WRONG} bytes");
    let wrong = Layout::from_size_align(WRONG, 8).expect("layout");
    // SAFETY: deliberately wrong: `p` was allocated with `layout`; the kernel
    // must refuse this.
    unsafe { alloc::alloc::dealloc(p, wrong) };
    Err(ProbeError::io(format_args!(
        "free of {p:p} with the wrong size returned"
    )))
}
