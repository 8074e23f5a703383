//! Non-maskable interrupts: once the watchdog is armed ([`arm`]) every NMI
//! is taken as its tick. It is counted on the CPU that took it and passed
//! to the hook ([`set_hook`], the module guard's), which may rewrite the
//! interrupted frame to cut off module code that ran past its budget with
//! interrupts off.
//!
//! The watchdog's source reaches only the CPUs the I/O APIC can address
//! at once (flat logical mode, the first eight, [`is_forwarded`] says which
//! are not): CPU 0 passes each NMI it takes on to those later CPUs whose
//! `watch_due` time has come (a guarded callback runs there and is due for
//! a look), one NMI IPI each ([`crate::arch::apic::send_nmi_in_nmi`]),
//! before its own hook runs, so idle CPUs are not woken a thousand times a
//! second.
//!
//! An NMI whose status bits (port 0x61, read on CPU 0, which the chipset's
//! NMIs reach; [`smpboot::nmi`]) report a hardware error is never taken as
//! a tick: it is reported with its reason and stops the kernel. Other
//! NMIs, from the watchdog or not (a monitor's `nmi`), cannot be told apart
//! and are all ticks; the guard times callbacks by the TSC, so an extra
//! tick only checks sooner.
//!
//! Before [`arm`], an NMI is reported and stops the kernel like any other
//! unexpected exception. The hook runs with NMIs blocked, on the NMI IST
//! stack, and may interrupt any kernel code: it must not lock, allocate or
//! log.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::arch::TrapFrame;
use crate::arch::fn_cell::AtomicFn;

static ARMED: AtomicBool = AtomicBool::new(false);
static HOOK: AtomicFn<fn(&mut TrapFrame)> = AtomicFn::none();

/// Marks NMIs as watchdog ticks from now on.
pub fn arm() {
    ARMED.store(true, Ordering::SeqCst);
}

/// Makes NMIs unexpected again (the watchdog's source is masked).
pub fn disarm() {
    ARMED.store(false, Ordering::SeqCst);
}

/// Whether CPU `index` gets the watchdog's NMI from CPU 0 rather than from
/// the I/O APIC (it has no flat logical APIC id).
pub fn is_forwarded(index: usize) -> bool {
    smpboot::ioapic::flat_ldr(index).is_none()
}

/// Installs (or with `None` removes) the function every watchdog NMI calls.
pub fn set_hook(hook: Option<fn(&mut TrapFrame)>) {
    HOOK.store(hook);
}

/// NMI IPIs the forwarder sent that its local APIC did not accept in time.
static UNSENT: AtomicUsize = AtomicUsize::new(0);

/// Forwarded NMIs the local APIC did not accept (0 on a healthy machine).
pub fn unsent() -> usize {
    UNSENT.load(Ordering::Relaxed)
}

/// The NMI status byte (port 0x61).
pub fn status() -> u8 {
    // SAFETY: reading port 0x61 (the kernel's own port) has no side
    // effects; its bits 6 and 7 stay latched until the kernel clears them.
    unsafe { crate::arch::port::inb(smpboot::nmi::STATUS_PORT) }
}

/// Called from the IDT for vector 2; `false` if the NMI is not the
/// watchdog's (the caller reports it and stops).
pub(crate) fn dispatch(frame: &mut TrapFrame) -> bool {
    if !ARMED.load(Ordering::SeqCst) {
        return false;
    }
    let cpu = crate::arch::percpu::current();
    if let Some(c) = cpu {
        if c.index == 0 && smpboot::nmi::hardware_reason(status()).is_some() {
            return false;
        }
        c.nmis.fetch_add(1, Ordering::Relaxed);
        if c.index == 0 {
            let now = crate::arch::tsc::read();
            for to in crate::arch::percpu::all().filter(|t| is_forwarded(t.index)) {
                let due = to.watch_due.load(Ordering::Relaxed);
                if due != 0 && now >= due && !crate::arch::apic::send_nmi_in_nmi(to.apic_id) {
                    UNSENT.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    if let Some(hook) = HOOK.load() {
        hook(frame);
    }
    true
}
