//! Memory management: physical frames, page tables, kernel heap.

pub mod frames;
pub mod heap;
pub mod paging;
pub mod stack;

/// 4 KiB.
pub const PAGE_SIZE: u64 = 4096;
/// 2 MiB.
pub const HUGE_PAGE_SIZE: u64 = 2 << 20;

/// Rounds `x` up to a multiple of `align` (a power of two).
pub const fn align_up(x: u64, align: u64) -> u64 {
    (x + align - 1) & !(align - 1)
}

/// Rounds `x` down to a multiple of `align` (a power of two).
pub const fn align_down(x: u64, align: u64) -> u64 {
    x & !(align - 1)
}
