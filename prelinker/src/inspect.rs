//! `inspect`: reads the module table of a prelinked image, verifies it as
//! the kernel does at boot (the table's own checksum, and each module's
//! checksum over its used slot bytes in the image), and reports the layout
//! (the same numbers as the link plan).

use crate::error::Result;
use crate::kernel::{Area, Kernel};
use crate::plan::Plan;
use crate::{bail, err};
use modtable::checksum::module_checksum;
use modtable::table::{Table, TableError};
use modtable::{Class, PerClass};

/// Reads the plan back from a prelinked image, after verifying the table's
/// checksum and every module's (an error of kind
/// [`Checksum`](crate::ErrorKind::Checksum) names each module whose bytes
/// do not match, with both checksums).
pub fn inspect(file: &str, image: &[u8]) -> Result<Plan> {
    let (regions, a) = Kernel::image_areas(file, image)?;
    let area = &image[a.file_off as usize..(a.file_off + a.size) as usize];
    let t = Table::parse(area).map_err(|e| match e {
        TableError::Checksum { .. } => err!(Checksum, "{file}: {e}"),
        _ => err!(Kernel, "{file}: {e}"),
    })?;
    verify_modules(file, image, &regions, &t)?;
    let mut plan = Plan::from_table(&t);
    plan.kernel_end = Some(Kernel::parse(file, image)?.kernel_end);
    Ok(plan)
}

/// Checks that the table's regions are the image's, and recomputes each
/// module's checksum over its used bytes in each class slot (text, rodata,
/// data, bss included: what the kernel checks before it relocates or probes
/// the module, after moving it).
pub fn verify_modules(
    file: &str,
    image: &[u8],
    regions: &PerClass<Area>,
    t: &Table<'_>,
) -> Result<()> {
    let h = t.header();
    for c in Class::ALL {
        let r = regions[c];
        if (h.region_base[c], h.region_size[c]) != (r.addr, r.size) {
            bail!(
                Kernel,
                "{file}: the module table's {} region ({:#x}, {} bytes) is not the image's ({:#x}, {} bytes)",
                c.name(),
                h.region_base[c],
                h.region_size[c],
                r.addr,
                r.size
            );
        }
    }
    let mut bad = Vec::new();
    for i in 0..t.len() {
        let m = t.module(i);
        let name = t.name(&m);
        let mut parts: [&[u8]; 3] = [&[]; 3];
        for c in Class::ALL {
            let (off, size) = (
                u64::from(m.placement.slot_off[c]),
                u64::from(m.placement.size[c]),
            );
            if off + size > regions[c].size {
                bail!(
                    Kernel,
                    "{file}: module `{name}`: its {} bytes ({size} at offset {off:#x}) lie outside the {}-byte region",
                    c.name(),
                    regions[c].size
                );
            }
            let at = (regions[c].file_off + off) as usize;
            parts[c.index()] = &image[at..at + size as usize];
        }
        let computed = module_checksum(parts);
        if computed != m.placement.checksum {
            bad.push(format!(
                "{file}: module `{name}` (#{i}): checksum mismatch: table {:#018x}, image bytes {computed:#018x}",
                m.placement.checksum
            ));
        }
    }
    if !bad.is_empty() {
        bail!(Checksum, "{}", bad.join("\n"));
    }
    Ok(())
}
