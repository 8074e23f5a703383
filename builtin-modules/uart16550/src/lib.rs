//! 16550 UART driver shared by the per-port modules `uart_com1`..`uart_com4`.
//!
//! This crate is a plain library, not a module: each port is its own module
//! crate (and so its own object) so a missing port is expunged alone. The
//! probe claims the port's eight registers, checks that the scratch
//! register holds what was written, then checks the modem-control loopback
//! (status lines and one data byte), and programs 115200 8N1.

#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

mod regs;
mod uart;

pub use uart::{Uart, check_port};

use core::sync::atomic::{AtomicU64, Ordering};
use module_api::console::{self, ConsoleWriter};
use module_api::msg::MsgBuf;
use module_api::ports::Ports;
use module_api::sync::OnceCell;
use module_api::time::KernelClock;
use module_api::{ProbeContext, ProbeError, device, info};

/// One of the four standard PC serial ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ComPort {
    /// Device name, `com1`..`com4`.
    pub name: &'static str,
    /// First I/O port.
    pub base: u16,
}

/// COM1 at 0x3f8.
pub const COM1: ComPort = ComPort {
    name: "com1",
    base: 0x3f8,
};
/// COM2 at 0x2f8.
pub const COM2: ComPort = ComPort {
    name: "com2",
    base: 0x2f8,
};
/// COM3 at 0x3e8.
pub const COM3: ComPort = ComPort {
    name: "com3",
    base: 0x3e8,
};
/// COM4 at 0x2e8.
pub const COM4: ComPort = ComPort {
    name: "com4",
    base: 0x2e8,
};

/// The port this module drives (each module object drives exactly one).
static PORT: OnceCell<Uart<Ports>> = OnceCell::new();

module_api::percpu! {
    /// Bytes this module's transmit path wrote, per CPU.
    static WRITTEN: AtomicU64 = AtomicU64::new(0);
}

/// Writes `bytes` to the port and counts them on the calling CPU.
fn write_counted(u: &Uart<Ports>, bytes: &[u8]) {
    u.write_bytes(bytes, &KernelClock);
    WRITTEN
        .this_cpu()
        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
}

/// Writes console output to the probed port.
struct Console;

impl ConsoleWriter for Console {
    fn write(bytes: &[u8]) {
        if let Some(u) = PORT.get() {
            write_counted(u, bytes);
        }
    }
}

/// Probes `port`; on success keeps it for [`selftest`] and, if `console`,
/// registers it as a kernel console.
pub fn probe(_ctx: &mut ProbeContext, port: ComPort, console: bool) -> Result<(), ProbeError> {
    let ports = Ports::claim(port.base, regs::COUNT)?;
    check_port(&ports, &KernelClock)?;
    let uart = Uart::init(ports);
    info!("{}: 16550 UART at {:#x}, 115200 8N1", port.name, port.base);
    device::register(port.name)?;
    if PORT.set(uart).is_err() {
        return Err(ProbeError::busy(format_args!("{} probed twice", port.name)));
    }
    if console {
        console::register::<Console>()?;
    }
    Ok(())
}

/// Writes a line through this module's own transmit path and checks the
/// transmitter drained it, that the calling CPU's byte count grew by the
/// line's length, and that every CPU has its own count.
pub fn selftest(port: ComPort) -> Result<(), ProbeError> {
    let Some(u) = PORT.get() else {
        return Err(ProbeError::io(format_args!(
            "{} selftest before probe",
            port.name
        )));
    };
    let line = MsgBuf::<64>::format(format_args!(
        "{}: selftest line written by the 16550 driver\n",
        port.name
    ));
    let before = WRITTEN.this_cpu().load(Ordering::Relaxed);
    write_counted(u, line.as_bytes());
    u.wait_drained(&KernelClock).map_err(|lsr| {
        ProbeError::timeout(format_args!(
            "{}: transmitter not empty after selftest (LSR {lsr:#04x})",
            port.name
        ))
    })?;
    let after = WRITTEN.this_cpu().load(Ordering::Relaxed);
    if after != before + line.as_bytes().len() as u64 {
        return Err(ProbeError::io(format_args!(
            "{}: per-CPU byte count went from {before} to {after}, expected +{}",
            port.name,
            line.as_bytes().len()
        )));
    }
    let cpus = module_api::percpu::check_each_cpu(&WRITTEN).map_err(|e| {
        ProbeError::io(format_args!(
            "{}: per-CPU byte counts: {e:?} (CPUs must not share a copy)",
            port.name
        ))
    })?;
    info!(
        "{}: selftest: per-CPU byte count is its own on each of {cpus} CPU(s), {after} bytes on this one",
        port.name
    );
    Ok(())
}
