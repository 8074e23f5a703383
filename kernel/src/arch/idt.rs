//! The IDT, the interrupt entry stubs and the exception reporter.
//!
//! Vectors 0–31 are CPU exceptions, 32–47 the remapped 8259 IRQs (see
//! [`crate::arch::irq`]), 240–255 the local APIC's timer, error, IPI and
//! spurious vectors (see [`crate::arch::apic`]). One IDT serves every CPU.
//! Each vector has a naked entry stub that pushes a
//! zero error code when the CPU does not push one, then the vector number,
//! and jumps to a common stub. The common stub saves all 15 general
//! registers, building a [`TrapFrame`] on the stack, calls [`trap_dispatch`]
//! with a pointer to it, then restores every register *from the frame* and
//! returns with `iretq`. Whatever a hook writes into the frame (RIP, RSP,
//! RFLAGS, registers) is therefore what the interrupted code resumes with.
//!
//! An exception first goes to the hook installed with
//! [`set_exception_hook`] (on the boot CPU only: probes and self-tests run
//! there, and the hook's state is that CPU's). If there is none, or it
//! returns `false`, the kernel prints the vector, its name, the error code,
//! the CPU and its APIC id, RIP, CS, RFLAGS, RSP, SS, CR2 (for #PF and #DF,
//! naming a kernel stack overflow) and all general registers on COM1 and
//! exits QEMU with failure.
//!
//! An NMI goes to [`crate::arch::nmi`] first: once the watchdog is armed,
//! every NMI is its tick. Double fault, NMI and machine check run on their
//! own IST stacks ([`crate::arch::gdt`]).

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Once;

use crate::arch::fn_cell::AtomicFn;
use crate::arch::gdt;
use crate::console::EmergencyWriter;

/// Register state saved on interrupt entry; every field is writable and is
/// restored on return.
#[repr(C)]
#[derive(Clone, Debug, Default)]
pub struct TrapFrame {
    /// Saved RAX.
    pub rax: u64,
    /// Saved RBX.
    pub rbx: u64,
    /// Saved RCX.
    pub rcx: u64,
    /// Saved RDX.
    pub rdx: u64,
    /// Saved RSI.
    pub rsi: u64,
    /// Saved RDI.
    pub rdi: u64,
    /// Saved RBP.
    pub rbp: u64,
    /// Saved R8.
    pub r8: u64,
    /// Saved R9.
    pub r9: u64,
    /// Saved R10.
    pub r10: u64,
    /// Saved R11.
    pub r11: u64,
    /// Saved R12.
    pub r12: u64,
    /// Saved R13.
    pub r13: u64,
    /// Saved R14.
    pub r14: u64,
    /// Saved R15.
    pub r15: u64,
    /// Interrupt vector (0–255).
    pub vector: u64,
    /// CPU error code, or 0 for vectors without one.
    pub error_code: u64,
    /// Hardware interrupt frame: where execution resumes.
    pub rip: u64,
    /// Code segment selector at the time of the trap.
    pub cs: u64,
    /// RFLAGS at the time of the trap.
    pub rflags: u64,
    /// Stack pointer at the time of the trap.
    pub rsp: u64,
    /// Stack segment selector at the time of the trap.
    pub ss: u64,
}

const _: () = assert!(size_of::<TrapFrame>() == 22 * 8);

/// Called for CPU exceptions before the kernel dies; returning `true`
/// resumes execution with the (possibly modified) frame.
pub type ExceptionHook = fn(&mut TrapFrame) -> bool;

static EXCEPTION_HOOK: AtomicFn<ExceptionHook> = AtomicFn::none();

/// Installs (or with `None` removes) the exception hook.
pub fn set_exception_hook(hook: Option<ExceptionHook>) {
    EXCEPTION_HOOK.store(hook);
}

fn exception_hook() -> Option<ExceptionHook> {
    EXCEPTION_HOOK.load()
}

