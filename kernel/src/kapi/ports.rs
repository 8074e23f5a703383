//! `kapi_port_*`: I/O ports, only on ranges the module claimed.

use super::{locked, owner, resources, service};
use crate::modules::guard::Abort;
use alloc::vec::Vec;
use modabi::Status;
use spin::Mutex;

/// Claims the table has room for without growing.
const CLAIMS_CAPACITY: usize = 64;

/// Claimed ranges: (first port, count, owner).
static CLAIMS: Mutex<Vec<(u16, u16, usize)>> = Mutex::new(Vec::new());

/// Ports the kernel keeps for itself: PIC, PIT, PS/2-port B/speaker gate,
/// the debug-exit device, the second PIC and PCI configuration mechanism 1.
const KERNEL_PORTS: &[(u16, u16)] = &[
    (0x20, 2),
    (0x40, 4),
    (0x61, 1),
    (0xa0, 2),
    (
        report::verdict::DEBUG_EXIT_PORT,
        report::verdict::DEBUG_EXIT_SIZE,
    ),
    (0xcf8, 8),
];

pub(super) fn init() {
    locked(&CLAIMS, |c| {
        c.clear();
        // Room for every module's claims up front, so that a probe's claim
        // never grows the table and shows up in its heap leak figure.
        c.reserve(CLAIMS_CAPACITY);
        for &(base, count) in KERNEL_PORTS {
            c.push((base, count, super::KERNEL));
        }
    });
}

fn overlaps(a: (u16, u16), b: (u16, u16)) -> bool {
    let (a0, a1) = (a.0 as u32, a.0 as u32 + a.1 as u32);
    let (b0, b1) = (b.0 as u32, b.0 as u32 + b.1 as u32);
    a0 < b1 && b0 < a1
}

/// Whether `owner` holds every port of `port..port + width`.
fn holds(claims: &[(u16, u16, usize)], owner: usize, port: u16, width: u32) -> bool {
    let end = port as u32 + width;
    claims
        .iter()
        .any(|&(b, c, o)| o == owner && port as u32 >= b as u32 && end <= b as u32 + c as u32)
}

/// The port access itself (`value` `None` reads); only [`module_io`] and
/// [`kernel_io`] call it, after checking who holds the port.
#[allow(unsafe_code)]
fn raw(port: u16, width: u32, value: Option<u32>) -> u32 {
    use crate::arch::port::{inb, inl, inw, outb, outl, outw};
    // SAFETY: the callers checked that the caller (a module, or the kernel
    // for its own ports) holds `port..port + width`, so the access reaches
    // only a device that caller drives; width is 1, 2 or 4.
    unsafe {
        match (width, value) {
            (1, None) => inb(port) as u32,
            (2, None) => inw(port) as u32,
            (_, None) => inl(port),
            (1, Some(v)) => {
                outb(port, v as u8);
                0
            }
            (2, Some(v)) => {
                outw(port, v as u16);
                0
            }
            (_, Some(v)) => {
                outl(port, v);
                0
            }
        }
    }
}

/// A port access of the running module, if it holds the port.
fn module_io(service_name: &str, port: u16, width: u32, value: Option<u32>) -> Result<u32, Abort> {
    if !matches!(width, 1 | 2 | 4) {
        return Err(Abort::violation(format_args!(
            "{service_name}: port access of width {width}"
        )));
    }
    let me = owner();
    if !locked(&CLAIMS, |c| holds(c, me, port, width)) {
        return Err(Abort::violation(format_args!(
            "access to unclaimed port {port:#x}"
        )));
    }
    Ok(raw(port, width, value))
}

/// A port access by the kernel to one of its own ports (PCI configuration).
pub(super) fn kernel_io(port: u16, width: u32, value: Option<u32>) -> u32 {
    assert!(
        matches!(width, 1 | 2 | 4) && locked(&CLAIMS, |c| holds(c, super::KERNEL, port, width)),
        "kernel access to port {port:#x} it does not hold"
    );
    raw(port, width, value)
}

/// Claims `count` ports from `base` for the running module.
pub extern "C" fn kapi_port_claim(base: u16, count: u16) -> i32 {
    service("kapi_port_claim", || {
        if count == 0 || base as u32 + count as u32 > 0x1_0000 {
            return Ok(Status::Invalid as i32);
        }
        let me = owner();
        let claimed = locked(&CLAIMS, |claims| {
            if claims
                .iter()
                .any(|&(b, c, _)| overlaps((b, c), (base, count)))
            {
                return false;
            }
            claims.push((base, count, me));
            true
        });
        if !claimed {
            return Ok(Status::Busy as i32);
        }
        resources::with(me, |r| r.ports.push((base, count)));
        Ok(Status::Ok as i32)
    })
}
crate::export_symbol!(kapi_port_claim);

pub(super) fn unclaim(base: u16, count: u16, module: usize) {
    locked(&CLAIMS, |c| {
        c.retain(|&(b, n, o)| !(b == base && n == count && o == module))
    });
}

/// Reads a claimed port.
pub extern "C" fn kapi_port_in(port: u16, width: u32) -> u32 {
    service("kapi_port_in", || {
        module_io("kapi_port_in", port, width, None)
    })
}
crate::export_symbol!(kapi_port_in);

/// Writes a claimed port.
pub extern "C" fn kapi_port_out(port: u16, width: u32, value: u32) {
    service("kapi_port_out", || {
        module_io("kapi_port_out", port, width, Some(value)).map(|_| ())
    })
}
crate::export_symbol!(kapi_port_out);
