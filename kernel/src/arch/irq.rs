//! Legacy hardware interrupts: the two 8259 PICs and the PIT timer.
//!
//! [`init`] remaps the PICs to vectors [`IRQ_BASE`]`..IRQ_BASE + 16` (32–47),
//! masks every line except the timer (IRQ 0) and the cascade (IRQ 2), and
//! programs PIT channel 0 to interrupt [`TIMER_HZ`] times a second.
//!
//! On every IRQ 0 the kernel increments [`ticks`] and calls the tick hook
//! ([`set_tick_hook`]) with the interrupted [`TrapFrame`], which it may
//! rewrite (to cut off a hung probe, say). Drivers claim other lines with
//! [`register`], which also unmasks the line; [`unregister`] masks it again.
//! The kernel sends the end-of-interrupt after the handler returns and
//! filters spurious IRQ 7 / IRQ 15.
//!
//! The PICs deliver to the boot CPU only (its local APIC's LINT0; the other
//! CPUs mask theirs). The handler table is atomics; the mask registers'
//! read-modify-write is serialised by a spin lock with interrupts off, as
//! any CPU may register a handler.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::TrapFrame;
use crate::arch::fn_cell::AtomicFn;
use crate::arch::port::{inb, io_wait, outb};

/// Vector of IRQ 0.
pub const IRQ_BASE: u8 = 32;
/// Number of legacy IRQ lines.
pub const NUM_IRQS: u8 = 16;
/// Timer interrupt frequency.
pub const TIMER_HZ: u64 = 1000;
/// PIT input clock in Hz.
pub const PIT_HZ: u64 = 1_193_182;

const PIC1_CMD: u16 = 0x20;
const PIC1_DATA: u16 = 0x21;
const PIC2_CMD: u16 = 0xa0;
const PIC2_DATA: u16 = 0xa1;
const PIC_EOI: u8 = 0x20;
const PIT_CH0: u16 = 0x40;
const PIT_CMD: u16 = 0x43;

/// An IRQ handler: gets the interrupted frame.
pub type IrqHandler = fn(&mut TrapFrame);

/// Why [`register`] or [`unregister`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqError {
    /// Not a legacy IRQ line (0–15).
    InvalidIrq(u8),
    /// Line used by the kernel itself (0 = timer, 2 = cascade).
    Reserved(u8),
    /// A handler is already registered for the line.
    AlreadyRegistered(u8),
    /// No handler registered for the line.
    NotRegistered(u8),
}

static HANDLERS: [AtomicFn<IrqHandler>; NUM_IRQS as usize] =
    [const { AtomicFn::none() }; NUM_IRQS as usize];
static TICK_HOOK: AtomicFn<IrqHandler> = AtomicFn::none();
static TICKS: AtomicU64 = AtomicU64::new(0);
static SPURIOUS: AtomicU64 = AtomicU64::new(0);
/// Serialises changes of the PIC mask registers across CPUs.
static MASK_LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// Remaps the PICs, programs the PIT. Interrupts stay disabled; the caller
/// enables them with [`crate::arch::enable_interrupts`].
pub fn init() {
    // SAFETY: standard 8259 initialisation sequence on the PIC ports; with
    // interrupts disabled nothing can be delivered half-way.
    unsafe {
        outb(PIC1_CMD, 0x11); // ICW1: init, ICW4 follows
        io_wait();
        outb(PIC2_CMD, 0x11);
        io_wait();
        outb(PIC1_DATA, IRQ_BASE); // ICW2: vector offsets
        io_wait();
        outb(PIC2_DATA, IRQ_BASE + 8);
        io_wait();
        outb(PIC1_DATA, 0x04); // ICW3: slave on IRQ 2
        io_wait();
        outb(PIC2_DATA, 0x02); // ICW3: cascade identity
        io_wait();
        outb(PIC1_DATA, 0x01); // ICW4: 8086 mode
        io_wait();
        outb(PIC2_DATA, 0x01);
        io_wait();
        outb(PIC1_DATA, !0b0000_0101); // only timer + cascade
        outb(PIC2_DATA, 0xff);
    }
    let divisor = (PIT_HZ + TIMER_HZ / 2) / TIMER_HZ;
    // SAFETY: PIT channel 0, mode 2 (rate generator), lobyte/hibyte.
    unsafe {
        outb(PIT_CMD, 0x34);
        outb(PIT_CH0, divisor as u8);
        outb(PIT_CH0, (divisor >> 8) as u8);
    }
}

