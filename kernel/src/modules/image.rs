//! Where the prelinker put things in this kernel image: the module table and
//! the three class regions (from [`crate::layout`]), and writable aliases of
//! region bytes through the direct map.
//!
//! One of the loader's unsafe seams: every raw view of module bytes is
//! formed here, and its callers state why the range is theirs.

#![allow(unsafe_code)]

use crate::layout::{self, KERNEL_VMA};
use modtable::{Class, PerClass};

/// The reserved `.modtable` area (the prelinker's table is at its start).
pub fn modtable_area() -> &'static [u8] {
    let r = layout::modtable();
    // SAFETY: the linker script reserves this range for `.modtable`, which is
    // mapped read-only for the kernel's whole life.
    unsafe { core::slice::from_raw_parts(r.start as *const u8, r.len() as usize) }
}

/// `(start, end)` of each class region.
pub fn regions() -> PerClass<(u64, u64)> {
    let r = |r: layout::Range| (r.start, r.end);
    PerClass([
        r(layout::modules_text()),
        r(layout::modules_rodata()),
        r(layout::modules_data()),
    ])
}

/// Physical address of a byte of the kernel image.
pub fn image_phys(va: u64) -> u64 {
    va - KERNEL_VMA
}

/// A writable alias of `len` bytes of the image at `va`, through the direct
/// map (which is never executable; the text region itself is never writable).
///
/// # Safety
/// `[va, va + len)` must lie inside a module region, and no other reference
/// to those bytes may be in use while the slice is alive.
pub unsafe fn alias_mut<'a>(va: u64, len: u64) -> &'a mut [u8] {
    let p = crate::mm::paging::phys_to_virt(image_phys(va)) as *mut u8;
    // SAFETY: the direct map covers the whole kernel image; exclusivity is
    // the caller's promise.
    unsafe { core::slice::from_raw_parts_mut(p, len as usize) }
}

/// Reads `len` bytes of the image at `va` through the direct map (so it
/// works whatever the region's own mapping is).
///
/// # Safety
/// As for [`alias_mut`], minus the exclusivity: no writer may be active.
pub unsafe fn alias<'a>(va: u64, len: u64) -> &'a [u8] {
    let p = crate::mm::paging::phys_to_virt(image_phys(va)) as *const u8;
    // SAFETY: see above.
    unsafe { core::slice::from_raw_parts(p, len as usize) }
}

/// The class region containing `va`, if any.
pub fn region_of(va: u64) -> Option<Class> {
    let r = regions();
    Class::ALL
        .into_iter()
        .find(|&c| va >= r[c].0 && va < r[c].1)
}
