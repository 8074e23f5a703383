//! `kapi_irq_register`: module interrupt handlers on the legacy IRQ lines.
//!
//! The table is lock-free (atomics), so an interrupt never waits for a
//! service that is changing it. Each handler runs under its own guard
//! ([`guard::call_handler`]): if it faults, panics or breaks a service's
//! rules, the fault is charged to its module (not to whatever the interrupt
//! interrupted), the handler is removed and the line masked, and the
//! interrupt is still acknowledged (the dispatcher sends the EOI after this
//! returns).

use super::{owner, resources, service};
use crate::arch::fn_cell::AtomicFn;
use crate::modules::guard::{self, Place};
use core::sync::atomic::{AtomicUsize, Ordering};
use modabi::Status;

const LINES: usize = 16;

/// Module handlers by line; `remove` clears an entry before the module's
/// memory is reused.
static HANDLER: [AtomicFn<extern "C" fn(usize)>; LINES] = [const { AtomicFn::none() }; LINES];
static DATA: [AtomicUsize; LINES] = [const { AtomicUsize::new(0) }; LINES];
static OWNER: [AtomicUsize; LINES] = [const { AtomicUsize::new(super::KERNEL) }; LINES];

/// Number of IRQ lines with a module handler (for leak checks).
pub fn registered() -> usize {
    HANDLER.iter().filter(|h| h.is_some()).count()
}

fn dispatch(frame: &mut crate::arch::idt::TrapFrame) {
    let l = (frame.vector - crate::arch::irq::IRQ_BASE as u64) as usize;
    if l >= LINES {
        return;
    }
    let Some(f) = HANDLER[l].load() else {
        return;
    };
    let module = OWNER[l].load(Ordering::SeqCst);
    let data = DATA[l].load(Ordering::SeqCst);
    if let Some(a) = guard::call_handler(module, l as u8, f, data) {
        disable(l, module);
        ::log::error!(
            "module {}: IRQ {l} handler: {a}; IRQ {l} disabled",
            crate::modules::name_of(module)
        );
        guard::runtime_fault(module, Place::Irq(l as u8), a);
    }
}

/// Removes `module`'s handler of line `l` and masks the line.
fn disable(l: usize, module: usize) {
    if OWNER[l].load(Ordering::SeqCst) == module {
        HANDLER[l].store(None);
        OWNER[l].store(super::KERNEL, Ordering::SeqCst);
        let _ = crate::arch::irq::unregister(l as u8);
    }
}

/// Installs `handler(data)` for IRQ `irq` on behalf of the running module:
/// `NotFound` for a line that does not exist, `Busy` for one the kernel or
/// another module holds.
pub extern "C" fn kapi_irq_register(irq: u32, handler: extern "C" fn(usize), data: usize) -> i32 {
    service("kapi_irq_register", || {
        let Some(line) = u8::try_from(irq).ok().filter(|&l| (l as usize) < LINES) else {
            return Ok(Status::NotFound as i32);
        };
        let l = line as usize;
        if HANDLER[l].is_some() {
            return Ok(Status::Busy as i32);
        }
        let me = owner();
        DATA[l].store(data, Ordering::SeqCst);
        OWNER[l].store(me, Ordering::SeqCst);
        HANDLER[l].store(Some(handler));
        // Lines the kernel uses (timer, cascade) are refused here.
        if crate::arch::irq::register(line, dispatch).is_err() {
            HANDLER[l].store(None);
            OWNER[l].store(super::KERNEL, Ordering::SeqCst);
            return Ok(Status::Busy as i32);
        }
        resources::with(me, |r| r.irqs.push(line));
        Ok(Status::Ok as i32)
    })
}
crate::export_symbol!(kapi_irq_register);

pub(super) fn remove(line: u8, module: usize) {
    disable(line as usize, module);
}
