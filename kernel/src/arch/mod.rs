//! x86_64 specifics: descriptor tables, exceptions, interrupts, timers,
//! the local APIC, the I/O APIC and NMIs (for the watchdog), per-CPU areas
//! and starting the other CPUs; the vector state the checksum uses.

pub mod apic;
pub mod checked_copy;
pub mod fn_cell;
pub mod gdt;
pub mod idt;
pub mod ioapic;
pub mod irq;
pub mod nmi;
pub mod percpu;
pub mod port;
pub mod simd;
pub mod smp;
pub mod trampoline;
pub mod tsc;

pub use idt::TrapFrame;

/// Enables interrupts.
pub fn enable_interrupts() {
    x86_64::instructions::interrupts::enable();
}

/// Disables interrupts.
pub fn disable_interrupts() {
    x86_64::instructions::interrupts::disable();
}

/// Runs `f` with interrupts disabled, restoring the previous state after.
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    x86_64::instructions::interrupts::without_interrupts(f)
}

/// Runs `f` on the value behind `m`, locked with interrupts disabled, so
/// that an interrupt handler taking the same lock never spins on this CPU.
pub fn locked<T, R>(m: &spin::Mutex<T>, f: impl FnOnce(&mut T) -> R) -> R {
    without_interrupts(|| f(&mut m.lock()))
}

/// Makes the CPU see code written through another mapping (the module
/// write alias) before it runs it: a serialising instruction.
pub fn serialize() {
    // SAFETY: CPUID is a serialising instruction with no other effect; rbx
    // is saved around it because the compiler reserves it.
    unsafe {
        core::arch::asm!(
            "push rbx",
            "cpuid",
            "pop rbx",
            inout("eax") 0u32 => _,
            inout("ecx") 0u32 => _,
            out("edx") _,
        );
    }
}
