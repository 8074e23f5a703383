//! The kernel ELF: its three module regions, the `.modtable` area and the
//! `.kexports` table of symbols modules may link against.

use crate::Map;
use crate::elf::{self, ElfFile};
use crate::error::Result;
use crate::{bail, err};
use modtable::{Class, PerClass};

/// Lowest address of the kernel code model (the top 2 GiB of the address
/// space): modules are built for it, so their sign-extended 32-bit fields
/// reach the kernel and each other only there.
pub const CODE_MODEL_BASE: u64 = 0xffff_ffff_8000_0000;

/// Section holding each class region, in [`Class`] order.
pub const REGION_SECTIONS: [&str; 3] = [".modules.text", ".modules.rodata", ".modules.data"];
/// What an image without the kernel's sections is called in messages.
const IMAGE: &str = "it is not a prelinked kernel image: it";
/// Section reserved for the module table.
pub const MODTABLE_SECTION: &str = ".modtable";
/// Section holding the kernel's export table (`modabi::kexports`).
pub const KEXPORTS_SECTION: &str = modabi::kexports::SECTION;
/// Size of a huge page: each class range starts on one.
pub const HUGE_PAGE: u64 = 2 << 20;
/// Size of one `.kexports` record (`modabi::kexports`, the record's one
/// definition, shared with the kernel).
pub const KEXPORT_SIZE: usize = modabi::kexports::RECORD_SIZE;
/// Size of the name field of a `.kexports` record (then the signature hash
/// and the address, 8 bytes each).
pub const KEXPORT_NAME_LEN: usize = modabi::kexports::NAME_LEN;
/// Offset of the signature hash in a `.kexports` record.
pub const KEXPORT_SIG_AT: usize = modabi::kexports::SIG_AT;
/// Offset of the address in a `.kexports` record.
pub const KEXPORT_ADDR_AT: usize = modabi::kexports::ADDR_AT;

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
    /// The class regions (the module slot sections).
    pub regions: PerClass<Area>,
    /// End of the kernel's own bytes in each class range: the end of the
    /// last allocated section between the range's 2 MiB-aligned start and
    /// the region.
    pub kernel_end: PerClass<u64>,
    /// The `.modtable` area.
    pub modtable: Area,
    /// The kernel's exports: name to address.
    pub exports: Map<String, u64>,
    /// The signature hash each export records (0: unchecked).
    pub export_sigs: Map<String, u64>,
}

/// The section `name` of `file`, which is `what` (the kernel, or a
/// prelinked image) in the message if it has none.
fn area(file: &str, e: &ElfFile<'_>, name: &str, what: &str) -> Result<Area> {
    let i = e
        .section_by_name(name)
        .ok_or_else(|| err!(Kernel, "{file}: {what} has no {name} section"))?;
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

/// Reads the `.kexports` records: name to (address, signature hash).
pub fn parse_kexport_records(file: &str, bytes: &[u8]) -> Result<Map<String, (u64, u64)>> {
    if !bytes.len().is_multiple_of(KEXPORT_SIZE) {
        bail!(
            Kernel,
            "{file}: {KEXPORTS_SECTION} size {} is not a multiple of {KEXPORT_SIZE}",
            bytes.len()
        );
    }
    let mut map = Map::with_capacity_and_hasher(bytes.len() / KEXPORT_SIZE, Default::default());
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
        let sig = u64::from_le_bytes(r[KEXPORT_SIG_AT..KEXPORT_ADDR_AT].try_into().unwrap());
        let addr = u64::from_le_bytes(r[KEXPORT_ADDR_AT..].try_into().unwrap());
        if map.insert(name.to_string(), (addr, sig)).is_some() {
            bail!(Kernel, "{file}: {KEXPORTS_SECTION} exports `{name}` twice");
        }
    }
    Ok(map)
}

