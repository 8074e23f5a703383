//! The built-in COM1 driver: a 16550 UART at port 0x3f8, 115200 baud, 8N1.
//!
//! Output is polled (no interrupts). This is the kernel's fallback console;
//! see [`crate::console`] for the switchable sink on top of it.

use crate::arch::port::{inb, outb};

/// I/O base of COM1.
pub const COM1: u16 = 0x3f8;

/// Programs COM1 for 115200 baud, 8 data bits, no parity, one stop bit,
/// FIFOs on, interrupts off.
pub fn init() {
    // SAFETY: COM1's registers only control the UART itself.
    unsafe {
        outb(COM1 + 1, 0x00); // interrupts off
        outb(COM1 + 3, 0x80); // DLAB on
        outb(COM1, 0x01); // divisor 1 = 115200 baud
        outb(COM1 + 1, 0x00);
        outb(COM1 + 3, 0x03); // DLAB off, 8N1
        outb(COM1 + 2, 0xc7); // FIFO on, cleared, 14-byte threshold
        outb(COM1 + 4, 0x0b); // DTR, RTS, OUT2
    }
}

fn put(byte: u8) {
    // SAFETY: polling the line status register and writing the transmit
    // holding register of COM1 only affect the UART.
    unsafe {
        // Bounded wait: a missing UART must not hang the kernel.
        for _ in 0..100_000 {
            if inb(COM1 + 5) & 0x20 != 0 {
                break;
            }
        }
        outb(COM1, byte);
    }
}

/// Writes `bytes` to COM1, turning `\n` into `\r\n`.
pub fn write_bytes(bytes: &[u8]) {
    for &b in bytes {
        if b == b'\n' {
            put(b'\r');
        }
        put(b);
    }
}