fn set_masked(irq: u8, masked: bool) {
    let port = if irq < 8 { PIC1_DATA } else { PIC2_DATA };
    let bit = 1u8 << (irq % 8);
    crate::arch::without_interrupts(|| {
        let _guard = MASK_LOCK.lock();
        // SAFETY: reading and writing the PIC mask register only changes
        // which lines are delivered.
        unsafe {
            let mask = inb(port);
            outb(port, if masked { mask | bit } else { mask & !bit });
        }
    });
}

fn check(irq: u8) -> Result<usize, IrqError> {
    match irq {
        0 | 2 => Err(IrqError::Reserved(irq)),
        i if i < NUM_IRQS => Ok(usize::from(i)),
        i => Err(IrqError::InvalidIrq(i)),
    }
}

/// Installs `handler` for line `irq` and unmasks it.
pub fn register(irq: u8, handler: IrqHandler) -> Result<(), IrqError> {
    let i = check(irq)?;
    HANDLERS[i]
        .set_if_none(handler)
        .map_err(|_| IrqError::AlreadyRegistered(irq))?;
    set_masked(irq, false);
    Ok(())
}

/// Masks line `irq` and removes its handler.
pub fn unregister(irq: u8) -> Result<(), IrqError> {
    let i = check(irq)?;
    set_masked(irq, true);
    match HANDLERS[i].swap(None) {
        None => Err(IrqError::NotRegistered(irq)),
        Some(_) => Ok(()),
    }
}

/// True if a handler is registered for `irq`.
pub fn is_registered(irq: u8) -> bool {
    irq < NUM_IRQS && HANDLERS[usize::from(irq)].is_some()
}

/// Installs (or with `None` removes) the function called on every timer tick.
pub fn set_tick_hook(hook: Option<IrqHandler>) {
    TICK_HOOK.store(hook);
}

/// Timer interrupts since [`init`] (one per millisecond).
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Spurious IRQ 7 / IRQ 15 seen.
pub fn spurious_count() -> u64 {
    SPURIOUS.load(Ordering::Relaxed)
}

/// In-service register of the PIC at `cmd`.
fn in_service(cmd: u16) -> u8 {
    // SAFETY: OCW3 "read ISR" followed by a read of the command port.
    unsafe {
        outb(cmd, 0x0b);
        inb(cmd)
    }
}

fn eoi(irq: u8) {
    // SAFETY: end-of-interrupt to the PIC(s) that delivered `irq`.
    unsafe {
        if irq >= 8 {
            outb(PIC2_CMD, PIC_EOI);
        }
        outb(PIC1_CMD, PIC_EOI);
    }
}

/// Called from the IDT for vectors 32–47.
pub(crate) fn dispatch(frame: &mut TrapFrame) {
    let irq = (frame.vector - u64::from(IRQ_BASE)) as u8;
    // A spurious IRQ 7/15 has no in-service bit and must not get an EOI
    // (IRQ 15 still needs one on the master for the cascade).
    if irq == 7 && in_service(PIC1_CMD) & 0x80 == 0 {
        SPURIOUS.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if irq == 15 && in_service(PIC2_CMD) & 0x80 == 0 {
        SPURIOUS.fetch_add(1, Ordering::Relaxed);
        eoi(0);
        return;
    }
    if irq == 0 {
        TICKS.fetch_add(1, Ordering::Relaxed);
        if let Some(hook) = TICK_HOOK.load() {
            hook(frame);
        }
    } else if let Some(handler) = HANDLERS[usize::from(irq)].load() {
        handler(frame);
    }
    eoi(irq);
}
