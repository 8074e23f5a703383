//! I/O ports: the claim registry (the kernel's own ports and the ranges
//! modules claimed) and the port access, made only for the holder of the
//! port.

use super::KERNEL;
use crate::arch::locked;
use alloc::vec::Vec;
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

/// Why a port access was not made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The width is not 1, 2 or 4.
    Width,
    /// The owner does not hold every port of the access.
    Unclaimed,
}

/// Empties the registry and gives the kernel its own ports.
pub fn init() {
    locked(&CLAIMS, |c| {
        c.clear();
        // Room for every module's claims up front, so that a probe's claim
        // never grows the table and shows up in its heap leak figure.
        c.reserve(CLAIMS_CAPACITY);
        for &(base, count) in KERNEL_PORTS {
            c.push((base, count, KERNEL));
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

/// Claims `count` ports from `base` (a non-empty range inside the 64 Ki
/// ports) for `owner`; `false` if any of them is held already.
pub fn claim(base: u16, count: u16, owner: usize) -> bool {
    locked(&CLAIMS, |claims| {
        if claims
            .iter()
            .any(|&(b, c, _)| overlaps((b, c), (base, count)))
        {
            return false;
        }
        claims.push((base, count, owner));
        true
    })
}

/// Gives back the claim `base`, `count` of `owner`.
pub fn unclaim(base: u16, count: u16, owner: usize) {
    locked(&CLAIMS, |c| {
        c.retain(|&(b, n, o)| !(b == base && n == count && o == owner))
    });
}

/// A port access (`value` `None` reads) by `owner`, made only if it holds
/// every port of `port..port + width`.
pub fn io(owner: usize, port: u16, width: u32, value: Option<u32>) -> Result<u32, Refused> {
    if !matches!(width, 1 | 2 | 4) {
        return Err(Refused::Width);
    }
    if !locked(&CLAIMS, |c| holds(c, owner, port, width)) {
        return Err(Refused::Unclaimed);
    }
    Ok(raw(port, width, value))
}

/// The access itself; only [`io`] calls it, after its checks.
#[allow(unsafe_code)]
fn raw(port: u16, width: u32, value: Option<u32>) -> u32 {
    use crate::arch::port::{inb, inl, inw, outb, outl, outw};
    // SAFETY: `io` checked that the owner (a module, or the kernel for its
    // own ports) holds `port..port + width`, so the access reaches only a
    // device that owner drives; width is 1, 2 or 4.
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
