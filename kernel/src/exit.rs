//! Leaving QEMU with a status the host can check.
//!
//! QEMU runs with `-device isa-debug-exit,iobase=0xf4,iosize=0x04`; a write of
//! `v` to port 0xf4 exits QEMU with status `(v << 1) | 1` (the codes, the
//! port and the statuses are `report::verdict`'s). The kernel writes
//! [`SUCCESS_CODE`] (status 33), [`FAILURE_CODE`] (status 35) or
//! [`DEGRADED_CODE`] (status 37: booted, but a kept module failed its
//! self-test or faulted later). A triple fault under `-no-reboot` exits with
//! status 0, which must never count as a pass. Without the device (real
//! hardware), these functions halt forever.

pub use report::verdict::{DEBUG_EXIT_PORT, DEGRADED_CODE, FAILURE_CODE, SUCCESS_CODE};

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
