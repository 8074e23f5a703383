//! The kernel ELF: its three module regions, the `.modtable` area and the
//! `.kexports` table of symbols modules may link against.

use crate::elf::{self, ElfFile};
use crate::error::Result;
use crate::{bail, err};
use modtable::{Class, PerClass};
use std::collections::HashMap;

/// Section holding each class region, in [`Class`] order.
pub const REGION_SECTIONS: [&str; 3] = [".modules.text", ".modules.rodata", ".modules.data"];
/// Section reserved for the module table.
pub const MODTABLE_SECTION: &str = ".modtable";
/// Section holding the kernel's export table.
pub const KEXPORTS_SECTION: &str = ".kexports";
/// Size of one `.kexports` record.
pub const KEXPORT_SIZE: usize = 64;
/// Size of the name field of a `.kexports` record.
pub const KEXPORT_NAME_LEN: usize = 56;

/// A section of the kernel image the prelinker writes into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area {
    /// Virtual address.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// Offset of its bytes in the file.
    pub file_off: u64,
}

/// What the prelinker needs from the kernel ELF.
#[derive(Debug)]
pub struct Kernel {
    /// The class regions.
    pub regions: PerClass<Area>,
    /// The `.modtable` area.
    pub modtable: Area,
    /// The kernel's exports: name to address.
    pub exports: HashMap<String, u64>,
}

fn area(file: &str, e: &ElfFile<'_>, name: &str) -> Result<Area> {
    let i = e
        .section_by_name(name)
        .ok_or_else(|| err!(Kernel, "{file}: the kernel has no {name} section"))?;
    let s = e.sections[i];
    if s.sh_type != elf::SHT_PROGBITS {
        bail!(
            Kernel,
            "{file}: kernel section {name} must be PROGBITS with its bytes in the file (type {})",
            s.sh_type
        );
    }
    Ok(Area {
        addr: s.addr,
        size: s.size,
        file_off: s.offset,
    })
}

/// Reads the `.kexports` records.
pub fn parse_kexports(file: &str, bytes: &[u8]) -> Result<HashMap<String, u64>> {
    if !bytes.len().is_multiple_of(KEXPORT_SIZE) {
        bail!(
            Kernel,
            "{file}: {KEXPORTS_SECTION} size {} is not a multiple of {KEXPORT_SIZE}",
            bytes.len()
        );
    }
    let mut map = HashMap::with_capacity(bytes.len() / KEXPORT_SIZE);
    for (i, r) in bytes.chunks_exact(KEXPORT_SIZE).enumerate() {
        let raw = &r[..KEXPORT_NAME_LEN];
        let len = raw.iter().position(|&b| b == 0).unwrap_or(KEXPORT_NAME_LEN);
        if len == 0 {
            // An all-zero record is padding.
            continue;
        }
        let name = std::str::from_utf8(&raw[..len]).map_err(|_| {
            err!(
                Kernel,
                "{file}: {KEXPORTS_SECTION} record {i} has a non-UTF-8 name"
            )
        })?;
        let addr = u64::from_le_bytes(r[KEXPORT_NAME_LEN..].try_into().unwrap());
        if map.insert(name.to_string(), addr).is_some() {
            bail!(Kernel, "{file}: {KEXPORTS_SECTION} exports `{name}` twice");
        }
    }
    Ok(map)
}

impl Kernel {
    /// Finds the module regions, the table area and the exports in a kernel ELF.
    pub fn parse(file: &str, data: &[u8]) -> Result<Kernel> {
        let e = ElfFile::parse(data).map_err(|e| e.context(file))?;
        if e.machine != elf::EM_X86_64 || e.e_type != elf::ET_EXEC {
            bail!(
                WrongKind,
                "{file}: {} for {}, expected an x86_64 executable (the kernel)",
                elf::type_name(e.e_type),
                elf::machine_name(e.machine)
            );
        }
        let mut regions = PerClass(
            [Area {
                addr: 0,
                size: 0,
                file_off: 0,
            }; 3],
        );
        for c in Class::ALL {
            regions[c] = area(file, &e, REGION_SECTIONS[c.index()])?;
        }
        let modtable = area(file, &e, MODTABLE_SECTION)?;
        let ki = e.section_by_name(KEXPORTS_SECTION).ok_or_else(|| {
            err!(
                Kernel,
                "{file}: the kernel has no {KEXPORTS_SECTION} section"
            )
        })?;
        let exports = parse_kexports(file, e.section_data(ki))?;
        Ok(Kernel {
            regions,
            modtable,
            exports,
        })
    }

