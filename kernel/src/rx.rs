//! The console's receive path: COM1's "received data available" interrupt
//! (IRQ 4) drains the UART into a ring buffer, and [`read_byte`] takes
//! bytes from it, halting until an interrupt brings one. Nothing polls the
//! UART for input.
//!
//! The kernel touches only the receive side of COM1 here (IER bit 0, the
//! receive buffer and line status registers); the console driver module
//! owns transmission, and its probe leaves interrupts off, so [`enable`]
//! runs after the module phase.

use crate::arch::TrapFrame;
use crate::arch::irq::{self, IrqError};
use crate::arch::port::{inb, outb};
use core::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};

/// The IRQ line of COM1.
pub const IRQ: u8 = 4;
const COM1: u16 = crate::serial::COM1;
const IER: u16 = COM1 + 1;
const LSR: u16 = COM1 + 5;
const LSR_DR: u8 = 0x01;
const IER_RDA: u8 = 0x01;
const RING: usize = 512;

static BUF: [AtomicU8; RING] = [const { AtomicU8::new(0) }; RING];
/// Bytes written (by the handler) and read, counting up forever.
static HEAD: AtomicUsize = AtomicUsize::new(0);
static TAIL: AtomicUsize = AtomicUsize::new(0);
static IRQS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Counters of the receive path.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    /// COM1 interrupts handled.
    pub irqs: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Bytes dropped because the ring was full.
    pub dropped: u64,
}

/// The counters so far.
pub fn stats() -> Stats {
    Stats {
        irqs: IRQS.load(Ordering::Relaxed),
        bytes: BYTES.load(Ordering::Relaxed),
        dropped: DROPPED.load(Ordering::Relaxed),
    }
}

fn on_irq(_frame: &mut TrapFrame) {
    IRQS.fetch_add(1, Ordering::Relaxed);
    // Reading the receive buffer until the line status says empty also
    // clears the "data available" and "character timeout" conditions.
    // SAFETY: reading COM1's line status and receive buffer only consumes
    // received bytes, which belong to this path.
    while unsafe { inb(LSR) } & LSR_DR != 0 {
        // SAFETY: as above.
        let b = unsafe { inb(COM1) };
        BYTES.fetch_add(1, Ordering::Relaxed);
        let head = HEAD.load(Ordering::Relaxed);
        if head - TAIL.load(Ordering::Acquire) >= RING {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        BUF[head % RING].store(b, Ordering::Relaxed);
        HEAD.store(head + 1, Ordering::Release);
    }
}

/// Turns the receive interrupt on (or on again: a driver reprogramming
/// the UART may clear it).
pub fn arm() {
    // SAFETY: setting IER bit 0 only makes COM1 raise IRQ 4 for received
    // bytes; the divisor latch is off (the line is programmed 8N1).
    unsafe { outb(IER, inb(IER) | IER_RDA) };
}

/// Installs the IRQ 4 handler and turns the receive interrupt on.
pub fn enable() -> Result<(), IrqError> {
    irq::register(IRQ, on_irq)?;
    arm();
    Ok(())
}

/// The next received byte, halting until one arrives.
pub fn read_byte() -> u8 {
    loop {
        x86_64::instructions::interrupts::disable();
        let tail = TAIL.load(Ordering::Relaxed);
        if HEAD.load(Ordering::Acquire) != tail {
            let b = BUF[tail % RING].load(Ordering::Relaxed);
            TAIL.store(tail + 1, Ordering::Release);
            x86_64::instructions::interrupts::enable();
            return b;
        }
        // Atomically: interrupts on, then halt; the next interrupt (a
        // received byte, or the timer) wakes us.
        x86_64::instructions::interrupts::enable_and_hlt();
    }
}
