//! Module inputs: relocatable x86_64 objects (or the one module member of a
//! staticlib archive), their `.modinfo`, and which class each section goes to.

use crate::elf::{self, ElfFile, Sym};
use crate::error::{Error, Result};
use crate::{bail, err};
use modtable::Class;
use modtable::modinfo::{self, ABI_VERSION, MODINFO_SECTION, PROBE_SYMBOL, SELFTEST_SYMBOL};
use std::collections::HashMap;

/// An input file read into memory.
#[derive(Clone, Debug)]
pub struct InputFile {
    /// The name used in messages (the path as given).
    pub name: String,
    /// The file bytes.
    pub data: Vec<u8>,
}

impl InputFile {
    /// Reads a file.
    pub fn read(path: &std::path::Path) -> Result<InputFile> {
        let name = path.display().to_string();
        let data = std::fs::read(path).map_err(|e| err!(Io, "{name}: cannot read: {e}"))?;
        Ok(InputFile { name, data })
    }
}

/// Reads the parts of the module object at `path` that the link uses into
/// `buf`, which is resized to the file's length; `name` is used in messages.
/// Bytes outside those parts are left as they were (a buffer reused from an
/// earlier file keeps that file's bytes there), so `buf` must only be parsed
/// as a module object. A file that is not an ELF object with readable
/// headers (an archive, or a malformed file) is read whole.
pub fn read_module(path: &std::path::Path, name: &str, buf: &mut Vec<u8>) -> Result<()> {
    use std::io::Read;
    let io = |e: std::io::Error| err!(Io, "{name}: cannot read: {e}");
    let mut f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    buf.resize(len as usize, 0);
    // Debug builds poison what is not read, so that a parser reading outside
    // the parts read fails the tests instead of seeing an earlier file's bytes.
    if cfg!(debug_assertions) {
        buf.fill(0xa5);
    }
    if !crate::sparse::read_module_parts(&f, buf).map_err(io)? {
        buf.clear();
        f.read_to_end(buf).map_err(io)?;
    }
    Ok(())
}

/// The byte ranges of the module object at `path` that a link needs (its
/// ELF header, section table and names, allocated sections, symbol and
/// string tables, `.modinfo`, and the relocations of allocated sections),
/// sorted and merged where less than 4 KiB apart, as [`read_module`] reads
/// them at least: for measuring the I/O a link cannot avoid. A file that
/// [`read_module`] reads whole gives the whole file.
pub fn module_needed_ranges(path: &std::path::Path) -> Result<Vec<(u64, u64)>> {
    let name = path.display();
    let io = |e: std::io::Error| err!(Io, "{name}: cannot read: {e}");
    let f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    Ok(crate::sparse::module_needed_ranges(&f, len).unwrap_or(vec![(0, len)]))
}

/// The metadata of a module from its `.modinfo` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModInfo {
    /// The module's name.
    pub name: String,
    /// Modules it depends on, in declaration order, without repeats.
    pub depends: Vec<String>,
    /// Symbols it exports to later modules.
    pub exports: Vec<String>,
}

/// Parses the entries of a `.modinfo` section.
pub fn parse_modinfo(file: &str, bytes: &[u8]) -> Result<ModInfo> {
    let mut info = ModInfo::default();
    let (mut abi, mut name) = (None, None);
    for e in modinfo::entries(bytes) {
        let (k, v) = e.map_err(|e| err!(Modinfo, "{file}: {e}"))?;
        match k {
            "abi" => {
                if abi.is_some() {
                    bail!(Modinfo, "{file}: .modinfo has more than one abi= entry");
                }
                abi = Some(v)
            }
            "name" => {
                if name.is_some() {
                    bail!(Modinfo, "{file}: .modinfo has more than one name= entry");
                }
                name = Some(v)
            }
            "depends" if !info.depends.iter().any(|d| d == v) => info.depends.push(v.to_string()),
            "depends" => {}
            "export" => info.exports.push(v.to_string()),
            // Unknown keys are informational (license, author, ...).
            _ => {}
        }
    }
    match abi {
        None => bail!(Modinfo, "{file}: .modinfo has no abi= entry"),
        Some(v) if v.parse::<u32>().ok() != Some(ABI_VERSION) => bail!(
            Modinfo,
            "{file}: module ABI version {v} does not match the prelinker's ABI version {ABI_VERSION}"
        ),
        _ => {}
    }
    match name {
        None | Some("") => bail!(Modinfo, "{file}: .modinfo has no name= entry"),
        Some(n) => info.name = n.to_string(),
    }
    Ok(info)
}

