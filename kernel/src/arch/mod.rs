//! x86_64 specifics: descriptor tables, exceptions, interrupts, timers,
//! the local APIC, per-CPU areas and starting the other CPUs.

pub mod apic;
pub mod checked_copy;
pub mod fn_cell;
pub mod gdt;
pub mod idt;
pub mod irq;
pub mod percpu;
pub mod port;
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
