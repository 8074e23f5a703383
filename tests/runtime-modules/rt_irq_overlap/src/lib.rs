//! Runtime test module `rt_irq_overlap`: its probe claims the primary
//! floppy controller's digital output register and registers a handler for
//! IRQ 6, and succeeds. The shell's `irq 6 CPU` runs the handler on a
//! chosen CPU. Every odd-numbered run resets the controller, which raises
//! IRQ 6 for real (delivered to CPU 0), and then waits 5 ms with
//! interrupts off, half the time a callback may take, so that the
//! interrupt can reach CPU 0 while the handler still runs elsewhere. Each
//! run logs its number, and whether it began while another run had not
//! ended: the kernel must never run the handler on two CPUs at once, and
//! must run it once more for an interrupt that arrived meanwhile. (An
//! interrupt that CPU 0 takes only after the run ended is run there, as
//! the even-numbered run, and the next `irq 6 CPU` tries again.)

#![no_std]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use module_api::irq::{self, IrqHandler};
use module_api::ports::{PortIo, Ports};
use module_api::sync::OnceCell;
use module_api::{ProbeContext, ProbeError, info, time};

module_api::module! {
    name: "rt_irq_overlap",
    probe: probe,
}

/// The floppy controller's IRQ line.
const IRQ: u8 = 6;
/// Digital output register of the primary floppy controller.
const DOR: u16 = 0x3f2;
/// DOR: controller out of reset, DMA and interrupts enabled.
const DOR_RUN: u8 = 0x0c;
/// How long an odd-numbered run keeps the handler busy after the reset.
const BUSY_US: u64 = 5_000;

static PORT: OnceCell<Ports> = OnceCell::new();
static RUNS: AtomicU32 = AtomicU32::new(0);
static RUNNING: AtomicBool = AtomicBool::new(false);

struct Overlap;

impl IrqHandler for Overlap {
    fn handle(&self) {
        let overlapped = RUNNING.swap(true, Ordering::SeqCst);
        let run = RUNS.fetch_add(1, Ordering::SeqCst) + 1;
        if overlapped {
            info!("rt_irq_overlap: run {run} began while another run had not ended");
        } else {
            info!("rt_irq_overlap: run {run}");
        }
        if run % 2 == 1
            && let Some(dor) = PORT.get()
        {
            // Leaving reset makes the controller interrupt.
            dor.write8(0, 0);
            time::delay_us(10);
            dor.write8(0, DOR_RUN);
            time::delay_us(BUSY_US);
        }
        if !overlapped {
            RUNNING.store(false, Ordering::SeqCst);
        }
    }
}

static HANDLER: Overlap = Overlap;

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    if PORT.set(Ports::claim(DOR, 1)?).is_err() {
        return Err(ProbeError::busy(format_args!(
            "rt_irq_overlap: probed twice"
        )));
    }
    irq::register(IRQ, &HANDLER)?;
    Ok(())
}
