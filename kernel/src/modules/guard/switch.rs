//! The unsafe part of the guard: the guard state's cell, the saved
//! contexts (one set per CPU), and the jump into module code and back out of it (a setjmp and
//! longjmp in assembly). Everything the guard decides is in its parent
//! module, in safe code.

#![allow(unsafe_code)]

use core::arch::naked_asm;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use super::{MAX_DEPTH, Outcome};
use crate::arch::idt::TrapFrame;
use crate::arch::percpu::MAX_CPUS;

/// Value [`probe_enter`] returns when the call was cut short.
const ESCAPED: i64 = i64::MIN;

/// Kernel state shared between guarded calls and the hooks that interrupt
/// them, reached only through [`Shared::with`].
pub(super) struct Shared<T> {
    value: UnsafeCell<T>,
    busy: AtomicBool,
}

// SAFETY: the value is only reached through `with`, which takes `busy`
// (an atomic swap, so it excludes every other CPU too), runs with
// interrupts disabled and refuses to nest, so no two references to it ever
// exist at once; `T: Send` because the value passes between CPUs and
// between the interrupted code and its interrupt handlers. The guard keeps
// one cell per CPU, so a CPU normally finds its own cell free.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// A cell holding `value`.
    pub(super) const fn new(value: T) -> Self {
        Shared {
            value: UnsafeCell::new(value),
            busy: AtomicBool::new(false),
        }
    }

    /// Runs `f` on the value with interrupts off; `None` if it is already in
    /// use (an exception inside `f` itself, which is a kernel bug).
    pub(super) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        crate::arch::without_interrupts(|| {
            if self.busy.swap(true, Ordering::SeqCst) {
                return None;
            }
            // SAFETY: interrupts are off and `busy` was clear, so this is the
            // only reference to the value (see the `Sync` impl).
            let r = f(unsafe { &mut *self.value.get() });
            self.busy.store(false, Ordering::SeqCst);
            Some(r)
        })
    }
}

/// Saved context of [`probe_enter`]: rbx, rbp, r12-r15, rsp, return rip.
#[repr(C)]
#[derive(Clone, Copy)]
struct JmpBuf([u64; 8]);

/// One saved context per CPU and frame depth; written by `probe_enter`,
/// read by `probe_escape`, never through a reference.
struct Contexts(UnsafeCell<[[JmpBuf; MAX_DEPTH]; MAX_CPUS]>);
// SAFETY: only raw pointers into it are formed (`context`); each slot is
// used by the one guarded call at that depth on that CPU, which is strictly
// nested within the calls below it on the same CPU; no CPU touches
// another's slots.
unsafe impl Sync for Contexts {}

static CONTEXTS: Contexts = Contexts(UnsafeCell::new([[JmpBuf([0; 8]); MAX_DEPTH]; MAX_CPUS]));

/// The calling CPU's saved context of `depth`.
fn context(depth: usize) -> *mut JmpBuf {
    assert!(depth < MAX_DEPTH, "guard depth {depth}");
    let cpu = crate::arch::percpu::index();
    assert!(cpu < MAX_CPUS, "CPU index {cpu}");
    // SAFETY: in bounds (both checked); only a raw pointer is formed.
    unsafe { (CONTEXTS.0.get() as *mut JmpBuf).add(cpu * MAX_DEPTH + depth) }
}

/// Saves the context `probe_escape` returns to in `buf`, then calls
/// `entry(a0, a1)` with interrupts enabled if `irq_on` is non-zero, and
/// disabled again after it (so no hook can find a half-set-up frame).
#[unsafe(naked)]
unsafe extern "C" fn probe_enter(
    entry: u64,
    buf: *mut JmpBuf,
    a0: u64,
    a1: u64,
    irq_on: u64,
) -> i64 {
    naked_asm!(
        "mov [rsi + 0x00], rbx",
        "mov [rsi + 0x08], rbp",
        "mov [rsi + 0x10], r12",
        "mov [rsi + 0x18], r13",
        "mov [rsi + 0x20], r14",
        "mov [rsi + 0x28], r15",
        "lea rax, [rsp + 8]",
        "mov [rsi + 0x30], rax",
        "mov rax, [rsp]",
        "mov [rsi + 0x38], rax",
        "mov rax, rdi",
        "mov rdi, rdx",
        "mov rsi, rcx",
        // Keep the stack 16-byte aligned at the call, as the ABI wants.
        "sub rsp, 8",
        "test r8, r8",
        "jz 2f",
        "sti",
        "2:",
        "call rax",
        "cli",
        "add rsp, 8",
        "movsxd rax, eax",
        "ret",
    )
}