/// Mnemonic and name of each exception vector.
pub const EXCEPTION_NAMES: [(&str, &str); 32] = [
    ("#DE", "Divide Error"),
    ("#DB", "Debug"),
    ("NMI", "Non-Maskable Interrupt"),
    ("#BP", "Breakpoint"),
    ("#OF", "Overflow"),
    ("#BR", "BOUND Range Exceeded"),
    ("#UD", "Invalid Opcode"),
    ("#NM", "Device Not Available"),
    ("#DF", "Double Fault"),
    ("---", "Coprocessor Segment Overrun"),
    ("#TS", "Invalid TSS"),
    ("#NP", "Segment Not Present"),
    ("#SS", "Stack-Segment Fault"),
    ("#GP", "General Protection"),
    ("#PF", "Page Fault"),
    ("---", "Reserved"),
    ("#MF", "x87 Floating-Point Error"),
    ("#AC", "Alignment Check"),
    ("#MC", "Machine Check"),
    ("#XM", "SIMD Floating-Point Exception"),
    ("#VE", "Virtualization Exception"),
    ("#CP", "Control Protection"),
    ("---", "Reserved"),
    ("---", "Reserved"),
    ("---", "Reserved"),
    ("---", "Reserved"),
    ("---", "Reserved"),
    ("---", "Reserved"),
    ("#HV", "Hypervisor Injection"),
    ("#VC", "VMM Communication"),
    ("#SX", "Security Exception"),
    ("---", "Reserved"),
];

/// Vector of the non-maskable interrupt.
pub const NMI: u64 = 2;
/// Vector of the page-fault exception.
pub const PAGE_FAULT: u64 = 14;
/// Vector of the double-fault exception.
pub const DOUBLE_FAULT: u64 = 8;

// ---- entry stubs ---------------------------------------------------------

/// Common entry: save registers, call `trap_dispatch`, restore, `iretq`.
/// On entry the stack holds: vector, error code, RIP, CS, RFLAGS, RSP, SS.
/// The CPU aligned RSP to 16 before pushing SS; 7 + 15 words keep it aligned.
#[unsafe(naked)]
unsafe extern "C" fn isr_common() {
    core::arch::naked_asm!(
        "push r15",
        "push r14",
        "push r13",
        "push r12",
        "push r11",
        "push r10",
        "push r9",
        "push r8",
        "push rbp",
        "push rdi",
        "push rsi",
        "push rdx",
        "push rcx",
        "push rbx",
        "push rax",
        "cld",
        "mov rdi, rsp",
        "call {dispatch}",
        "pop rax",
        "pop rbx",
        "pop rcx",
        "pop rdx",
        "pop rsi",
        "pop rdi",
        "pop rbp",
        "pop r8",
        "pop r9",
        "pop r10",
        "pop r11",
        "pop r12",
        "pop r13",
        "pop r14",
        "pop r15",
        "add rsp, 16",
        "iretq",
        dispatch = sym trap_dispatch,
    )
}

macro_rules! stubs {
    ($( $name:ident = $vec:literal $kind:ident ),* $(,)?) => {
        $( stubs!(@one $name, $vec, $kind); )*
        /// Each vector with a gate and its entry stub.
        static STUBS: [(u8, unsafe extern "C" fn()); NUM_STUBS] = [$(($vec, $name)),*];
    };
    (@one $name:ident, $vec:literal, noerr) => {
        #[unsafe(naked)]
        unsafe extern "C" fn $name() {
            core::arch::naked_asm!(
                "push 0",
                concat!("push ", $vec),
                "jmp {common}",
                common = sym isr_common,
            )
        }
    };
    (@one $name:ident, $vec:literal, err) => {
        #[unsafe(naked)]
        unsafe extern "C" fn $name() {
            core::arch::naked_asm!(
                concat!("push ", $vec),
                "jmp {common}",
                common = sym isr_common,
            )
        }
    };
}

/// Vectors with entry stubs: 32 exceptions, 16 legacy IRQs and 16 local
/// APIC vectors.
pub const NUM_STUBS: usize = 64;

