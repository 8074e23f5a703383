//! Raw x86 port I/O.
//!
//! All functions are `unsafe`: a port write can reprogram hardware in ways
//! that break memory safety (DMA, interrupt routing). Callers state why the
//! access is harmless.

use x86_64::instructions::port::Port;

/// Writes a byte to `port`.
///
/// # Safety
/// The write must not have side effects that violate memory safety.
#[inline]
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: forwarded to the caller.
    unsafe { Port::<u8>::new(port).write(value) }
}

/// Reads a byte from `port`.
///
/// # Safety
/// As for [`outb`]: reads can have side effects too.
#[inline]
pub unsafe fn inb(port: u16) -> u8 {
    // SAFETY: forwarded to the caller.
    unsafe { Port::<u8>::new(port).read() }
}

/// Writes a 16-bit word to `port`.
///
/// # Safety
/// As for [`outb`].
#[inline]
pub unsafe fn outw(port: u16, value: u16) {
    // SAFETY: forwarded to the caller.
    unsafe { Port::<u16>::new(port).write(value) }
}

/// Reads a 16-bit word from `port`.
///
/// # Safety
/// As for [`outb`].
#[inline]
pub unsafe fn inw(port: u16) -> u16 {
    // SAFETY: forwarded to the caller.
    unsafe { Port::<u16>::new(port).read() }
}

/// Writes a 32-bit word to `port`.
///
/// # Safety
/// As for [`outb`].
#[inline]
pub unsafe fn outl(port: u16, value: u32) {
    // SAFETY: forwarded to the caller.
    unsafe { Port::<u32>::new(port).write(value) }
}

/// Reads a 32-bit word from `port`.
///
/// # Safety
/// As for [`outb`].
#[inline]
pub unsafe fn inl(port: u16) -> u32 {
    // SAFETY: forwarded to the caller.
    unsafe { Port::<u32>::new(port).read() }
}

/// Waits roughly a microsecond by writing to the unused POST port 0x80.
pub fn io_wait() {
    // SAFETY: port 0x80 is the POST diagnostic port; writes have no effect.
    unsafe { outb(0x80, 0) }
}
