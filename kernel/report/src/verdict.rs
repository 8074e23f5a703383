//! The boot's verdict as the host sees it: the kernel writes a code to
//! QEMU's `isa-debug-exit` device, and QEMU exits with status
//! `(code << 1) | 1`. One definition for the kernel (which writes the
//! codes), the QEMU command line (which places the device) and whoever
//! reads the status (the boot tests, `plk-qemu`). A triple fault under
//! `-no-reboot` exits with status 0, which is never a pass.

/// The device's I/O port.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;
/// The device's size in ports.
pub const DEBUG_EXIT_SIZE: u16 = 4;
/// Code for success.
pub const SUCCESS_CODE: u32 = 0x10;
/// Code for failure.
pub const FAILURE_CODE: u32 = 0x11;
/// Code for "booted, degraded": a kept module failed its self-test or
/// faulted later.
pub const DEGRADED_CODE: u32 = 0x12;

/// The QEMU exit status of `code`.
pub const fn qemu_status(code: u32) -> i32 {
    ((code << 1) | 1) as i32
}

/// QEMU's exit status for success (33).
pub const EXIT_SUCCESS: i32 = qemu_status(SUCCESS_CODE);
/// QEMU's exit status for failure (35).
pub const EXIT_FAILURE: i32 = qemu_status(FAILURE_CODE);
/// QEMU's exit status for "booted, degraded" (37).
pub const EXIT_DEGRADED: i32 = qemu_status(DEGRADED_CODE);

/// The `-device` argument that places the exit device.
pub fn qemu_device() -> alloc::string::String {
    alloc::format!("isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize={DEBUG_EXIT_SIZE:#04x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_device() {
        assert_eq!((EXIT_SUCCESS, EXIT_FAILURE, EXIT_DEGRADED), (33, 35, 37));
        assert_eq!(qemu_device(), "isa-debug-exit,iobase=0xf4,iosize=0x04");
    }
}