/// Returns from the `probe_enter` that saved `buf`, with `code` as its
/// value and interrupts disabled.
#[unsafe(naked)]
unsafe extern "C" fn probe_escape(buf: *const JmpBuf, code: i64) -> ! {
    naked_asm!(
        "cli",
        "mov rbx, [rdi + 0x00]",
        "mov rbp, [rdi + 0x08]",
        "mov r12, [rdi + 0x10]",
        "mov r13, [rdi + 0x18]",
        "mov r14, [rdi + 0x20]",
        "mov r15, [rdi + 0x28]",
        "mov rsp, [rdi + 0x30]",
        "mov rax, rsi",
        "cld",
        "jmp qword ptr [rdi + 0x38]",
    )
}

/// Jumps to `entry(a0, a1)` saving the context of `depth`; `None` if the
/// call was cut short by [`escape`] or [`escape_via_frame`].
///
/// # Safety
/// `entry` must be the address of an `extern "C"` function (of module code,
/// mapped executable and relocated for where it is) taking at most two
/// integer arguments, and `depth` the guard frame set up for this call.
unsafe fn jump(depth: usize, entry: u64, a0: u64, a1: u64, irq_on: bool) -> Option<i64> {
    // SAFETY: `entry` per this function's contract; the context slot of
    // `depth` belongs to this call until it returns or escapes.
    let code = unsafe { probe_enter(entry, context(depth), a0, a1, irq_on as u64) };
    (code != ESCAPED).then_some(code)
}

/// Calls the probe or self-test at `entry` (an `extern "C" fn() -> i32`)
/// as the running module ([`crate::kapi::owner`]) with a time budget.
///
/// # Safety
/// `entry` must be the address of an `extern "C" fn() -> i32` in module text
/// that is mapped executable and relocated for where it is.
pub unsafe fn run(entry: u64, budget_ms: u64) -> Outcome {
    super::guarded(
        crate::kapi::owner(),
        super::Kind::Probe,
        budget_ms,
        // SAFETY: `entry` per this function's contract.
        |depth| unsafe { jump(depth, entry, 0, 0, true) },
    )
}

/// Calls IRQ handler `f(data)` in the frame of `depth`.
pub(super) fn call_handler(depth: usize, f: extern "C" fn(usize), data: usize) -> Option<i64> {
    // SAFETY: `f` is a function pointer of exactly this signature.
    unsafe { jump(depth, f as usize as u64, data as u64, 0, false) }
}

/// Calls console write function `f(bytes)` in the frame of `depth`.
pub(super) fn call_writer(
    depth: usize,
    f: extern "C" fn(*const u8, usize),
    bytes: &[u8],
) -> Option<i64> {
    let (p, n) = (bytes.as_ptr() as u64, bytes.len() as u64);
    // SAFETY: `f` is a function pointer of exactly this signature, and
    // `bytes` outlives the call.
    unsafe { jump(depth, f as usize as u64, p, n, false) }
}

/// Makes the interrupted code `frame` resume in [`probe_escape`] towards
/// the context of `depth` (from the exception and tick hooks).
pub(super) fn escape_via_frame(frame: &mut TrapFrame, depth: usize) {
    let buf = context(depth);
    frame.rip = probe_escape as *const () as u64;
    frame.rdi = buf as u64;
    frame.rsi = ESCAPED as u64;
    // probe_escape loads its own stack pointer; give iretq a sane one.
    // SAFETY: reading the saved stack pointer written by probe_enter.
    frame.rsp = unsafe { (*buf).0[6] } - 64;
    // Interrupts off until the guard restores the caller's state.
    frame.rflags = 0x2;
}

/// Leaves module code for the context of frame `depth` now, discarding
/// everything above that context without running destructors (the guard
/// calls this only where that is nothing of the kernel's, see its
/// documentation).
pub(super) fn escape(depth: usize) -> ! {
    assert!(super::frame_live(depth), "escape to a dead guard frame");
    // SAFETY: the frame is live, so the probe_enter that saved its context
    // is still on the stack below us and returns to its caller from here.
    unsafe { probe_escape(context(depth), ESCAPED) }
}
