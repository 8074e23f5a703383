//! Pure arithmetic of the boot-time module loader, kept out of the kernel so
//! it builds and is tested on the host:
//!
//! - [`policy`]: the reclaim policies (`keep`, `holes`, `compact`,
//!   `compact-split`);
//! - [`pack`]: the packing cursors that place kept modules at 64-byte
//!   alignment, one class range at a time;
//! - [`plan`]: given where every module's bytes ended up and which were
//!   kept, which pages of a class range stay mapped, which are freed, which
//!   tail becomes a pool or heap, and the accounting of every byte of the
//!   range;
//! - [`pool`]: free ranges of the pools that modules loaded at run time
//!   are placed in.
//!
//! The kernel measures (free frames, mappings, probe times) and this crate
//! only does arithmetic on what it is given: nothing here invents a figure.

#![no_std]

extern crate alloc;

pub mod pack;
pub mod plan;
pub mod policy;
pub mod pool;

/// Size of a small page.
pub const PAGE_4K: u64 = 4096;
/// Size of a huge page.
pub const PAGE_2M: u64 = 2 << 20;
/// Alignment at which kept modules are packed (one cache line).
pub const PACK_ALIGN: u64 = 64;

/// Rounds `v` up to a multiple of `align` (a power of two).
pub const fn align_up(v: u64, align: u64) -> u64 {
    (v + align - 1) & !(align - 1)
}

/// Rounds `v` down to a multiple of `align` (a power of two).
pub const fn align_down(v: u64, align: u64) -> u64 {
    v & !(align - 1)
}
