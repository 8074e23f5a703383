//! Where the prelinker put things in this kernel image: the module table,
//! the module slot regions and the class ranges around them (from
//! [`crate::layout`]), and writable aliases of module bytes.
//!
//! Text and rodata are never writable through their own mapping, nor
//! through the direct map; during the module phase they are written through
//! the temporary alias of [`open_alias`], which [`close_alias`] removes.
//!
//! One of the loader's unsafe seams: every raw view of module bytes is
//! formed here, and its callers state why the range is theirs.

#![allow(unsafe_code)]

use crate::layout::{self, KERNEL_VMA};
use crate::mm::paging;
use core::sync::atomic::{AtomicBool, Ordering};
use modtable::{Class, PerClass};
use reclaim::plan::ClassRange;

static ALIAS_OPEN: AtomicBool = AtomicBool::new(false);

/// The reserved `.modtable` area (the prelinker's table is at its start).
pub fn modtable_area() -> &'static [u8] {
    let r = layout::modtable();
    // SAFETY: the linker script reserves this range for `.modtable`, which is
    // mapped read-only for the kernel's whole life.
    unsafe { core::slice::from_raw_parts(r.start as *const u8, r.len() as usize) }
}

/// `(start, end)` of each module slot region.
pub fn regions() -> PerClass<(u64, u64)> {
    let r = |r: layout::Range| (r.start, r.end);
    PerClass([
        r(layout::modules_text()),
        r(layout::modules_rodata()),
        r(layout::modules_data()),
    ])
}

/// Each class range: 2 MiB-aligned, the kernel's own bytes, then the slots.
pub fn class_ranges() -> PerClass<ClassRange> {
    PerClass(Class::ALL.map(|c| {
        let (r, kernel_end) = layout::class_range(c.index());
        ClassRange {
            start: r.start,
            end: r.end,
            kernel_end,
        }
    }))
}

/// Physical address of a byte of the kernel image.
pub fn image_phys(va: u64) -> u64 {
    va - KERNEL_VMA
}

/// Maps the writable alias of the text and rodata ranges for the module phase.
pub fn open_alias() -> Result<(), paging::PagingError> {
    paging::map_image_alias()?;
    ALIAS_OPEN.store(true, Ordering::Release);
    Ok(())
}

/// Removes the alias: from now on no mapping makes text or rodata writable.
pub fn close_alias() -> Result<(), paging::PagingError> {
    ALIAS_OPEN.store(false, Ordering::Release);
    paging::unmap_image_alias()
}

/// Where to write image byte `va`: the alias for text and rodata (which
/// must be open), the data range itself for data.
fn writable(va: u64) -> u64 {
    match paging::image_alias_of(va) {
        Some(a) => {
            assert!(
                ALIAS_OPEN.load(Ordering::Acquire),
                "write to text or rodata at {va:#x} outside the module phase"
            );
            a
        }
        None => va,
    }
}

/// A writable alias of `len` bytes of the image at `va` (never executable:
/// the alias is NX, and data is NX).
///
/// # Safety
/// `[va, va + len)` must lie inside one class range, and no other reference
/// to those bytes may be in use while the slice is alive.
pub unsafe fn alias_mut<'a>(va: u64, len: u64) -> &'a mut [u8] {
    let p = writable(va) as *mut u8;
    // SAFETY: the alias (or the data range) maps these bytes read-write;
    // exclusivity is the caller's promise.
    unsafe { core::slice::from_raw_parts_mut(p, len as usize) }
}

/// Reads `len` bytes of the image at `va` through the direct map (so it
/// works whatever the range's own mapping is now).
///
/// # Safety
/// As for [`alias_mut`], minus the exclusivity: no writer may be active.
pub unsafe fn alias<'a>(va: u64, len: u64) -> &'a [u8] {
    let p = paging::phys_to_virt(image_phys(va)) as *const u8;
    // SAFETY: the direct map covers the whole kernel image readably.
    unsafe { core::slice::from_raw_parts(p, len as usize) }
}

/// Copies `len` bytes of the image from `from` to `to` (overlap allowed),
/// through the writable alias.
///
/// # Safety
/// Both ranges must lie inside one class range and nothing else may use
/// them meanwhile.
pub unsafe fn copy_within(from: u64, to: u64, len: u64) {
    // Both through the same window, so that memmove's overlap test compares
    // addresses of the same mapping.
    let src = writable(from) as *const u8;
    let dst = writable(to) as *mut u8;
    // SAFETY: `copy` is memmove; both ranges are mapped read-write in that
    // window and unused meanwhile.
    unsafe { core::ptr::copy(src, dst, len as usize) };
}

/// Fills `[start, end)` with trap bytes (`0xcc`, `int3`) through the
/// module-phase alias. Only bytes of the text or rodata *slot region* of
/// `class` are accepted, never the kernel's own bytes, and only while the
/// alias is open.
pub(super) fn trap_fill(class: Class, start: u64, end: u64) -> Result<(), &'static str> {
    let (rs, re) = regions()[class];
    if class == Class::Data || start < rs || end > re {
        return Err("not inside the text or rodata slot region");
    }
    if !ALIAS_OPEN.load(Ordering::Acquire) {
        return Err("the module-phase alias is closed");
    }
    if end > start {
        // SAFETY: the range lies inside the class's slot region (checked
        // above), which the alias maps; the reclaim step passes the bytes
        // past the live end, where no kept module lives and nothing refers.
        unsafe { alias_mut(start, end - start) }.fill(0xcc);
    }
    Ok(())
}

/// Gives `[start, end)` of the data slot region (never the kernel's own data
/// or bss) to the kernel heap as its second arena; there is one.
pub(super) fn give_data_tail_to_heap(start: u64, end: u64) -> Result<(), &'static str> {
    let (rs, re) = regions()[Class::Data];
    if start < rs || end > re {
        return Err("not inside the data slot region");
    }
    // SAFETY: the range lies in the data slot region, mapped RW+NX for the
    // kernel's lifetime; the caller passes the tail past the live end, where
    // no kept module byte lives, and the heap takes one such arena only.
    unsafe { crate::mm::heap::add_arena(start, end) }
}

/// The class region containing `va`, if any.
pub fn region_of(va: u64) -> Option<Class> {
    let r = regions();
    Class::ALL
        .into_iter()
        .find(|&c| va >= r[c].0 && va < r[c].1)
}
