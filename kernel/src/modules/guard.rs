//! Running module code under guard: a CPU exception, a panic, a forbidden
//! access or an exhausted time budget inside a probe returns control to the
//! loader with the reason, and the kernel carries on.
//!
//! [`run`] saves the callee-saved registers and stack pointer (a setjmp)
//! before calling the module. The exception hook and the timer-tick hook
//! rewrite the interrupted frame so that `iretq` resumes in [`probe_escape`]
//! (a longjmp), which restores them and returns [`ESCAPED`] from the call.
//! The time budget is not enforced while the module is inside a kernel
//! service (the service may hold a lock); the cut-off then happens as the
//! service returns.

use core::arch::naked_asm;
use core::cell::UnsafeCell;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::arch::idt::TrapFrame;

/// Value [`probe_enter`] returns when the call was cut short.
const ESCAPED: i64 = i64::MIN;

/// A short message kept without allocating (faults may happen anywhere).
#[derive(Clone, Copy)]
pub struct Msg {
    buf: [u8; 160],
    len: usize,
}

impl Msg {
    /// An empty message.
    pub const fn new() -> Msg {
        Msg {
            buf: [0; 160],
            len: 0,
        }
    }

    /// A message formatted from `args` (cut at 160 bytes).
    pub fn from_fmt(args: fmt::Arguments<'_>) -> Msg {
        let mut m = Msg::new();
        let _ = m.write_fmt(args);
        m
    }

    /// A message holding (a prefix of) `bytes`, lossily as UTF-8.
    pub fn from_bytes(bytes: &[u8]) -> Msg {
        let s = match core::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
        };
        Msg::from_fmt(format_args!("{s}"))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Write for Msg {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            let mut b = [0u8; 4];
            let e = c.encode_utf8(&mut b).as_bytes();
            if self.len + e.len() > self.buf.len() {
                break;
            }
            self.buf[self.len..self.len + e.len()].copy_from_slice(e);
            self.len += e.len();
        }
        Ok(())
    }
}

impl Default for Msg {
    fn default() -> Self {
        Msg::new()
    }
}

/// Why guarded module code did not return normally.
#[derive(Clone, Copy)]
pub enum Abort {
    /// A CPU exception.
    Fault {
        /// Exception vector.
        vector: u64,
        /// Instruction pointer.
        rip: u64,
        /// Faulting address (page faults).
        cr2: u64,
        /// Error code pushed by the CPU (0 if none).
        error: u64,
    },
    /// The module panicked.
    Panic(Msg),
    /// The module ran past its time budget.
    Hung {
        /// The budget in milliseconds.
        budget_ms: u64,
    },
    /// The module used a service it may not (unclaimed port, foreign memory).
    Violation(Msg),
}

impl Abort {
    /// A violation with a formatted message.
    pub fn violation(args: fmt::Arguments<'_>) -> Abort {
        Abort::Violation(Msg::from_fmt(args))
    }

    /// Short kind name for the report.
    pub fn kind(&self) -> &'static str {
        match self {
            Abort::Fault { .. } => "fault",
            Abort::Panic(_) => "panic",
            Abort::Hung { .. } => "hung",
            Abort::Violation(_) => "violation",
        }
    }
}

impl fmt::Display for Abort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Abort::Fault {
                vector,
                rip,
                cr2,
                error,
            } => {
                write!(
                    f,
                    "{} (vector {vector}) at rip {rip:#x}",
                    exception_name(*vector)
                )?;
                if *vector == 14 {
                    write!(f, ", address {cr2:#x}, error {error:#x}")?;
                } else if *error != 0 {
                    write!(f, ", error {error:#x}")?;
                }
                Ok(())
            }
            Abort::Panic(m) => write!(f, "panic: {}", m.as_str()),
            Abort::Hung { budget_ms } => write!(f, "hung: still running after {budget_ms} ms"),
            Abort::Violation(m) => write!(f, "violation: {}", m.as_str()),
        }
    }
}

/// Mnemonic name of an exception vector.
pub fn exception_name(vector: u64) -> &'static str {
    const NAMES: [&str; 21] = [
        "divide error (#DE)",
        "debug (#DB)",
        "NMI",
        "breakpoint (#BP)",
        "overflow (#OF)",
        "bound range (#BR)",
        "invalid opcode (#UD)",
        "device not available (#NM)",
        "double fault (#DF)",
        "coprocessor segment overrun",
        "invalid TSS (#TS)",
        "segment not present (#NP)",
        "stack fault (#SS)",
        "general protection (#GP)",
        "page fault (#PF)",
        "reserved",
        "x87 error (#MF)",
        "alignment check (#AC)",
        "machine check (#MC)",
        "SIMD error (#XM)",
        "virtualization (#VE)",
    ];
    NAMES.get(vector as usize).copied().unwrap_or("exception")
}

