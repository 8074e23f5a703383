//! `kapi_irq_register`: module interrupt handlers on the legacy IRQ lines.
//!
//! The table is lock-free (atomics), so an interrupt never waits for a
//! service that is changing it. Each handler runs under its own guard
//! ([`guard::call_handler`]): if it faults, panics or breaks a service's
//! rules, the fault is charged to its module (not to whatever the interrupt
//! interrupted), the handler is removed and the line masked, and a
//! delivered interrupt is still acknowledged (the dispatcher sends the EOI
//! after this returns). [`inject`] runs a handler on a chosen CPU without
//! a delivery. A line's handler never runs on two CPUs at once: an
//! interrupt that arrives while it runs elsewhere is marked pending, and
//! the CPU running it runs it once more when it returns, unless it was cut
//! short (as Linux's edge interrupt flow does; [`smpboot::once_at_a_time`],
//! tested on the host, and under QEMU with a real interrupt by the
//! `rt_irq_overlap` test module). For a level-triggered line (PCI INTx on the PIC)
//! that early EOI lets the line fire again until the handler has run; no
//! driver here takes one.
//!
//! Removing a handler ([`remove`], a cut-off) does not wait for a run of it
//! on another CPU: a delivered interrupt runs on CPU 0, where removal runs
//! too, and the only other caller, [`inject`], waits for the run it asked
//! for.

use super::{owner, resources, service};
use crate::arch::fn_cell::AtomicFn;
use crate::modules::guard::{self, Place};
use core::sync::atomic::{AtomicUsize, Ordering};
use modabi::Status;
use smpboot::once_at_a_time::Gate;

const LINES: usize = 16;

/// Module handlers by line; `remove` clears an entry before the module's
/// memory is reused.
static HANDLER: [AtomicFn<extern "C" fn(usize)>; LINES] = [const { AtomicFn::none() }; LINES];
static DATA: [AtomicUsize; LINES] = [const { AtomicUsize::new(0) }; LINES];
static OWNER: [AtomicUsize; LINES] = [const { AtomicUsize::new(super::KERNEL) }; LINES];

/// Per line: one CPU at a time in its handler, none of its interrupts lost.
static GATE: [Gate; LINES] = [const { Gate::new() }; LINES];

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

/// Runs line `l`'s module handler under its guard, again as long as the
/// line fired meanwhile; on a fault, disables the line and records the
/// fault. If the handler runs on another CPU, marks the line pending for
/// that CPU instead. `None` if no module handler is installed.
fn run_line(l: usize) -> Option<Injected> {
    let gate = &GATE[l];
    if !gate.enter() {
        return Some(Injected::Pending);
    }
    // What the first run did, unless a later one was cut short; with the
    // number of runs that returned.
    let mut ran = run_once(l);
    while !gate.leave() {
        // Fired while it ran: once more, here (a run after a cut-off finds
        // no handler and ends it).
        match (ran, run_once(l)) {
            (_, Some(Injected::CutShort)) => ran = Some(Injected::CutShort),
            (Some(Injected::Returned(n)), Some(Injected::Returned(_))) => {
                ran = Some(Injected::Returned(n + 1))
            }
            _ => {}
        }
    }
    ran
}

/// One guarded call of line `l`'s module handler (see [`run_line`]).
fn run_once(l: usize) -> Option<Injected> {
    let f = HANDLER[l].load()?;
    let module = OWNER[l].load(Ordering::SeqCst);
    let data = DATA[l].load(Ordering::SeqCst);
    let Some(a) = guard::call_handler(module, l as u8, f, data) else {
        return Some(Injected::Returned(1));
    };
    disable(l, module);
    ::log::error!(
        "module {}: IRQ {l} handler on CPU {}: {a}; IRQ {l} disabled",
        crate::modules::name_of(module),
        crate::arch::percpu::index()
    );
    guard::runtime_fault(module, Place::Irq(l as u8), a);
    Some(Injected::CutShort)
}

/// What a call of a line's handler did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injected {
    /// The handler ran on the CPU named and returned, this many times: more
    /// than once when the line fired on another CPU while it ran.
    Returned(u32),
    /// It was cut short there (the log says why); the line is disabled.
    CutShort,
    /// It was running on another CPU, which runs it once more.
    Pending,
}

/// Why [`inject`] did not run a handler.
#[derive(Debug)]
pub enum InjectError {
    /// Not a legacy IRQ line (0–15).
    NoSuchLine(u32),
    /// The NMI watchdog is not armed (why): a handler that never returned
    /// would hang the caller for good.
    NoWatchdog(&'static str),
    /// No module handler is installed for the line.
    NoHandler(u8),
    /// The CPU is not online, or could not run the call.
    Cpu(crate::arch::smp::CallError),
}

impl core::fmt::Display for InjectError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InjectError::NoSuchLine(l) => write!(f, "no IRQ line {l} (lines are 0-15)"),
            InjectError::NoWatchdog(why) => write!(
                f,
                "the NMI watchdog is not armed ({why}): a handler that never returned would hang the shell"
            ),
            InjectError::NoHandler(l) => write!(f, "no module handler on IRQ {l}"),
            InjectError::Cpu(e) => write!(f, "{e}"),
        }
    }
}

/// Runs line `line`'s module handler on CPU `cpu` as if the line had
/// fired there (a debugging and test aid): an IPI call on that CPU, under
/// the same guard as a delivered interrupt, with interrupts off, but with
/// no EOI (nothing was delivered). The PICs deliver the lines to CPU 0
/// only, so this is how a handler runs on another CPU. Refused while the
/// NMI watchdog is not armed, since the caller waits for the handler.
/// Returns the module's name and what the call did.
pub fn inject(line: u32, cpu: usize) -> Result<(&'static str, Injected), InjectError> {
    let l = usize::try_from(line)
        .ok()
        .filter(|&l| l < LINES)
        .ok_or(InjectError::NoSuchLine(line))?;
    crate::arch::smp::check_online(cpu).map_err(InjectError::Cpu)?;
    if let Some(why) = crate::watchdog::not_armed() {
        return Err(InjectError::NoWatchdog(why));
    }
    if HANDLER[l].load().is_none() {
        return Err(InjectError::NoHandler(l as u8));
    }
    let name = crate::modules::name_of(OWNER[l].load(Ordering::SeqCst));
    let ran = spin::Once::new();
    crate::arch::smp::call_on(cpu, &|| {
        // Interrupts are off in an IPI call; on the calling CPU too.
        ran.call_once(|| crate::arch::without_interrupts(|| run_line(l)));
    })
    .map_err(InjectError::Cpu)?;
    // None: removed between the check and the call.
    let ran = ran.get().copied().flatten();
    ran.map(|r| (name, r))
        .ok_or(InjectError::NoHandler(l as u8))
}

/// Removes `module`'s handler of line `l` and masks the line; `false` if
/// the line has no handler of `module` (a cut-off removed it already, or
/// the line went to another module since).
fn disable(l: usize, module: usize) -> bool {
    if OWNER[l].load(Ordering::SeqCst) != module || HANDLER[l].load().is_none() {
        return false;
    }
    HANDLER[l].store(None);
    OWNER[l].store(super::KERNEL, Ordering::SeqCst);
    let _ = crate::arch::irq::unregister(l as u8);
    true
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

/// Removes `module`'s handler of `line` (see [`disable`]); whether there
/// was one to remove.
pub(super) fn remove(line: u8, module: usize) -> bool {
    disable(line as usize, module)
}
