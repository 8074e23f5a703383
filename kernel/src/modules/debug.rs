//! Where every module lives after the module phase, for a debugger.
//!
//! The loader moves kept modules at boot, so a debugger cannot know their
//! addresses from the image. After the module phase it publishes them in
//! [`plk_debug_modules`] and calls [`plk_debug_modules_ready`], an empty
//! function a debugger can break on (`kernel/gdb/plk.py` does, to load each
//! kept module's symbols at its final addresses).
//!
//! The record (little-endian, `#[repr(C)]`, all fields 8-byte aligned):
//!
//! | offset | field | |
//! |---|---|---|
//! | 0 | `magic: u64` | [`MAGIC`] (`"PLKMODS\0"`) |
//! | 8 | `version: u32` | [`VERSION`] |
//! | 12 | `count: u32` | entries; 0 until published |
//! | 16 | `entries: u64` | address of `count` [`DebugModule`]s, in table order |
//! | 24 | `generation: u64` | bumped on every publication |
//!
//! Each entry (56 bytes): `name: u64` (address of the UTF-8 name),
//! `name_len: u64`, `kept: u64` (1 kept, 0 expunged), then `addr: [u64; 3]`,
//! the final address of its text, rodata and data class (0 for an expunged
//! module, whose bytes are gone), then `checksum: u64`, the module checksum
//! its table record carries (the plan of the link that wrote the image has
//! the same, so a debugger can tell a plan of another image). Version 1
//! had no `checksum`.

// An unsafe seam by purpose: the record and the hook carry fixed symbol
// names (no_mangle) so that a debugger finds them.
#![allow(unsafe_code)]

use super::Module;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use modtable::Class;

/// `"PLKMODS\0"` as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"PLKMODS\0");
/// Version of the record layout.
pub const VERSION: u32 = 2;

/// One module of the record.
#[repr(C)]
pub struct DebugModule {
    /// Address of the module's name (UTF-8, not NUL-terminated).
    pub name: u64,
    /// Length of the name in bytes.
    pub name_len: u64,
    /// 1 if the module was kept, 0 if it was expunged.
    pub kept: u64,
    /// Final address of the text, rodata and data class (0 if expunged).
    pub addr: [u64; 3],
    /// The module checksum of its table record.
    pub checksum: u64,
}

const _: () = assert!(size_of::<DebugModule>() == 56);

/// The record a debugger reads (layout in the module documentation).
#[repr(C)]
pub struct DebugModules {
    magic: u64,
    version: u32,
    count: AtomicU32,
    entries: AtomicPtr<DebugModule>,
    generation: AtomicU64,
}

const _: () = assert!(size_of::<DebugModules>() == 32);

/// The record, found by a debugger through its symbol.
#[unsafe(no_mangle)]
pub static plk_debug_modules: DebugModules = DebugModules {
    magic: MAGIC,
    version: VERSION,
    count: AtomicU32::new(0),
    entries: AtomicPtr::new(core::ptr::null_mut()),
    generation: AtomicU64::new(0),
};

/// Called once the record is complete; a debugger breaks here.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn plk_debug_modules_ready() {
    // Keeps the call and the function from being optimised away.
    core::hint::black_box(&plk_debug_modules);
}

/// Publishes where every module now is and calls [`plk_debug_modules_ready`].
/// An earlier publication's entries stay allocated (a debugger may be
/// reading them).
pub fn publish(mods: &[Module]) {
    let entries: Vec<DebugModule> = mods
        .iter()
        .map(|m| DebugModule {
            name: m.name.as_ptr() as u64,
            name_len: m.name.len() as u64,
            kept: m.kept as u64,
            addr: Class::ALL.map(|c| if m.kept { m.base[c] } else { 0 }),
            checksum: m.placement.checksum,
        })
        .collect();
    let count = entries.len() as u32;
    let r = &plk_debug_modules;
    r.entries
        .store(entries.leak().as_mut_ptr(), Ordering::Release);
    r.count.store(count, Ordering::Release);
    r.generation.fetch_add(1, Ordering::AcqRel);
    plk_debug_modules_ready();
}
