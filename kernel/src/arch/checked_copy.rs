//! Copies that survive a bad address: a page fault or general protection
//! fault inside [`copy`] makes it return [`Fault`] instead of killing the
//! kernel.
//!
//! The kernel uses it for memory a module hands to a service (a log line, a
//! buffer to fill), whose address it cannot trust. The copy is one `rep
//! movsb`; the exception hook calls [`fixup`], which moves a fault at that
//! instruction to a return path that reports it. Nothing is locked or
//! allocated inside, so resuming there leaves the kernel as it was.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::TrapFrame;
use crate::arch::percpu::MAX_CPUS;

core::arch::global_asm!(
    ".section .text.checked_copy, \"ax\"",
    ".global checked_copy_bytes",
    "checked_copy_bytes:",
    "    mov rcx, rdx",
    ".global checked_copy_insn",
    "checked_copy_insn:",
    "    rep movsb",
    "    xor eax, eax",
    "    ret",
    ".global checked_copy_fixup",
    "checked_copy_fixup:",
    "    mov eax, 1",
    "    ret",
    ".text",
);

unsafe extern "C" {
    /// Copies `len` bytes from `src` to `dst`; 0, or 1 if an access faulted.
    fn checked_copy_bytes(dst: *mut u8, src: *const u8, len: usize) -> u32;
    static checked_copy_insn: u8;
    static checked_copy_fixup: u8;
}

/// Vector and address of the last fault [`fixup`] redirected, per CPU (the
/// fault and the copy that reads them back run on the same CPU).
static LAST_VECTOR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static LAST_ADDR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// This CPU's slot of [`LAST_VECTOR`] and [`LAST_ADDR`].
fn slot() -> usize {
    crate::arch::percpu::index() % MAX_CPUS
}

/// A copy that faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Exception vector (14 page fault, 13 general protection).
    pub vector: u64,
    /// The address that faulted (CR2, or the non-canonical pointer).
    pub addr: u64,
}

/// Copies `len` bytes from `src` to `dst`, or reports the fault that
/// stopped it (part of `dst` may have been written by then).
///
/// # Safety
/// Every byte of `dst` and `src` that can be accessed without a fault must
/// be memory the caller may read (`src`) and write (`dst`): no device
/// memory, nothing another reference is using.
pub unsafe fn copy(dst: *mut u8, src: *const u8, len: usize) -> Result<(), Fault> {
    if len == 0 {
        return Ok(());
    }
    // SAFETY: forwarded from this function's contract; a fault returns 1.
    match unsafe { checked_copy_bytes(dst, src, len) } {
        0 => Ok(()),
        _ => Err(Fault {
            vector: LAST_VECTOR[slot()].load(Ordering::SeqCst),
            addr: LAST_ADDR[slot()].load(Ordering::SeqCst),
        }),
    }
}

fn canonical(a: u64) -> bool {
    matches!(a >> 47, 0 | 0x1ffff)
}

/// For the exception hook: if `frame` is a page fault or general protection
/// fault of the copy instruction, resumes the copy at its error return and
/// returns `true`.
pub fn fixup(frame: &mut TrapFrame) -> bool {
    let insn = (&raw const checked_copy_insn) as u64;
    if frame.rip != insn || !matches!(frame.vector, 13 | 14) {
        return false;
    }
    let addr = if frame.vector == 14 {
        x86_64::registers::control::Cr2::read_raw()
    } else if !canonical(frame.rsi) {
        frame.rsi
    } else {
        frame.rdi
    };
    LAST_VECTOR[slot()].store(frame.vector, Ordering::SeqCst);
    LAST_ADDR[slot()].store(addr, Ordering::SeqCst);
    frame.rip = (&raw const checked_copy_fixup) as u64;
    true
}
