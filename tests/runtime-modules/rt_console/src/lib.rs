//! Runtime test module `rt_console`: loaded after `rmmod uart_com1`, it
//! claims COM1's ports and becomes the kernel console, writing each byte
//! itself; its 41st write spins in its own code for ever, waiting for a
//! flag nothing sets (as a driver waiting for its interrupt handler would,
//! with interrupts off). No timer tick and no kernel service can stop it:
//! the kernel's NMI watchdog must cut that write off, and the kernel put the console back on COM1 from the start of
//! the cut-off write and report the cut on a line of its own, so no line
//! (the long `REPORT` line included) is lost or split.

#![no_std]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use module_api::console::{self, ConsoleWriter};
use module_api::ports::{PortIo, Ports};
use module_api::sync::OnceCell;
use module_api::{ProbeContext, ProbeError};

module_api::module! {
    name: "rt_console",
    probe: probe,
}

/// COM1's first port and the number of its ports.
const COM1: u16 = 0x3f8;
const COM1_PORTS: u16 = 8;
/// Transmit holding register and line status register (offsets), and the
/// status bit saying the holding register is empty.
const THR: u16 = 0;
const LSR: u16 = 5;
const THR_EMPTY: u8 = 0x20;
/// The write that never ends (1-based).
pub const HANGING_WRITE: usize = 41;

static PORTS: OnceCell<Ports> = OnceCell::new();
static WRITES: AtomicUsize = AtomicUsize::new(0);
/// What the hanging write waits for: nothing ever sets it.
static DRAINED: AtomicBool = AtomicBool::new(false);

struct Com1;

impl ConsoleWriter for Com1 {
    fn write(bytes: &[u8]) {
        if WRITES.fetch_add(1, Ordering::SeqCst) + 1 == HANGING_WRITE {
            while !DRAINED.load(Ordering::SeqCst) {
                core::hint::spin_loop();
            }
        }
        let Some(p) = PORTS.get() else { return };
        for &b in bytes {
            // The UART the kernel set up drains at 115200 baud; a bounded
            // wait keeps a stuck line from hanging every other write.
            for _ in 0..100_000 {
                if p.read8(LSR) & THR_EMPTY != 0 {
                    break;
                }
            }
            p.write8(THR, b);
        }
    }
}

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let ports = Ports::claim(COM1, COM1_PORTS)?;
    if PORTS.set(ports).is_err() {
        return Err(ProbeError::busy(format_args!("rt_console: probed twice")));
    }
    console::register::<Com1>()
}
