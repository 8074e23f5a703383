//! ACPI table lookup for modules (`kapi_acpi_table`): the kernel finds the
//! RSDP (from the PVH start info, else by scanning the BIOS area) and walks
//! the XSDT or RSDT; modules get copies of whole tables.

use super::{buffer, service};
use core::sync::atomic::{AtomicU64, Ordering};
use modabi::Status;

/// Largest buffer `kapi_acpi_table` fills (module-api loads at most 1 MiB).
const BUF_LIMIT: usize = 16 << 20;

/// Physical address of the RSDT or XSDT, 0 if none was found.
static ROOT: AtomicU64 = AtomicU64::new(0);
/// Whether `ROOT` is an XSDT (8-byte entries).
static ROOT_IS_X: AtomicU64 = AtomicU64::new(0);

use crate::hw::firmware::bytes as phys_bytes;

fn sum_ok(b: &[u8]) -> bool {
    b.iter().fold(0u8, |a, &x| a.wrapping_add(x)) == 0
}

fn find_rsdp() -> Option<u64> {
    if let Some(p) = crate::pvh::boot_info().and_then(|b| b.rsdp) {
        return Some(p);
    }
    // The BIOS read-only area, on 16-byte boundaries.
    const AREA: u64 = 0xe0000;
    let area = phys_bytes(AREA, 0x20000)?;
    (0..area.len() - 20).step_by(16).find_map(|off| {
        let b = &area[off..off + 20];
        (&b[..8] == b"RSD PTR " && sum_ok(b)).then_some(AREA + off as u64)
    })
}

pub(super) fn init() {
    let Some(rsdp) = find_rsdp() else {
        ::log::warn!("acpi: no RSDP found; modules will see no ACPI tables");
        return;
    };
    let Some(b) = phys_bytes(rsdp, 36) else {
        ::log::warn!(
            "acpi: the RSDP at {rsdp:#x} is not in firmware memory; modules will see no ACPI tables"
        );
        return;
    };
    let revision = b[15];
    let (root, x) = if revision >= 2 {
        (u64::from_le_bytes(b[24..32].try_into().unwrap()), true)
    } else {
        (
            u32::from_le_bytes(b[16..20].try_into().unwrap()) as u64,
            false,
        )
    };
    ROOT.store(root, Ordering::SeqCst);
    ROOT_IS_X.store(x as u64, Ordering::SeqCst);
    ::log::info!(
        "acpi: RSDP at {rsdp:#x}, {} at {root:#x}",
        if x { "XSDT" } else { "RSDT" }
    );
}

/// The physical address and length of the `index`th table with signature
/// `sig` (tables outside firmware memory are skipped).
pub fn find(sig: &[u8], index: u32) -> Option<(u64, usize)> {
    let root = ROOT.load(Ordering::SeqCst);
    if root == 0 {
        return None;
    }
    let x = ROOT_IS_X.load(Ordering::SeqCst) != 0;
    let hdr = phys_bytes(root, 36)?;
    let len = u32::from_le_bytes(hdr[4..8].try_into().unwrap()) as usize;
    let body = phys_bytes(root, len.max(36))?.get(36..)?;
    let step = if x { 8 } else { 4 };
    let mut seen = 0;
    for e in body.chunks_exact(step) {
        let p = if x {
            u64::from_le_bytes(e.try_into().unwrap())
        } else {
            u32::from_le_bytes(e.try_into().unwrap()) as u64
        };
        let Some(h) = phys_bytes(p, 8) else { continue };
        if &h[..4] == sig {
            if seen == index {
                let tlen = u32::from_le_bytes(h[4..8].try_into().unwrap()) as usize;
                return Some((p, tlen));
            }
            seen += 1;
        }
    }
    None
}

/// Copies the `index`th ACPI table with signature `sig` (4 bytes) into
/// `buf` (up to `buf_len` bytes) and returns its full length, or
/// `NotFound`.
pub extern "C" fn kapi_acpi_table(
    sig: *const u8,
    index: u32,
    buf: *mut u8,
    buf_len: usize,
) -> isize {
    service("kapi_acpi_table", || {
        let mut sig4 = [0u8; 4];
        let sig = buffer::read_into("kapi_acpi_table", sig, 4, 4, &mut sig4)?;
        let Some((phys, len)) = find(sig, index) else {
            return Ok(Status::NotFound as isize);
        };
        let n = len.min(buf_len);
        let Some(table) = phys_bytes(phys, n) else {
            return Ok(Status::NotFound as isize);
        };
        buffer::write("kapi_acpi_table", buf, table, BUF_LIMIT)?;
        Ok(len as isize)
    })
}
crate::export_symbol!(kapi_acpi_table);
