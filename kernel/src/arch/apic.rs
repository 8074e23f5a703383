//! The local APIC, in xAPIC mode (memory-mapped registers).
//!
//! Every CPU's local APIC answers at the same physical address (the MADT's,
//! normally `0xfee00000`); the kernel maps that page once, uncached, at
//! [`LAPIC_VIRT`] (PML4 slot 416, the kernel's own device window) and each
//! CPU reaches its own APIC through it.
//!
//! [`init_local`] software-enables the APIC with the spurious vector
//! [`SPURIOUS_VECTOR`], routes the error interrupt to [`ERROR_VECTOR`] and
//! sets LINT0/LINT1: on the boot CPU LINT0 stays the 8259's ExtINT input
//! (the PIT and legacy IRQs keep working as before), on the others it is
//! masked; LINT1 is NMI everywhere. Each CPU uses the flat logical
//! destination model with bit `index` as its logical id (the first eight
//! CPUs), which is how the NMI watchdog addresses exactly the running CPUs
//! among them (the boot CPU forwards it to the others). [`calibrate_timer`] measures the
//! timer's clock (divide by 16) against the TSC and [`start_timer`] makes
//! it fire [`TIMER_HZ`] times a second on [`TIMER_VECTOR`].
//!
//! IPIs: [`send`] writes the interrupt command register with interrupts
//! disabled (a handler sending an IPI between the two halves would corrupt
//! the command) and waits until the APIC has accepted it; an NMI handler
//! sends with [`send_nmi_in_nmi`], which leaves an interrupted [`send`]
//! intact.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::TrapFrame;
use crate::arch::percpu;
use crate::mm::PAGE_SIZE;
use crate::mm::paging::{self, Flags, PagingError};

/// Virtual address of the local APIC page.
pub const LAPIC_VIRT: u64 = 0xffff_d000_0000_0000;
/// Local APIC timer interrupts per second, on every CPU.
pub const TIMER_HZ: u64 = 100;
/// Length of one timer calibration window.
pub const CALIBRATION_US: u64 = 5_000;

/// Local APIC timer vector.
pub const TIMER_VECTOR: u8 = 0xf0;
/// Local APIC error vector.
pub const ERROR_VECTOR: u8 = 0xf1;
/// IPI: run the request in this CPU's mailbox.
pub const CALL_VECTOR: u8 = 0xfd;
/// IPI: flush the TLB range of the current shootdown.
pub const SHOOTDOWN_VECTOR: u8 = 0xfe;
/// Spurious-interrupt vector (never acknowledged).
pub const SPURIOUS_VECTOR: u8 = 0xff;

const REG_ID: u32 = 0x20;
const REG_VERSION: u32 = 0x30;
const REG_TPR: u32 = 0x80;
const REG_LDR: u32 = 0xd0;
const REG_DFR: u32 = 0xe0;
const REG_EOI: u32 = 0xb0;
const REG_SVR: u32 = 0xf0;
const REG_ESR: u32 = 0x280;
const REG_ICR_LOW: u32 = 0x300;
const REG_ICR_HIGH: u32 = 0x310;
const REG_LVT_TIMER: u32 = 0x320;
const REG_LVT_LINT0: u32 = 0x350;
const REG_LVT_LINT1: u32 = 0x360;
const REG_LVT_ERROR: u32 = 0x370;
const REG_TIMER_INIT: u32 = 0x380;
const REG_TIMER_CURRENT: u32 = 0x390;
const REG_TIMER_DIVIDE: u32 = 0x3e0;

const SVR_ENABLE: u32 = 1 << 8;
const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;
const LVT_EXTINT: u32 = 0b111 << 8;
const LVT_NMI: u32 = 0b100 << 8;
/// Divide configuration "divide by 16".
const DIVIDE_16: u32 = 0b0011;
const DIVIDER: u64 = 16;

/// IA32_APIC_BASE: base address and the global enable bit (11).
const APIC_BASE_MSR: u32 = 0x1b;
const APIC_BASE_ENABLE: u64 = 1 << 11;

/// Physical address of the mapped page (0 until [`map`]).
static PHYS: AtomicU64 = AtomicU64::new(0);
/// Error interrupts taken.
static ERRORS: AtomicU64 = AtomicU64::new(0);
/// Spurious interrupts taken.
static SPURIOUS: AtomicU64 = AtomicU64::new(0);

/// Whether CPUID says this CPU has a local APIC.
pub fn present() -> bool {
    core::arch::x86_64::__cpuid(1).edx & (1 << 9) != 0
}

