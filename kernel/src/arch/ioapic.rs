//! The I/O APIC, for one purpose: delivering the PIT's interrupt as an NMI
//! (the watchdog, see [`crate::watchdog`]). Legacy device interrupts stay
//! on the 8259s ([`crate::arch::irq`]); every other input is left as the
//! firmware set it (masked, on QEMU and after reset).
//!
//! The register page is mapped uncached at [`IOAPIC_VIRT`], the page after
//! the local APIC's in the kernel's device window. Register numbers and
//! entry encodings are in [`smpboot::ioapic`].

use core::sync::atomic::{AtomicU64, Ordering};

use crate::mm::PAGE_SIZE;
use crate::mm::paging::{self, Flags, PagingError};
use smpboot::ioapic::{REG_SELECT, REG_WINDOW, VERSION, redirection};

/// Virtual address of the I/O APIC's register page.
pub const IOAPIC_VIRT: u64 = crate::arch::apic::LAPIC_VIRT + PAGE_SIZE;

/// Physical address of the mapped I/O APIC (0 until [`map`]).
static PHYS: AtomicU64 = AtomicU64::new(0);
/// Serialises the select-then-window register pairs.
static LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// Why the I/O APIC cannot be used.
#[derive(Debug)]
pub enum IoApicError {
    /// Its page could not be mapped.
    Map(PagingError),
    /// Another I/O APIC is mapped already (the kernel maps one).
    Busy(u64),
}

impl core::fmt::Display for IoApicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IoApicError::Map(e) => write!(f, "cannot map its registers: {e}"),
            IoApicError::Busy(p) => write!(f, "the I/O APIC at {p:#x} is mapped already"),
        }
    }
}

/// Maps the I/O APIC at physical `phys` (once).
pub fn map(phys: u64) -> Result<(), IoApicError> {
    match PHYS.load(Ordering::Acquire) {
        0 => {}
        p if p == phys => return Ok(()),
        p => return Err(IoApicError::Busy(p)),
    }
    paging::map_range(IOAPIC_VIRT, phys, PAGE_SIZE, Flags::RW | Flags::NO_CACHE)
        .map_err(IoApicError::Map)?;
    PHYS.store(phys, Ordering::Release);
    Ok(())
}

/// Reads register `index`.
fn read(index: u32) -> u32 {
    assert!(PHYS.load(Ordering::Acquire) != 0, "I/O APIC not mapped");
    crate::arch::without_interrupts(|| {
        let _g = LOCK.lock();
        // SAFETY: IOAPIC_VIRT maps the I/O APIC's register page uncached
        // (checked above); select and window are 32-bit registers at these
        // offsets, and the lock keeps the pair from interleaving.
        unsafe {
            ((IOAPIC_VIRT + REG_SELECT) as *mut u32).write_volatile(index);
            ((IOAPIC_VIRT + REG_WINDOW) as *const u32).read_volatile()
        }
    })
}

/// Writes register `index`.
fn write(index: u32, value: u32) {
    assert!(PHYS.load(Ordering::Acquire) != 0, "I/O APIC not mapped");
    crate::arch::without_interrupts(|| {
        let _g = LOCK.lock();
        // SAFETY: as for `read`; the callers write only redirection entries
        // they own (the watchdog's input).
        unsafe {
            ((IOAPIC_VIRT + REG_SELECT) as *mut u32).write_volatile(index);
            ((IOAPIC_VIRT + REG_WINDOW) as *mut u32).write_volatile(value);
        }
    })
}

/// The version register (number of inputs in bits 16..24).
pub fn version() -> u32 {
    read(VERSION)
}

/// Input `pin`'s redirection entry.
pub fn entry(pin: u32) -> u64 {
    u64::from(read(redirection(pin))) | u64::from(read(redirection(pin) + 1)) << 32
}

/// Sets input `pin`'s redirection entry: masks it, writes the destination,
/// then the low half (which unmasks it if `value` says so), so no half-set
/// entry ever delivers.
pub fn set_entry(pin: u32, value: u64) {
    let low = redirection(pin);
    write(low, read(low) | smpboot::ioapic::MASKED as u32);
    write(low + 1, (value >> 32) as u32);
    write(low, value as u32);
}
