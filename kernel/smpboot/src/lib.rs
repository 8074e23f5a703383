//! The pure parts of starting and coordinating the other CPUs, kept out of
//! the kernel so they build and are tested on the host:
//!
//! - [`acpi`]: finding the RSDP and walking the RSDT/XSDT to a table;
//! - [`madt`]: parsing the MADT (ACPI "APIC" table): the local APICs and
//!   their enabled flags, the local APIC address, the I/O APICs and where
//!   each ISA IRQ arrives;
//! - [`ioapic`]: I/O APIC registers and redirection entries (the NMI
//!   watchdog routes the PIT through one);
//! - [`plan`]: which listed CPU the kernel starts, and why it leaves others;
//! - [`ipi`]: the xAPIC interrupt-command values of INIT, STARTUP and fixed
//!   IPIs;
//! - [`nmi`]: the legacy NMI status bits that tell a hardware error's NMI
//!   from the watchdog's;
//! - [`timer`]: local APIC timer calibration arithmetic;
//! - [`once_at_a_time`]: one CPU at a time in an interrupt line's handler,
//!   without losing an interrupt that arrives meanwhile.
//!
//! The kernel reads the memory and the hardware; this crate only interprets
//! bytes and numbers it is given, and holds the atomics of
//! [`once_at_a_time`] that the kernel's CPUs share.

#![no_std]

extern crate alloc;

pub mod acpi;
pub mod ioapic;
pub mod ipi;
pub mod madt;
pub mod nmi;
pub mod once_at_a_time;
pub mod plan;
pub mod timer;

/// Little-endian `u32` at `off` (the caller checked the bounds).
fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Little-endian `u64` at `off` (the caller checked the bounds).
fn le64(b: &[u8], off: usize) -> u64 {
    u64::from(le32(b, off)) | u64::from(le32(b, off + 4)) << 32
}