/// Saved context of [`probe_enter`]: rbx, rbp, r12-r15, rsp, return rip.
#[repr(C)]
struct JmpBuf([u64; 8]);

/// Single-CPU kernel state shared between the loader and the hooks.
struct Cell<T>(UnsafeCell<T>);
// SAFETY: the kernel runs on one CPU; each field is written either by the
// loader with no guarded call running, or by a hook that interrupted the
// guarded call and finishes before the loader reads it.
unsafe impl<T> Sync for Cell<T> {}

static ACTIVE: AtomicBool = AtomicBool::new(false);
static IN_SERVICE: AtomicU32 = AtomicU32::new(0);
static PENDING_TIMEOUT: AtomicBool = AtomicBool::new(false);
static DEADLINE: AtomicU64 = AtomicU64::new(u64::MAX);
static BUDGET_MS: AtomicU64 = AtomicU64::new(0);
static JMP: Cell<JmpBuf> = Cell(UnsafeCell::new(JmpBuf([0; 8])));
static ABORT: Cell<Option<Abort>> = Cell(UnsafeCell::new(None));
static FAIL: Cell<Option<(i32, Msg)>> = Cell(UnsafeCell::new(None));

/// Calls `entry` (an `extern "C" fn() -> i32`) after saving the context
/// `probe_escape` returns to.
#[unsafe(naked)]
unsafe extern "C" fn probe_enter(entry: u64, buf: *mut JmpBuf) -> i64 {
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
        // Keep the stack 16-byte aligned at the call, as the ABI wants.
        "sub rsp, 8",
        "call rdi",
        "add rsp, 8",
        "movsxd rax, eax",
        "ret",
    )
}

