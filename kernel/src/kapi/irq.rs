//! `kapi_irq_register`: module interrupt handlers on the legacy IRQ lines.
//!
//! The table is lock-free (atomics), so an interrupt never waits for a
//! service that is changing it.

use super::{owner, resources, run_as, service};
use crate::arch::fn_cell::AtomicFn;
use core::sync::atomic::{AtomicUsize, Ordering};
use modtable::abi::Status;

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
    let data = DATA[l].load(Ordering::SeqCst);
    run_as(OWNER[l].load(Ordering::SeqCst), || f(data));
}

/// Installs `handler(data)` for IRQ `irq` on behalf of the running module.
pub extern "C" fn kapi_irq_register(irq: u32, handler: extern "C" fn(usize), data: usize) -> i32 {
    service(|| {
        let Ok(line) = u8::try_from(irq) else {
            return Status::NotFound as i32;
        };
        let l = line as usize;
        if l >= LINES || HANDLER[l].is_some() {
            return Status::NotFound as i32;
        }
        // Lines the kernel uses (timer, cascade) are refused here.
        if crate::arch::irq::register(line, dispatch).is_err() {
            return Status::Busy as i32;
        }
        let me = owner();
        DATA[l].store(data, Ordering::SeqCst);
        OWNER[l].store(me, Ordering::SeqCst);
        HANDLER[l].store(Some(handler));
        resources::with(me, |r| r.irqs.push(line));
        Status::Ok as i32
    })
}
crate::export_symbol!(kapi_irq_register);

pub(super) fn remove(line: u8, module: usize) {
    let l = line as usize;
    if OWNER[l].load(Ordering::SeqCst) == module {
        HANDLER[l].store(None);
        OWNER[l].store(super::KERNEL, Ordering::SeqCst);
        let _ = crate::arch::irq::unregister(line);
    }
}
