//! 16550 register offsets and bits.

/// Number of I/O ports of one UART.
pub const COUNT: u16 = 8;
/// Receive buffer (read) / transmit holding (write); divisor low with DLAB.
pub const DATA: u16 = 0;
/// Interrupt enable; divisor high with DLAB.
pub const IER: u16 = 1;
/// FIFO control (write).
pub const FCR: u16 = 2;
/// Line control.
pub const LCR: u16 = 3;
/// Modem control.
pub const MCR: u16 = 4;
/// Line status.
pub const LSR: u16 = 5;
/// Modem status.
pub const MSR: u16 = 6;
/// Scratch.
pub const SCR: u16 = 7;

/// LCR: divisor latch access.
pub const LCR_DLAB: u8 = 0x80;
/// LCR: 8 data bits, no parity, 1 stop bit.
pub const LCR_8N1: u8 = 0x03;
/// FCR: enable and clear FIFOs, 14-byte trigger.
pub const FCR_ENABLE_CLEAR: u8 = 0xc7;
/// MCR: DTR.
pub const MCR_DTR: u8 = 0x01;
/// MCR: RTS.
pub const MCR_RTS: u8 = 0x02;
/// MCR: OUT1.
pub const MCR_OUT1: u8 = 0x04;
/// MCR: OUT2 (interrupt gate on PCs).
pub const MCR_OUT2: u8 = 0x08;
/// MCR: loopback.
pub const MCR_LOOP: u8 = 0x10;
/// LSR: data ready.
pub const LSR_DR: u8 = 0x01;
/// LSR: transmit holding register empty.
pub const LSR_THRE: u8 = 0x20;
/// LSR: transmitter empty.
pub const LSR_TEMT: u8 = 0x40;