stubs! {
    isr0 = 0 noerr, isr1 = 1 noerr, isr2 = 2 noerr, isr3 = 3 noerr,
    isr4 = 4 noerr, isr5 = 5 noerr, isr6 = 6 noerr, isr7 = 7 noerr,
    isr8 = 8 err, isr9 = 9 noerr, isr10 = 10 err, isr11 = 11 err,
    isr12 = 12 err, isr13 = 13 err, isr14 = 14 err, isr15 = 15 noerr,
    isr16 = 16 noerr, isr17 = 17 err, isr18 = 18 noerr, isr19 = 19 noerr,
    isr20 = 20 noerr, isr21 = 21 err, isr22 = 22 noerr, isr23 = 23 noerr,
    isr24 = 24 noerr, isr25 = 25 noerr, isr26 = 26 noerr, isr27 = 27 noerr,
    isr28 = 28 noerr, isr29 = 29 err, isr30 = 30 err, isr31 = 31 noerr,
    isr32 = 32 noerr, isr33 = 33 noerr, isr34 = 34 noerr, isr35 = 35 noerr,
    isr36 = 36 noerr, isr37 = 37 noerr, isr38 = 38 noerr, isr39 = 39 noerr,
    isr40 = 40 noerr, isr41 = 41 noerr, isr42 = 42 noerr, isr43 = 43 noerr,
    isr44 = 44 noerr, isr45 = 45 noerr, isr46 = 46 noerr, isr47 = 47 noerr,
    isr240 = 240 noerr, isr241 = 241 noerr, isr242 = 242 noerr, isr243 = 243 noerr,
    isr244 = 244 noerr, isr245 = 245 noerr, isr246 = 246 noerr, isr247 = 247 noerr,
    isr248 = 248 noerr, isr249 = 249 noerr, isr250 = 250 noerr, isr251 = 251 noerr,
    isr252 = 252 noerr, isr253 = 253 noerr, isr254 = 254 noerr, isr255 = 255 noerr,
}

// ---- the table -------------------------------------------------------------

#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

impl Gate {
    const MISSING: Gate = Gate {
        offset_low: 0,
        selector: 0,
        ist: 0,
        type_attr: 0,
        offset_mid: 0,
        offset_high: 0,
        reserved: 0,
    };

    /// Present, DPL 0, 64-bit interrupt gate (interrupts off on entry).
    fn interrupt(handler: u64, selector: u16, ist: u8) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector,
            ist,
            type_attr: 0x8e,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static IDT: Once<Idt> = Once::new();

/// Builds (once) and loads the IDT on the calling CPU. Needs [`gdt::init`]
/// first.
pub fn init() {
    let idt = IDT.call_once(|| {
        let cs = gdt::selectors().code.0;
        let mut idt = Idt([Gate::MISSING; 256]);
        for &(vector, stub) in STUBS.iter() {
            let ist = match vector {
                8 => gdt::DOUBLE_FAULT_IST,
                2 => gdt::NMI_IST,
                18 => gdt::MACHINE_CHECK_IST,
                _ => 0,
            };
            idt.0[usize::from(vector)] = Gate::interrupt(stub as usize as u64, cs, ist);
        }
        idt
    });
    let ptr = x86_64::structures::DescriptorTablePointer {
        limit: (size_of::<Idt>() - 1) as u16,
        base: x86_64::VirtAddr::from_ptr(idt),
    };
    // SAFETY: the IDT lives in a static that is never modified again, and
    // every present gate points at an entry stub with the frame layout the
    // common stub expects.
    unsafe { x86_64::instructions::tables::lidt(&ptr) };
}

// ---- dispatch ----------------------------------------------------------------

/// Set by the first CPU that reports a fatal exception; a CPU taking one
/// after it stops without a report of its own.
static REPORTING: AtomicBool = AtomicBool::new(false);

/// Called by the common stub for every vector.
extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    if frame.vector == NMI && crate::arch::nmi::dispatch(frame) {
        return;
    }
    match frame.vector {
        0..=31 => {
            if crate::arch::smp::fix_probe_fault(frame) {
                return;
            }
            if crate::arch::percpu::index() == 0
                && let Some(hook) = exception_hook()
                && hook(frame)
            {
                return;
            }
            if REPORTING.swap(true, Ordering::SeqCst) {
                // Another CPU is reporting (an NMI reaches every CPU at
                // once): two reports at once would interleave on COM1.
                crate::exit::halt_forever();
            }
            report_exception(frame);
            crate::exit::failure();
        }
        32..=47 => crate::arch::irq::dispatch(frame),
        240..=255 => crate::arch::apic::dispatch(frame),
        v => log::warn!("unexpected interrupt vector {v}"),
    }
}