fn has_modinfo(data: &[u8]) -> bool {
    ElfFile::parse(data).is_ok_and(|e| e.section_by_name(MODINFO_SECTION).is_some())
}

/// If `data` is an `ar` archive, returns its one member with a `.modinfo`
/// section; otherwise returns `data` unchanged.
pub fn module_object_bytes<'a>(file: &str, data: &'a [u8]) -> Result<&'a [u8]> {
    if !data.starts_with(b"!<arch>\n") {
        return Ok(data);
    }
    let ar = object::read::archive::ArchiveFile::parse(data)
        .map_err(|e| err!(Malformed, "{file}: malformed archive: {e}"))?;
    let mut found: Vec<(String, &[u8])> = Vec::new();
    for m in ar.members() {
        let m = m.map_err(|e| err!(Malformed, "{file}: malformed archive member: {e}"))?;
        let bytes = m
            .data(data)
            .map_err(|e| err!(Malformed, "{file}: malformed archive member: {e}"))?;
        if has_modinfo(bytes) {
            found.push((String::from_utf8_lossy(m.name()).into_owned(), bytes));
        }
    }
    match found.len() {
        0 => bail!(
            Archive,
            "{file}: no archive member has a {MODINFO_SECTION} section"
        ),
        1 => Ok(found[0].1),
        _ => bail!(
            Archive,
            "{file}: several archive members have a {MODINFO_SECTION} section: {}",
            found
                .iter()
                .map(|f| f.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Where a section goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Not placed (not `SHF_ALLOC`, or `.modinfo`).
    None,
    /// Placed in a class; `nobits` sections go after all others of the class.
    Class {
        /// The class.
        class: Class,
        /// Whether the section is `SHT_NOBITS` (no file bytes, zero-filled).
        nobits: bool,
    },
}

/// Decides the class of a section from its flags and name.
pub fn classify(s: &elf::Section<'_>) -> Placement {
    if s.flags & elf::SHF_ALLOC == 0 || s.name_is(MODINFO_SECTION) {
        return Placement::None;
    }
    let class = if s.flags & elf::SHF_EXECINSTR != 0 {
        Class::Text
    } else if s.name_starts_with(".data.rel.ro") {
        Class::Rodata
    } else if s.flags & elf::SHF_WRITE != 0 {
        Class::Data
    } else {
        Class::Rodata
    };
    Placement::Class {
        class,
        nobits: s.sh_type == elf::SHT_NOBITS,
    }
}

/// A parsed module object.
#[derive(Debug)]
pub struct ModuleObject<'a> {
    /// File name for messages.
    pub file: String,
    /// The ELF file.
    pub elf: ElfFile<'a>,
    /// Its metadata.
    pub info: ModInfo,
    /// Placement of each section, by section index.
    pub placement: Vec<Placement>,
    /// The symbol table.
    pub symbols: Vec<Sym<'a>>,
    /// `(rela section, target section)` for every `RELA` section whose
    /// target is placed.
    pub rela_sections: Vec<(usize, usize)>,
    /// Global (or weak) defined symbols by name.
    pub globals: HashMap<&'a [u8], u32>,
    /// Symbol index of the probe.
    pub probe: u32,
    /// Symbol index of the self-test, if any.
    pub selftest: Option<u32>,
}

impl<'a> ModuleObject<'a> {
    /// Parses a module object (not an archive: see [`module_object_bytes`]).
    pub fn parse(file: &str, data: &'a [u8]) -> Result<ModuleObject<'a>> {
        let ctx = |e: Error| e.context(file);
        let elf = ElfFile::parse(data).map_err(ctx)?;
        if elf.machine != elf::EM_X86_64 {
            bail!(
                WrongKind,
                "{file}: ELF for {}, expected x86_64",
                elf::machine_name(elf.machine)
            );
        }
        if elf.e_type != elf::ET_REL {
            bail!(
                WrongKind,
                "{file}: {}, expected a relocatable object (ET_REL)",
                elf::type_name(elf.e_type)
            );
        }
        let modinfo_idx = elf.section_by_name(MODINFO_SECTION).ok_or_else(|| {
            err!(
                Modinfo,
                "{file}: no {MODINFO_SECTION} section (not a module object?)"
            )
        })?;
        let info = parse_modinfo(file, elf.section_data(modinfo_idx))?;
        let mut placement = Vec::with_capacity(elf.sections.len());
        let mut rela_sections = Vec::new();
        for (i, s) in elf.sections.iter().enumerate() {
            let p = if i == 0 { Placement::None } else { classify(s) };
            if p != Placement::None && s.flags & elf::SHF_TLS != 0 {
                bail!(
                    Unsupported,
                    "{file}: section {} is thread-local (SHF_TLS); modules cannot have TLS",
                    s.name()
                );
            }
            if p != Placement::None && !s.align.is_power_of_two() {
                bail!(
                    Malformed,
                    "{file}: section {} has alignment {} (not a power of two)",
                    s.name(),
                    s.align
                );
            }
            if p != Placement::None && s.size > u32::MAX as u64 {
                bail!(
                    Unsupported,
                    "{file}: section {} is too large ({:#x} bytes)",
                    s.name(),
                    s.size
                );
            }
            placement.push(p);
            if s.sh_type == elf::SHT_REL && s.flags & elf::SHF_ALLOC == 0 {
                // REL (no addend) sections are not used on x86_64; reject them
                // if they would apply to a placed section.
                if elf
                    .sections
                    .get(s.info as usize)
                    .is_some_and(|t| classify(t) != Placement::None)
                {
                    bail!(
                        Unsupported,
                        "{file}: section {} uses REL relocations; only RELA is supported",
                        s.name()
                    );
                }
            }
        }
        for (i, s) in elf.sections.iter().enumerate() {
            if s.sh_type == elf::SHT_RELA {
                let t = s.info as usize;
                if t >= placement.len() {
                    bail!(
                        Malformed,
                        "{file}: relocation section {} applies to section index {t}, out of range",
                        s.name()
                    );
                }
                if placement[t] != Placement::None {
                    rela_sections.push((i, t));
                }
            }
        }
        let symbols = elf.symbols().map_err(ctx)?;
        let mut globals = HashMap::new();
        for (i, s) in symbols.iter().enumerate() {
            if s.bind != elf::STB_LOCAL && s.shndx != elf::SHN_UNDEF as u32 {
                let name = s.name();
                if !name.is_empty() {
                    globals.insert(name, i as u32);
                }
            }
        }
        let entry = |name: &str| -> Result<Option<u32>> {
            let Some(&i) = globals.get(name.as_bytes()) else {
                return Ok(None);
            };
            let s = &symbols[i as usize];
            match placement.get(s.shndx as usize) {
                Some(Placement::Class {
                    class: Class::Text, ..
                }) => Ok(Some(i)),
                _ => bail!(
                    Unsupported,
                    "{file}: entry symbol {name} is not defined in a text section"
                ),
            }
        };
        let probe = entry(PROBE_SYMBOL)?.ok_or_else(|| {
            err!(
                Modinfo,
                "{file}: module `{}` has no global {PROBE_SYMBOL} symbol",
                info.name
            )
        })?;
        let selftest = entry(SELFTEST_SYMBOL)?;
        for e in &info.exports {
            let ok = globals.get(e.as_bytes()).is_some_and(|&i| {
                matches!(
                    placement.get(symbols[i as usize].shndx as usize),
                    Some(Placement::Class { .. })
                )
            });
            if !ok {
                bail!(
                    BadExport,
                    "{file}: module `{}` exports `{e}`, which it does not define as a global symbol in a placed section",
                    info.name
                );
            }
        }
        Ok(ModuleObject {
            file: file.to_string(),
            elf,
            info,
            placement,
            symbols,
            rela_sections,
            globals,
            probe,
            selftest,
        })
    }

    /// Name of a symbol for messages (section symbols get their section's name).
    pub fn symbol_name(&self, index: u32) -> String {
        match self.symbols.get(index as usize) {
            Some(s) if s.typ == elf::STT_SECTION || s.name().is_empty() => {
                let n = self
                    .elf
                    .sections
                    .get(s.shndx as usize)
                    .map_or("?", |x| x.name());
                format!("section {n}")
            }
            Some(s) => String::from_utf8_lossy(s.name()).into_owned(),
            None => format!("#{index}"),
        }
    }
}
