//! Memory management: physical frames, page tables, kernel heap.

pub mod frames;
pub mod heap;
pub mod module_mem;
pub mod paging;
pub mod stack;

/// Free RAM the kernel needs above its image: the heap (at least
/// [`heap::MIN_HEAP_SIZE`]), the kernel stack, page tables, the paging
/// self-test's 2 MiB-aligned region (with up to 2 MiB lost to alignment)
/// and the module phase. Below it the kernel stops at boot, saying so.
pub const MIN_FREE_BYTES: u64 = 5 << 20;

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