fn read_cr2() -> u64 {
    x86_64::registers::control::Cr2::read_raw()
}

/// Prints the exception report for `frame` on COM1 (lock-free).
pub fn report_exception(frame: &TrapFrame) {
    let mut w = EmergencyWriter;
    let (mnemonic, name) = EXCEPTION_NAMES
        .get(frame.vector as usize)
        .copied()
        .unwrap_or(("?", "Unknown"));
    let _ = writeln!(
        w,
        "\nEXCEPTION: vector {} {} ({}), error code {:#x}",
        frame.vector, mnemonic, name, frame.error_code
    );
    if let Some(cpu) = crate::arch::percpu::current() {
        let _ = writeln!(w, "  on CPU {} (APIC id {})", cpu.index, cpu.apic_id);
    }
    if frame.vector == DOUBLE_FAULT
        && (crate::mm::stack::is_guard_page(read_cr2())
            || crate::mm::stack::is_guard_page(frame.rsp.wrapping_sub(8)))
    {
        let _ = writeln!(
            w,
            "  kernel stack overflow: CR2={:#018x}, RSP={:#018x} at a stack guard page",
            read_cr2(),
            frame.rsp
        );
    }
    if frame.vector == DOUBLE_FAULT {
        let _ = writeln!(w, "  CR2={:#018x}", read_cr2());
    }
    if frame.vector == NMI {
        let status = crate::arch::nmi::status();
        let _ = writeln!(
            w,
            "  NMI status (port {:#x}) {status:#04x}: {}",
            smpboot::nmi::STATUS_PORT,
            smpboot::nmi::hardware_reason(status).unwrap_or("no hardware error reported")
        );
    }
    if frame.vector == PAGE_FAULT {
        let e = frame.error_code;
        let _ = writeln!(
            w,
            "  CR2={:#018x} ({} {} {})",
            read_cr2(),
            if e & 1 != 0 {
                "protection violation"
            } else {
                "not present"
            },
            if e & 2 != 0 {
                "on write"
            } else if e & 16 != 0 {
                "on fetch"
            } else {
                "on read"
            },
            if e & 4 != 0 { "user" } else { "kernel" },
        );
    }
    let _ = writeln!(
        w,
        "  RIP={:#018x} CS={:#06x} RFLAGS={:#010x} RSP={:#018x} SS={:#06x}",
        frame.rip, frame.cs, frame.rflags, frame.rsp, frame.ss
    );
    let regs = [
        ("RAX", frame.rax),
        ("RBX", frame.rbx),
        ("RCX", frame.rcx),
        ("RDX", frame.rdx),
        ("RSI", frame.rsi),
        ("RDI", frame.rdi),
        ("RBP", frame.rbp),
        ("R8 ", frame.r8),
        ("R9 ", frame.r9),
        ("R10", frame.r10),
        ("R11", frame.r11),
        ("R12", frame.r12),
        ("R13", frame.r13),
        ("R14", frame.r14),
        ("R15", frame.r15),
    ];
    for row in regs.chunks(3) {
        let _ = write!(w, " ");
        for (name, value) in row {
            let _ = write!(w, " {name}={value:#018x}");
        }
        let _ = writeln!(w);
    }
}