/// The calling CPU's initial APIC id (CPUID leaf 1), readable before the
/// local APIC is mapped.
pub fn initial_id() -> u32 {
    core::arch::x86_64::__cpuid(1).ebx >> 24
}

/// The physical base the calling CPU's IA32_APIC_BASE names.
pub fn msr_base() -> u64 {
    // SAFETY: IA32_APIC_BASE exists on every CPU with an APIC (checked by
    // the callers through `present`); reading it has no side effects.
    unsafe { x86_64::registers::model_specific::Msr::new(APIC_BASE_MSR).read() & 0x000f_ffff_f000 }
}

/// Maps the local APIC page at physical `phys` (once, on the boot CPU).
pub fn map(phys: u64) -> Result<(), PagingError> {
    if PHYS.load(Ordering::Acquire) != 0 {
        return Ok(());
    }
    paging::map_range(LAPIC_VIRT, phys, PAGE_SIZE, Flags::RW | Flags::NO_CACHE)?;
    PHYS.store(phys, Ordering::Release);
    Ok(())
}

/// Whether the APIC page is mapped.
pub fn mapped() -> bool {
    PHYS.load(Ordering::Acquire) != 0
}

fn read(reg: u32) -> u32 {
    debug_assert!(mapped());
    // SAFETY: LAPIC_VIRT maps the local APIC's 4 KiB register page uncached
    // (done by `map` before any CPU calls this); `reg` is a register offset
    // inside it, 16-byte aligned, read as the 32-bit access the APIC needs.
    unsafe { ((LAPIC_VIRT + u64::from(reg)) as *const u32).read_volatile() }
}

fn write(reg: u32, value: u32) {
    // SAFETY: as for `read`; writing an APIC register affects only this
    // CPU's interrupt delivery, which the callers intend.
    unsafe { ((LAPIC_VIRT + u64::from(reg)) as *mut u32).write_volatile(value) }
}

/// The calling CPU's logical APIC id bits (flat model, from its LDR).
pub fn logical_id() -> u8 {
    (read(REG_LDR) >> 24) as u8
}

/// The calling CPU's local APIC id (from its ID register).
pub fn id() -> u32 {
    read(REG_ID) >> 24
}

/// The APIC version register (version in bits 0..7, highest LVT entry in
/// bits 16..23).
pub fn version() -> u32 {
    read(REG_VERSION)
}

/// Sets up the calling CPU's local APIC (see the module documentation).
/// `boot_cpu` keeps LINT0 as the 8259's ExtINT input.
pub fn init_local(boot_cpu: bool) {
    // SAFETY: setting the global enable bit of IA32_APIC_BASE, keeping the
    // base address: the APIC stays where it was mapped.
    unsafe {
        let mut msr = x86_64::registers::model_specific::Msr::new(APIC_BASE_MSR);
        let v = msr.read();
        if v & APIC_BASE_ENABLE == 0 {
            msr.write(v | APIC_BASE_ENABLE);
        }
    }
    write(REG_TPR, 0);
    // Flat logical model, one bit per CPU (the first eight): the watchdog's
    // NMI is addressed to exactly the CPUs that are up.
    write(REG_DFR, smpboot::ioapic::DFR_FLAT);
    write(
        REG_LDR,
        smpboot::ioapic::flat_ldr(percpu::index()).unwrap_or(0),
    );
    write(REG_SVR, SVR_ENABLE | u32::from(SPURIOUS_VECTOR));
    write(
        REG_LVT_LINT0,
        if boot_cpu {
            LVT_EXTINT
        } else {
            LVT_MASKED | LVT_EXTINT
        },
    );
    write(REG_LVT_LINT1, LVT_NMI);
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    write(REG_LVT_ERROR, u32::from(ERROR_VECTOR));
    // Clear any error latched before (the ESR is written before reading).
    write(REG_ESR, 0);
    write(REG_ESR, 0);
    eoi();
}

/// Signals end of interrupt to the calling CPU's local APIC.
pub fn eoi() {
    write(REG_EOI, 0);
}

/// Sends the IPI `icr_low` to APIC id `dest` and waits (at most about a
/// millisecond) until the local APIC has accepted it. Returns whether it
/// did.
pub fn send(dest: u32, icr_low: u32) -> bool {
    crate::arch::without_interrupts(|| {
        write(REG_ICR_HIGH, smpboot::ipi::destination(dest));
        write(REG_ICR_LOW, icr_low);
        icr_idle()
    })
}

