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
    if l < LINES {
        run_line(l);
    }
}

/// Runs line `l`'s module handler under its guard; on a fault, disables
/// the line and records the fault. `None` if no module handler is
/// installed, else whether the handler was cut short.
fn run_line(l: usize) -> Option<bool> {
    let f = HANDLER[l].load()?;
    let module = OWNER[l].load(Ordering::SeqCst);
    let data = DATA[l].load(Ordering::SeqCst);
    let Some(a) = guard::call_handler(module, l as u8, f, data) else {
        return Some(false);
    };
    disable(l, module);
    ::log::error!(
        "module {}: IRQ {l} handler on CPU {}: {a}; IRQ {l} disabled",
        crate::modules::name_of(module),
        crate::arch::percpu::index()
    );
    guard::runtime_fault(module, Place::Irq(l as u8), a);
    Some(true)
}

/// Why [`inject`] did not run a handler.
#[derive(Debug)]
pub enum InjectError {
    /// Not a legacy IRQ line (0–15).
    NoSuchLine(u8),
    /// No module handler is installed for the line.
    NoHandler(u8),
    /// The CPU could not run the call.
    Cpu(crate::arch::smp::CallError),
}

impl core::fmt::Display for InjectError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InjectError::NoSuchLine(l) => write!(f, "no IRQ line {l} (lines are 0-15)"),
            InjectError::NoHandler(l) => write!(f, "no module handler on IRQ {l}"),
            InjectError::Cpu(e) => write!(f, "{e}"),
        }
    }
}

/// Runs line `line`'s module handler on CPU `cpu` as if the line had
/// fired there (a debugging and test aid, like Linux's IRQ injection): an
/// IPI call on that CPU, with interrupts off, under the same guard as a
/// delivered interrupt (no EOI is sent: nothing was delivered). The PICs
/// deliver the lines to CPU 0 only, so this is how a handler runs on
/// another CPU. Returns the module's name and whether the handler was cut
/// short.
pub fn inject(line: u8, cpu: usize) -> Result<(&'static str, bool), InjectError> {
    let l = usize::from(line);
    if l >= LINES {
        return Err(InjectError::NoSuchLine(line));
    }
    if HANDLER[l].load().is_none() {
        return Err(InjectError::NoHandler(line));
    }
    let name = crate::modules::name_of(OWNER[l].load(Ordering::SeqCst));
    let ran = core::sync::atomic::AtomicU8::new(0);
    crate::arch::smp::call_on(cpu, &|| {
        let r = crate::arch::without_interrupts(|| run_line(l));
        ran.store(
            match r {
                None => 0,
                Some(false) => 1,
                Some(true) => 2,
            },
            Ordering::SeqCst,
        );
    })
    .map_err(InjectError::Cpu)?;
    match ran.load(Ordering::SeqCst) {
        // Removed between the check and the call.
        0 => Err(InjectError::NoHandler(line)),
        r => Ok((name, r == 2)),
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
