//! Kernel stacks with guard pages.
//!
//! Each stack lives in its own slot of [`STACK_SLOT_SIZE`] bytes starting at
//! [`STACKS_BASE`]: the lowest page of the slot stays unmapped (the guard),
//! the stack pages follow, mapped read-write and NX in 4 KiB pages. Running
//! off the bottom of a stack touches the guard page; the CPU cannot push the
//! page-fault frame there either, so it raises a double fault, which runs on
//! its own IST stack and reports the overflow.
//!
//! The kernel moves from the boot stack (in `.bss`, unguarded) to a stack
//! from [`alloc()`](fn@alloc) right after the heap is up. Every other CPU
//! gets its kernel stack and its IST stacks from [`alloc()`](fn@alloc) too.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::mm::paging::{self, Flags, PagingError};
use crate::mm::{PAGE_SIZE, frames};

/// Virtual base of the kernel stack slots (PML4 slot 510).
pub const STACKS_BASE: u64 = 0xffff_ff00_0000_0000;
/// Virtual size of one slot (guard page + stack).
pub const STACK_SLOT_SIZE: u64 = 1 << 20;
/// Most slots.
pub const MAX_STACKS: u64 = 256;

static NEXT_SLOT: AtomicU64 = AtomicU64::new(0);

/// Guard page of every stack, for the lock-free check the double-fault
/// report makes (on any CPU).
static GUARDS: [AtomicU64; MAX_STACKS as usize] =
    [const { AtomicU64::new(0) }; MAX_STACKS as usize];

/// A mapped kernel stack.
#[derive(Clone, Copy, Debug)]
pub struct KernelStack {
    /// Initial stack pointer (one past the highest byte, 16-byte aligned).
    pub top: u64,
    /// Lowest mapped byte.
    pub bottom: u64,
    /// The unmapped guard page just below `bottom`.
    pub guard: u64,
    /// Physical address of the (contiguous) stack frames.
    pub phys: u64,
}

/// Why a stack could not be made.
#[derive(Clone, Copy, Debug)]
pub enum StackError {
    /// Size zero or larger than a slot allows.
    BadSize,
    /// All slots used.
    NoSlot,
    /// No frames.
    OutOfFrames,
    /// Mapping failed.
    Paging(PagingError),
}

/// Allocates and maps a stack of `pages` 4 KiB pages below a guard page.
pub fn alloc(pages: usize) -> Result<KernelStack, StackError> {
    let len = pages as u64 * PAGE_SIZE;
    if pages == 0 || len > STACK_SLOT_SIZE - PAGE_SIZE {
        return Err(StackError::BadSize);
    }
    let slot = NEXT_SLOT.fetch_add(1, Ordering::SeqCst);
    if slot >= MAX_STACKS {
        return Err(StackError::NoSlot);
    }
    let top = STACKS_BASE + (slot + 1) * STACK_SLOT_SIZE;
    let bottom = top - len;
    let phys = frames::alloc_zeroed(pages, 1).map_err(|_| StackError::OutOfFrames)?;
    if let Err(e) = paging::map_range(bottom, phys.0, len, Flags::RW) {
        let _ = frames::free(phys, pages);
        return Err(StackError::Paging(e));
    }
    let guard = bottom - PAGE_SIZE;
    if let Some(g) = GUARDS.get(slot as usize) {
        g.store(guard, Ordering::SeqCst);
    }
    Ok(KernelStack {
        top,
        bottom,
        guard,
        phys: phys.0,
    })
}

/// True if `addr` lies in the guard page of a stack. Takes no lock, so
/// exception handlers may call it.
pub fn is_guard_page(addr: u64) -> bool {
    GUARDS.iter().any(|g| {
        let g = g.load(Ordering::SeqCst);
        g != 0 && (g..g + PAGE_SIZE).contains(&addr)
    })
}

/// Switches to the stack with top `top` and calls `next` there (never
/// returns). The old stack is abandoned.
///
/// # Safety
/// `top` must be the 16-byte aligned top of a mapped, otherwise unused stack.
pub unsafe fn switch_to(top: u64, next: extern "C" fn() -> !) -> ! {
    // SAFETY: the caller guarantees the stack; `next` never returns, so
    // nothing on the old stack is needed again. RSP is 16-byte aligned
    // before the call, as the ABI requires.
    unsafe {
        core::arch::asm!(
            "mov rsp, {top}",
            "xor ebp, ebp",
            "call {next}",
            "ud2",
            top = in(reg) top,
            next = in(reg) next,
            options(noreturn)
        )
    }
}