/// Reads the `.kexports` records: name to address.
pub fn parse_kexports(file: &str, bytes: &[u8]) -> Result<Map<String, u64>> {
    Ok(parse_kexport_records(file, bytes)?
        .into_iter()
        .map(|(n, (a, _))| (n, a))
        .collect())
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
            regions[c] = area(file, &e, REGION_SECTIONS[c.index()], "the kernel")?;
        }
        let kernel_end = PerClass(Class::ALL.map(|c| {
            let r = regions[c];
            let start = r.addr & !(HUGE_PAGE - 1);
            e.sections
                .iter()
                .filter(|s| s.flags & elf::SHF_ALLOC != 0 && s.addr >= start && s.addr < r.addr)
                .map(|s| s.addr + s.size)
                .fold(start, u64::max)
        }));
        let modtable = area(file, &e, MODTABLE_SECTION, "the kernel")?;
        let ki = e.section_by_name(KEXPORTS_SECTION).ok_or_else(|| {
            err!(
                Kernel,
                "{file}: the kernel has no {KEXPORTS_SECTION} section"
            )
        })?;
        let records = parse_kexport_records(file, e.section_data(ki))?;
        let export_sigs = records.iter().map(|(n, &(_, h))| (n.clone(), h)).collect();
        let exports = records.into_iter().map(|(n, (a, _))| (n, a)).collect();
        Ok(Kernel {
            regions,
            kernel_end,
            modtable,
            exports,
            export_sigs,
        })
    }

    /// Finds only the `.modtable` area (for reading a prelinked image).
    pub fn modtable_area(file: &str, data: &[u8]) -> Result<Area> {
        let e = ElfFile::parse(data).map_err(|e| e.context(file))?;
        area(file, &e, MODTABLE_SECTION, IMAGE)
    }

    /// Finds the class regions and the `.modtable` area of a prelinked
    /// image (without its exports), checking that they lie inside the file.
    pub fn image_areas(file: &str, data: &[u8]) -> Result<(PerClass<Area>, Area)> {
        let e = ElfFile::parse(data).map_err(|e| e.context(file))?;
        let get = |name| -> Result<Area> {
            let a = area(file, &e, name, IMAGE)?;
            if a.file_off
                .checked_add(a.size)
                .is_none_or(|end| end > data.len() as u64)
            {
                bail!(
                    Kernel,
                    "{file}: section {name} lies past the end of the file (truncated?)"
                );
            }
            Ok(a)
        };
        let regions = PerClass([
            get(REGION_SECTIONS[0])?,
            get(REGION_SECTIONS[1])?,
            get(REGION_SECTIONS[2])?,
        ]);
        Ok((regions, get(MODTABLE_SECTION)?))
    }
}

/// File ranges of the sections whose contents the link replaces (the class
/// regions and `.modtable`), from the headers alone; `None` if they cannot
/// be read that way (the full parse then reports what is wrong).
fn replaced_ranges(f: &std::fs::File, len: u64) -> Option<Vec<(u64, u64)>> {
    use crate::sparse;
    let (shdrs, shstrndx) = sparse::headers(f, len)?;
    let st = &shdrs[shstrndx];
    let names = sparse::read_at(f, len, st.off, st.size)?;
    let wanted = [
        REGION_SECTIONS[0],
        REGION_SECTIONS[1],
        REGION_SECTIONS[2],
        MODTABLE_SECTION,
    ];
    let mut out = Vec::new();
    for s in &shdrs {
        let name = names.get(s.name as usize..)?.split(|&b| b == 0).next()?;
        if s.typ != elf::SHT_NOBITS && wanted.iter().any(|w| w.as_bytes() == name) {
            out.push((s.off, s.off + s.size));
        }
    }
    out.sort_unstable();
    Some(out)
}

/// The byte ranges of the kernel ELF at `path` that [`read_kernel`] reads
/// (everything but the class regions and the table area), sorted.
pub fn kernel_read_ranges(path: &std::path::Path) -> Result<Vec<(u64, u64)>> {
    let name = path.display();
    let io = |e: std::io::Error| err!(Io, "{name}: cannot read: {e}");
    let f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    Ok(match replaced_ranges(&f, len) {
        Some(skip) => crate::sparse::complement(len, &skip),
        None => vec![(0, len)],
    })
}

/// Reads a kernel ELF for linking without reading the contents of its class
/// regions and table area, which the link replaces anyway (they read as
/// zeros). The kernel must be a regular file of at most
/// [`crate::input::MAX_INPUT_SIZE`] bytes that starts as an ELF file.
pub fn read_kernel(path: &std::path::Path) -> Result<crate::InputFile> {
    let name = path.display().to_string();
    let io = |e: std::io::Error| err!(Io, "{name}: cannot read: {e}");
    let (f, len) = crate::input::open_input(path, &name)?;
    let mut magic = [0u8; 4];
    if len < 4 || {
        use std::os::unix::fs::FileExt;
        f.read_exact_at(&mut magic, 0).map_err(io)?;
        magic != object::elf::ELFMAG
    } {
        bail!(Malformed, "{name}: not an ELF file (bad magic)");
    }
    let Some(skip) = replaced_ranges(&f, len) else {
        return crate::InputFile::read(path);
    };
    let data =
        crate::sparse::read_ranges(&f, len, &crate::sparse::complement(len, &skip)).map_err(io)?;
    Ok(crate::InputFile { name, data })
}
