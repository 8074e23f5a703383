//! Non-maskable interrupts: once the watchdog is armed ([`arm`]) every NMI
//! is taken as its tick. It is counted on the CPU that took it and passed
//! to the hook ([`set_hook`], the module guard's), which may rewrite the
//! interrupted frame to cut off module code that ran past its budget with
//! interrupts off.
//!
//! Before [`arm`], an NMI is reported and stops the kernel like any other
//! unexpected exception. The hook runs with NMIs blocked, on the NMI IST
//! stack, and may interrupt any kernel code: it must not lock, allocate or
//! log.

use core::sync::atomic::{AtomicBool, Ordering};

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

/// Installs (or with `None` removes) the function every watchdog NMI calls.
pub fn set_hook(hook: Option<fn(&mut TrapFrame)>) {
    HOOK.store(hook);
}

/// Called from the IDT for vector 2; `false` if the NMI is not the
/// watchdog's (the caller reports it and stops).
pub(crate) fn dispatch(frame: &mut TrapFrame) -> bool {
    if !ARMED.load(Ordering::SeqCst) {
        return false;
    }
    if let Some(c) = crate::arch::percpu::current() {
        c.nmis.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(hook) = HOOK.load() {
        hook(frame);
    }
    true
}