    /// Finds only the `.modtable` area (for reading a prelinked image).
    pub fn modtable_area(file: &str, data: &[u8]) -> Result<Area> {
        let e = ElfFile::parse(data).map_err(|e| e.context(file))?;
        area(file, &e, MODTABLE_SECTION)
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as u64)
}
fn u32_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as u64)
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?).into()
}

/// File ranges of the sections whose contents the link replaces (the class
/// regions and `.modtable`), found from the ELF and section headers alone.
/// `None` if the headers cannot be read that way (the full parse then
/// reports what is wrong).
fn replaced_ranges(f: &std::fs::File, len: u64) -> Option<Vec<(u64, u64)>> {
    use std::os::unix::fs::FileExt;
    let read = |off: u64, n: u64| -> Option<Vec<u8>> {
        if off.checked_add(n)? > len || n > 1 << 24 {
            return None;
        }
        let mut b = vec![0u8; n as usize];
        f.read_exact_at(&mut b, off).ok()?;
        Some(b)
    };
    let h = read(0, 64)?;
    if h[..4] != *b"\x7fELF" || h[4] != 2 {
        return None;
    }
    let (shoff, shentsize, shnum, shstrndx) = (
        u64_at(&h, 0x28)?,
        u16_at(&h, 0x3a)?,
        u16_at(&h, 0x3c)?,
        u16_at(&h, 0x3e)?,
    );
    if shentsize < 64 || shstrndx >= shnum {
        return None;
    }
    let sht = read(shoff, shentsize * shnum)?;
    let sh = |i: u64| sht.get((i * shentsize) as usize..(i * shentsize + 64) as usize);
    let strs = sh(shstrndx)?;
    let names = read(u64_at(strs, 0x18)?, u64_at(strs, 0x20)?)?;
    let wanted = [
        REGION_SECTIONS[0],
        REGION_SECTIONS[1],
        REGION_SECTIONS[2],
        MODTABLE_SECTION,
    ];
    let mut out = Vec::new();
    for i in 0..shnum {
        let s = sh(i)?;
        let name_at = u32_at(s, 0)? as usize;
        let name = names.get(name_at..)?.split(|&b| b == 0).next()?;
        if wanted.iter().any(|w| w.as_bytes() == name) && u32_at(s, 4)? != elf::SHT_NOBITS as u64 {
            let (off, size) = (u64_at(s, 0x18)?, u64_at(s, 0x20)?);
            out.push((off, off.checked_add(size).filter(|&e| e <= len)?));
        }
    }
    Some(out)
}

/// Reads a kernel ELF for linking without reading the contents of its class
/// regions and table area, which the link replaces anyway (they read as
/// zeros; the buffer's untouched pages cost nothing).
pub fn read_kernel(path: &std::path::Path) -> Result<crate::InputFile> {
    use std::os::unix::fs::FileExt;
    let name = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| err!(Io, "{name}: cannot read: {e}"))?;
    let len = f
        .metadata()
        .map_err(|e| err!(Io, "{name}: cannot read: {e}"))?
        .len();
    let Some(mut skip) = replaced_ranges(&f, len) else {
        return crate::InputFile::read(path);
    };
    skip.sort_unstable();
    let mut data = vec![0u8; len as usize];
    let mut at = 0u64;
    for (s, e) in skip.into_iter().chain([(len, len)]) {
        if s > at {
            f.read_exact_at(&mut data[at as usize..s as usize], at)
                .map_err(|e| err!(Io, "{name}: cannot read: {e}"))?;
        }
        at = at.max(e);
    }
    Ok(crate::InputFile { name, data })
}