/// Waits (at most about a millisecond) until the local APIC has accepted
/// the command last written to the ICR; returns whether it did.
fn icr_idle() -> bool {
    (0..1_000_000).any(|_| {
        let idle = read(REG_ICR_LOW) & smpboot::ipi::PENDING == 0;
        core::hint::spin_loop();
        idle
    })
}

/// Sends an NMI to APIC id `dest` from an NMI handler, which may have
/// interrupted a [`send`] on this CPU (interrupts off does not hold NMIs
/// back): it waits until a command already written is accepted, saves ICR
/// high, sends, waits (at most about a millisecond) and puts ICR high back,
/// so that a [`send`] it came between the two writes of still goes where it
/// was meant to. Returns whether the APIC accepted the NMI.
pub fn send_nmi_in_nmi(dest: u32) -> bool {
    if !icr_idle() {
        return false;
    }
    let high = read(REG_ICR_HIGH);
    write(REG_ICR_HIGH, smpboot::ipi::destination(dest));
    write(REG_ICR_LOW, smpboot::ipi::NMI);
    let sent = icr_idle();
    write(REG_ICR_HIGH, high);
    sent
}

/// Measures the calling CPU's timer clock (after its divide-by-16) against
/// the TSC over [`CALIBRATION_US`]; returns it in Hz (0 if the TSC is not
/// calibrated). The timer is left stopped.
pub fn calibrate_timer() -> u64 {
    let tsc_hz = crate::arch::tsc::frequency_hz();
    if tsc_hz == 0 {
        return 0;
    }
    let window = tsc_hz * CALIBRATION_US / 1_000_000;
    let (counted, cycles) = crate::arch::without_interrupts(|| {
        write(REG_TIMER_DIVIDE, DIVIDE_16);
        write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
        let t0 = crate::arch::tsc::read();
        write(REG_TIMER_INIT, u32::MAX);
        while crate::arch::tsc::read().wrapping_sub(t0) < window {
            core::hint::spin_loop();
        }
        let left = read(REG_TIMER_CURRENT);
        let t1 = crate::arch::tsc::read();
        write(REG_TIMER_INIT, 0);
        (u64::from(u32::MAX - left), t1.wrapping_sub(t0))
    });
    smpboot::timer::counter_hz(counted, cycles, tsc_hz)
}

/// Starts the calling CPU's timer, periodic at [`TIMER_HZ`] on a clock of
/// `counter_hz` (from [`calibrate_timer`]).
pub fn start_timer(counter_hz: u64) {
    write(REG_TIMER_DIVIDE, DIVIDE_16);
    write(REG_LVT_TIMER, LVT_PERIODIC | u32::from(TIMER_VECTOR));
    write(
        REG_TIMER_INIT,
        smpboot::timer::periodic_count(counter_hz, TIMER_HZ),
    );
}

/// The undivided timer input clock for a measured `counter_hz`.
pub fn bus_hz(counter_hz: u64) -> u64 {
    counter_hz * DIVIDER
}

/// Error interrupts taken so far (all CPUs).
pub fn errors() -> u64 {
    ERRORS.load(Ordering::Relaxed)
}

/// Spurious interrupts taken so far (all CPUs).
pub fn spurious() -> u64 {
    SPURIOUS.load(Ordering::Relaxed)
}

/// Called from the IDT for vectors 0xf0–0xff.
pub(crate) fn dispatch(frame: &mut TrapFrame) {
    let vector = frame.vector as u8;
    let cpu = percpu::current();
    match vector {
        SPURIOUS_VECTOR => {
            // Not acknowledged: a spurious interrupt sets no in-service bit.
            SPURIOUS.fetch_add(1, Ordering::Relaxed);
            return;
        }
        TIMER_VECTOR => {
            if let Some(c) = cpu {
                c.timer_ticks.fetch_add(1, Ordering::Relaxed);
            }
        }
        ERROR_VECTOR => {
            write(REG_ESR, 0);
            let esr = read(REG_ESR);
            ERRORS.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "apic: error interrupt on CPU {}: ESR {esr:#x}",
                percpu::index()
            );
        }
        CALL_VECTOR | SHOOTDOWN_VECTOR => {
            if let Some(c) = cpu {
                c.ipis.fetch_add(1, Ordering::Relaxed);
            }
            // Acknowledge first: a request posted while the handler runs
            // raises a new interrupt instead of being lost.
            eoi();
            crate::arch::smp::service();
            return;
        }
        v => log::warn!("apic: unexpected vector {v:#x}"),
    }
    eoi();
}