/// Returns from the `probe_enter` that saved `buf`, with `code` as its value.
#[unsafe(naked)]
unsafe extern "C" fn probe_escape(buf: *const JmpBuf, code: i64) -> ! {
    naked_asm!(
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

/// How a guarded call ended.
pub enum Outcome {
    /// The module's function returned this value.
    Returned(i32),
    /// It was cut short.
    Aborted(Abort),
}

/// Installs the hooks; called once before the first module runs.
pub fn install() {
    crate::arch::idt::set_exception_hook(Some(on_exception));
    crate::arch::irq::set_tick_hook(Some(on_tick));
}

/// Calls the module function at `entry` with a time budget.
///
/// # Safety
/// `entry` must be the address of an `extern "C" fn() -> i32` in module text
/// that is mapped executable and relocated for where it is.
pub unsafe fn run(entry: u64, budget_ms: u64) -> Outcome {
    // SAFETY: no guarded call is running, so nothing else touches these.
    unsafe {
        *ABORT.0.get() = None;
        *FAIL.0.get() = None;
    }
    IN_SERVICE.store(0, Ordering::SeqCst);
    PENDING_TIMEOUT.store(false, Ordering::SeqCst);
    BUDGET_MS.store(budget_ms, Ordering::SeqCst);
    let budget_ticks = crate::arch::tsc::frequency_hz().saturating_mul(budget_ms) / 1000;
    DEADLINE.store(
        crate::arch::tsc::read().saturating_add(budget_ticks),
        Ordering::SeqCst,
    );
    ACTIVE.store(true, Ordering::SeqCst);
    // Module code runs with interrupts on, so the tick can cut it off.
    x86_64::instructions::interrupts::enable();
    // SAFETY: `entry` is valid per this function's contract; JMP is only used
    // by this call and the escape that ends it.
    let code = unsafe { probe_enter(entry, JMP.0.get()) };
    ACTIVE.store(false, Ordering::SeqCst);
    DEADLINE.store(u64::MAX, Ordering::SeqCst);
    if code == ESCAPED {
        // SAFETY: the hook or service that escaped wrote ABORT before
        // escaping; no guarded call runs now.
        let a = unsafe { (*ABORT.0.get()).take() };
        Outcome::Aborted(a.unwrap_or(Abort::violation(format_args!("escaped without a reason"))))
    } else {
        Outcome::Returned(code as i32)
    }
}

/// The failure the probe reported through `kapi_probe_fail`, if any.
pub fn take_failure() -> Option<(i32, Msg)> {
    // SAFETY: called by the loader after the guarded call ended.
    unsafe { (*FAIL.0.get()).take() }
}

fn set_abort(a: Abort) {
    // SAFETY: only the interrupted guarded call could race, and it is not
    // running while its interrupt hook or its own service call runs.
    unsafe { *ABORT.0.get() = Some(a) }
}

fn escape_via_frame(frame: &mut TrapFrame) {
    frame.rip = probe_escape as *const () as u64;
    frame.rdi = JMP.0.get() as u64;
    frame.rsi = ESCAPED as u64;
    // probe_escape loads its own stack pointer; give iretq a sane one.
    // SAFETY: reading the saved stack pointer written by probe_enter.
    frame.rsp = unsafe { (*JMP.0.get()).0[6] } - 64;
    frame.rflags = 0x202;
}

fn on_exception(frame: &mut TrapFrame) -> bool {
    super::stale::explain(frame);
    // NMI, double fault and machine check are never a module's doing.
    let fatal = matches!(frame.vector, 2 | 8 | 18);
    if !ACTIVE.load(Ordering::SeqCst) || IN_SERVICE.load(Ordering::SeqCst) > 0 || fatal {
        return false;
    }
    let cr2 = if frame.vector == 14 {
        x86_64::registers::control::Cr2::read_raw()
    } else {
        0
    };
    set_abort(Abort::Fault {
        vector: frame.vector,
        rip: frame.rip,
        cr2,
        error: frame.error_code,
    });
    escape_via_frame(frame);
    true
}

fn on_tick(frame: &mut TrapFrame) {
    if !ACTIVE.load(Ordering::SeqCst) || crate::arch::tsc::read() < DEADLINE.load(Ordering::SeqCst)
    {
        return;
    }
    if IN_SERVICE.load(Ordering::SeqCst) > 0 {
        PENDING_TIMEOUT.store(true, Ordering::SeqCst);
        return;
    }
    set_abort(Abort::Hung {
        budget_ms: BUDGET_MS.load(Ordering::SeqCst),
    });
    escape_via_frame(frame);
}

fn escape_now(a: Abort) -> ! {
    set_abort(a);
    IN_SERVICE.store(0, Ordering::SeqCst);
    // SAFETY: a guarded call is active (checked by callers), so JMP holds the
    // context of its probe_enter, which is still on the stack below us.
    unsafe { probe_escape(JMP.0.get(), ESCAPED) }
}

/// Marks entry into a kernel service.
pub fn enter_service() {
    IN_SERVICE.fetch_add(1, Ordering::SeqCst);
}

/// Marks the end of a kernel service; a time-out that fell inside it takes
/// effect now.
pub fn leave_service() {
    if IN_SERVICE.fetch_sub(1, Ordering::SeqCst) == 1
        && ACTIVE.load(Ordering::SeqCst)
        && PENDING_TIMEOUT.swap(false, Ordering::SeqCst)
    {
        escape_now(Abort::Hung {
            budget_ms: BUDGET_MS.load(Ordering::SeqCst),
        });
    }
}

/// A module broke a service's rules: during a guarded call that ends the
/// call; otherwise (a kept module after boot) it is logged and the service
/// returns `default`.
pub fn violation<T>(a: Abort, default: T) -> T {
    if ACTIVE.load(Ordering::SeqCst) {
        escape_now(a);
    }
    ::log::error!("module {}: {}", super::name_of(crate::kapi::owner()), a);
    default
}

/// `kapi_probe_fail`: the running probe's reason for failing.
///
/// # Safety
/// `msg` must be valid for `len` bytes.
pub unsafe extern "C" fn kapi_probe_fail(kind: i32, msg: *const u8, len: usize) {
    crate::kapi::service(|| {
        // SAFETY: forwarded from this function's contract.
        let m = Msg::from_bytes(unsafe { crate::kapi::module_bytes_pub(msg, len) });
        if ACTIVE.load(Ordering::SeqCst) {
            // SAFETY: written by the running guarded call itself.
            unsafe { *FAIL.0.get() = Some((kind, m)) }
        }
    })
}
crate::export_symbol!(kapi_probe_fail);

/// `kapi_panic`: the running module panicked.
///
/// # Safety
/// `msg` must be valid for `len` bytes.
pub unsafe extern "C" fn kapi_panic(msg: *const u8, len: usize) -> ! {
    // SAFETY: forwarded from this function's contract.
    let m = Msg::from_bytes(unsafe { crate::kapi::module_bytes_pub(msg, len) });
    if ACTIVE.load(Ordering::SeqCst) {
        escape_now(Abort::Panic(m));
    }
    panic!(
        "module {} panicked: {}",
        super::name_of(crate::kapi::owner()),
        m.as_str()
    );
}
crate::export_symbol!(kapi_panic);
