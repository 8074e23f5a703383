//! `kapi_port_*`: I/O ports, only on ranges the module claimed.

use super::{owner, resources, service};
use crate::modules::guard::{self, Abort};
use alloc::vec::Vec;
use modtable::abi::Status;
use spin::Mutex;

/// Claimed ranges: (first port, count, owner).
static CLAIMS: Mutex<Vec<(u16, u16, usize)>> = Mutex::new(Vec::new());

/// Runs `f` on the claims with interrupts off (module IRQ handlers check
/// them too, on any CPU).
fn claims<R>(f: impl FnOnce(&mut Vec<(u16, u16, usize)>) -> R) -> R {
    crate::arch::without_interrupts(|| f(&mut CLAIMS.lock()))
}

/// Ports the kernel keeps for itself: PIC, PIT, PS/2-port B/speaker gate,
/// the debug-exit device, the second PIC and PCI configuration mechanism 1.
const KERNEL_PORTS: &[(u16, u16)] = &[
    (0x20, 2),
    (0x40, 4),
    (0x61, 1),
    (0xa0, 2),
    (0xf4, 4),
    (0xcf8, 8),
];

pub(super) fn init() {
    claims(|c| {
        c.clear();
        for &(base, count) in KERNEL_PORTS {
            c.push((base, count, super::KERNEL));
        }
    })
}

fn overlaps(a: (u16, u16), b: (u16, u16)) -> bool {
    let (a0, a1) = (a.0 as u32, a.0 as u32 + a.1 as u32);
    let (b0, b1) = (b.0 as u32, b.0 as u32 + b.1 as u32);
    a0 < b1 && b0 < a1
}

/// Reads a port of `width` bytes (1, 2 or 4).
///
/// # Safety
/// The caller must own the port (it is claimed, or the kernel's own).
pub(super) unsafe fn port_read(port: u16, width: u32) -> u32 {
    use crate::arch::port::{inb, inl, inw};
    // SAFETY: forwarded from this function's contract.
    unsafe {
        match width {
            1 => inb(port) as u32,
            2 => inw(port) as u32,
            _ => inl(port),
        }
    }
}

/// Writes a port of `width` bytes (1, 2 or 4).
///
/// # Safety
/// As for [`port_read`].
pub(super) unsafe fn port_write(port: u16, width: u32, value: u32) {
    use crate::arch::port::{outb, outl, outw};
    // SAFETY: forwarded from this function's contract.
    unsafe {
        match width {
            1 => outb(port, value as u8),
            2 => outw(port, value as u16),
            _ => outl(port, value),
        }
    }
}

/// Claims `count` ports from `base` for the running module.
pub extern "C" fn kapi_port_claim(base: u16, count: u16) -> i32 {
    service(|| {
        if count == 0 || base as u32 + count as u32 > 0x1_0000 {
            return Status::Invalid as i32;
        }
        let me = owner();
        let taken = claims(|claims| {
            let busy = claims
                .iter()
                .any(|&(b, c, _)| overlaps((b, c), (base, count)));
            if !busy {
                claims.push((base, count, me));
            }
            busy
        });
        if taken {
            return Status::Busy as i32;
        }
        resources::with(me, |r| r.ports.push((base, count)));
        Status::Ok as i32
    })
}
crate::export_symbol!(kapi_port_claim);

pub(super) fn unclaim(base: u16, count: u16, module: usize) {
    claims(|c| c.retain(|&(b, c, o)| !(b == base && c == count && o == module)));
}

/// The violation an access would be, or `None` if it is allowed.
fn violation_of(port: u16, width: u32) -> Option<Abort> {
    if !matches!(width, 1 | 2 | 4) {
        return Some(Abort::violation(format_args!(
            "port access of width {width}"
        )));
    }
    let me = owner();
    let end = port as u32 + width;
    let ok = claims(|c| {
        c.iter()
            .any(|&(b, c, o)| o == me && port as u32 >= b as u32 && end <= b as u32 + c as u32)
    });
    if ok {
        None
    } else {
        Some(Abort::violation(format_args!(
            "access to unclaimed port {port:#x}"
        )))
    }
}

/// Reads a claimed port.
pub extern "C" fn kapi_port_in(port: u16, width: u32) -> u32 {
    service(|| match violation_of(port, width) {
        // SAFETY: the running module claimed this port range, and the kernel
        // keeps its own ports out of every module's reach.
        None => unsafe { port_read(port, width) },
        Some(a) => guard::violation(a, u32::MAX),
    })
}
crate::export_symbol!(kapi_port_in);

/// Writes a claimed port.
pub extern "C" fn kapi_port_out(port: u16, width: u32, value: u32) {
    service(|| match violation_of(port, width) {
        // SAFETY: as in `kapi_port_in`.
        None => unsafe { port_write(port, width, value) },
        Some(a) => guard::violation(a, ()),
    })
}
crate::export_symbol!(kapi_port_out);
