//! Non-maskable interrupts: once the watchdog is armed ([`arm`]) every NMI
//! is taken as its tick. It is counted on the CPU that took it and passed
//! to the hook ([`set_hook`], the module guard's), which may rewrite the
//! interrupted frame to cut off module code that ran past its budget with
//! interrupts off.
//!
//! The watchdog's source reaches only the CPUs the I/O APIC can address
//! at once (flat logical mode, the first eight); [`forward_to`] names a
//! CPU that passes each NMI it takes on to the others, one NMI IPI each
//! ([`crate::arch::apic::send_nmi_in_nmi`]), before its own hook runs.
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

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use crate::arch::TrapFrame;
use crate::arch::fn_cell::AtomicFn;
use crate::arch::percpu::MAX_CPUS;

static ARMED: AtomicBool = AtomicBool::new(false);
static HOOK: AtomicFn<fn(&mut TrapFrame)> = AtomicFn::none();

/// The CPU (index) that forwards its NMIs, or `usize::MAX` for none.
static FORWARDER: AtomicUsize = AtomicUsize::new(usize::MAX);
/// How many entries of [`FORWARD_TO`] are in use.
static FORWARD_LEN: AtomicUsize = AtomicUsize::new(0);
/// APIC ids the forwarder sends each NMI on to.
static FORWARD_TO: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];

/// Marks NMIs as watchdog ticks from now on.
pub fn arm() {
    ARMED.store(true, Ordering::SeqCst);
}

/// Makes NMIs unexpected again (the watchdog's source is masked) and stops
/// forwarding them.
pub fn disarm() {
    ARMED.store(false, Ordering::SeqCst);
    forward_to(usize::MAX, &[]);
}

/// Has CPU `forwarder` send every NMI it takes on to the CPUs with APIC ids
/// `apic_ids` (at most [`MAX_CPUS`]; none stops forwarding). Call it before
/// the NMIs start, or after they stopped: the list is not swapped
/// atomically with the forwarder's handler.
pub fn forward_to(forwarder: usize, apic_ids: &[u32]) {
    FORWARDER.store(usize::MAX, Ordering::SeqCst);
    let n = apic_ids.len().min(MAX_CPUS);
    for (slot, &id) in FORWARD_TO.iter().zip(&apic_ids[..n]) {
        slot.store(id, Ordering::SeqCst);
    }
    FORWARD_LEN.store(n, Ordering::SeqCst);
    if n > 0 {
        FORWARDER.store(forwarder, Ordering::SeqCst);
    }
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
        if c.index == FORWARDER.load(Ordering::Acquire) {
            for slot in &FORWARD_TO[..FORWARD_LEN.load(Ordering::Acquire)] {
                if !crate::arch::apic::send_nmi_in_nmi(slot.load(Ordering::Relaxed)) {
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
