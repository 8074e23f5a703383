//! Firmware memory (ACPI tables, the BIOS read-only area) read through the
//! direct map.

use crate::mm::{PAGE_SIZE, align_down, paging};

/// The `len` bytes at physical `phys`, if they are firmware memory the
/// direct map covers: every page mapped there, and none of them RAM the
/// memory map calls usable (the only RAM the kernel hands out and writes).
/// `None` otherwise, and before the boot information is known.
pub fn bytes(phys: u64, len: usize) -> Option<&'static [u8]> {
    let end = phys.checked_add(len as u64)?;
    let boot = crate::pvh::boot_info()?;
    if boot.usable().any(|r| phys < r.end() && r.start < end) {
        return None;
    }
    let mut page = align_down(phys, PAGE_SIZE);
    while page < end {
        paging::translate(paging::phys_to_virt(page))?;
        page += PAGE_SIZE;
    }
    Some(mapped(phys, len))
}

/// The bytes themselves, once [`bytes`] checked them.
#[allow(unsafe_code)]
fn mapped(phys: u64, len: usize) -> &'static [u8] {
    let v = paging::phys_to_virt(phys);
    // SAFETY: `bytes` found every page of the range mapped in the direct
    // map, which is never unmapped, and none of it usable RAM: the kernel
    // never writes firmware memory, so nothing changes the bytes while the
    // shared slice lives.
    unsafe { core::slice::from_raw_parts(v as *const u8, len) }
}
