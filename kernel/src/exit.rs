//! Leaving QEMU with a status the host can check.
//!
//! QEMU runs with `-device isa-debug-exit,iobase=0xf4,iosize=0x04`; a write of
//! `v` to port 0xf4 exits QEMU with status `(v << 1) | 1`. The kernel writes
//! [`SUCCESS_CODE`] (status 33), [`FAILURE_CODE`] (status 35) or
//! [`DEGRADED_CODE`] (status 37: booted, but a kept module failed its
//! self-test or faulted later). A triple fault under `-no-reboot` exits with
//! status 0, which must never count as a pass. Without the device (real
//! hardware), these functions halt forever.

/// Value written for success: QEMU exits with status 33.
pub const SUCCESS_CODE: u32 = 0x10;
/// Value written for failure: QEMU exits with status 35.
pub const FAILURE_CODE: u32 = 0x11;
/// Value written for "booted, degraded": QEMU exits with status 37.
pub const DEGRADED_CODE: u32 = 0x12;
/// The isa-debug-exit port.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Exits QEMU with status 33.
pub fn success() -> ! {
    exit_with(SUCCESS_CODE)
}

/// Exits QEMU with status 35.
pub fn failure() -> ! {
    exit_with(FAILURE_CODE)
}

/// Exits QEMU with status 37: the kernel booted, but degraded.
pub fn degraded() -> ! {
    exit_with(DEGRADED_CODE)
}

fn exit_with(code: u32) -> ! {
    x86_64::instructions::interrupts::disable();
    // SAFETY: port 0xf4 is the isa-debug-exit device (or nothing at all).
    unsafe { crate::arch::port::outl(DEBUG_EXIT_PORT, code) };
    halt_forever()
}

/// Halts the CPU forever with interrupts off.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
