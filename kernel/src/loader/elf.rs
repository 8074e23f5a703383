//! Reading a module object (x86_64 ELF64 relocatable) with the `xmas-elf`
//! crate. That crate slices and asserts on what the headers say, so every
//! offset, size, alignment and name is checked here first: a damaged object
//! is refused with a named [`LoadError`], never a panic.
//!
//! What comes out: each section's class (the prelinker's rules: executable
//! is text, `.data.rel.ro*` and other read-only data are rodata, writable is
//! data; non-allocated sections and `.modinfo` are not placed), the symbol
//! table, the `RELA` tables of placed sections, the `.modinfo` entries and
//! the entry symbols.

use super::error::LoadError;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use modabi::modinfo::{self, ABI_VERSION, MODINFO_SECTION, PROBE_SYMBOL, SELFTEST_SYMBOL};
use modtable::Class;
use xmas_elf::ElfFile;
use xmas_elf::header::{Machine, Type};
use xmas_elf::sections::{Rela, SectionData, SectionHeader, ShType};
use xmas_elf::symbol_table::{Binding, Entry, Entry64};

const SHF_WRITE: u64 = 0x1;
const SHF_ALLOC: u64 = 0x2;
const SHF_EXECINSTR: u64 = 0x4;
const SHF_TLS: u64 = 0x400;
/// Symbol section index: undefined.
pub const SHN_UNDEF: u16 = 0;
/// Symbol section index: absolute value.
pub const SHN_ABS: u16 = 0xfff1;
/// Symbol section index: COMMON.
const SHN_COMMON: u16 = 0xfff2;
const SHN_LORESERVE: u16 = 0xff00;
/// Symbol type: thread-local.
const STT_TLS: u8 = 6;
/// Symbol type: an indirect function (resolved by a run-time resolver).
const STT_GNU_IFUNC: u8 = 10;
const SHDR_SIZE: u64 = 64;
const SYM_SIZE: u64 = 24;
const RELA_SIZE: u64 = 24;

/// One section of the object.
#[derive(Clone, Copy, Debug)]
pub struct Section<'a> {
    /// Its name.
    pub name: &'a str,
    /// Class it goes to and whether it is `NOBITS`, if placed.
    pub placed: Option<(Class, bool)>,
    /// Size in bytes.
    pub size: u64,
    /// Alignment (a power of two, at least 1).
    pub align: u64,
    /// File bytes (empty for `NOBITS`).
    pub data: &'a [u8],
}

/// A symbol, decoded.
#[derive(Clone, Copy, Debug)]
pub struct Symbol<'a> {
    /// Name (empty for section symbols).
    pub name: &'a str,
    /// Section index ([`SHN_UNDEF`], [`SHN_ABS`], ...).
    pub shndx: u16,
    /// Value (offset inside its section for defined symbols).
    pub value: u64,
    /// Global or weak (not local).
    pub global: bool,
    /// Weak.
    pub weak: bool,
}

/// `.modinfo`, decoded.
#[derive(Clone, Debug, Default)]
pub struct ModInfo<'a> {
    /// Module name.
    pub name: &'a str,
    /// Modules it depends on.
    pub depends: Vec<&'a str>,
    /// Symbols it exports.
    pub exports: Vec<&'a str>,
    /// `(name, signature)` of the functions it imports (`import_sig=`).
    pub import_sigs: Vec<(&'a str, &'a str)>,
    /// `(name, signature)` of the functions it exports (`export_sig=`).
    pub export_sigs: Vec<(&'a str, &'a str)>,
}

impl<'a> ModInfo<'a> {
    /// The signature the object records for import `name`.
    pub fn import_sig(&self, name: &str) -> Option<&'a str> {
        self.import_sigs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, s)| s)
    }

    /// The signature the object records for its export `name`.
    pub fn export_sig(&self, name: &str) -> Option<&'a str> {
        self.export_sigs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, s)| s)
    }
}

/// A parsed, checked module object.
pub struct Object<'a> {
    /// The initrd entry it came from (for messages).
    pub file: &'a str,
    /// Sections by index.
    pub sections: Vec<Section<'a>>,
    /// Symbols by index.
    pub symbols: Vec<Symbol<'a>>,
    /// `(placed section index, its relocations)`.
    pub relas: Vec<(usize, &'a [Rela<u64>])>,
    /// Metadata.
    pub info: ModInfo<'a>,
    /// Symbol index of the probe.
    pub probe: usize,
    /// Symbol index of the self-test, if any.
    pub selftest: Option<usize>,
}

fn machine_name(m: u16) -> String {
    match m {
        3 => "i386 (EM_386)".into(),
        40 => "ARM (EM_ARM)".into(),
        183 => "AArch64 (EM_AARCH64)".into(),
        243 => "RISC-V (EM_RISCV)".into(),
        _ => format!("machine {m}"),
    }
}

/// The NUL-terminated name at `off` of string table `tab`.
fn name_at<'a>(file: &str, tab: &'a [u8], off: u32, what: &str) -> Result<&'a str, LoadError> {
    let malformed = |why: &str| LoadError::Malformed {
        object: file.to_string(),
        what: format!("{what}: name offset {off:#x} {why}"),
    };
    let rest = tab
        .get(off as usize..)
        .ok_or_else(|| malformed("lies outside its string table"))?;
    let len = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| malformed("has no terminating NUL"))?;
    core::str::from_utf8(&rest[..len]).map_err(|_| malformed("is not UTF-8"))
}

/// Bounds of `[off, off + size)` inside a file of `len` bytes.
fn inside(off: u64, size: u64, len: usize) -> bool {
    off.checked_add(size).is_some_and(|end| end <= len as u64)
}

/// Checks the ELF header before `xmas-elf` reads it: magic, machine,
/// class, byte order, alignment of the buffer.
fn check_ident(file: &str, data: &[u8]) -> Result<(), LoadError> {
    let object = || file.to_string();
    if data.len() < 4 || data[..4] != *b"\x7fELF" {
        return Err(LoadError::NotElf { object: object() });
    }
    if data.len() < 64 {
        return Err(LoadError::Truncated {
            object: object(),
            what: format!(
                "the {}-byte file is shorter than an ELF64 header (64 bytes)",
                data.len()
            ),
        });
    }
    let machine = u16::from_le_bytes([data[18], data[19]]);
    if machine != 62 {
        return Err(LoadError::WrongMachine {
            object: object(),
            machine: machine_name(machine),
        });
    }
    if data[4] != 2 || data[5] != 1 {
        return Err(LoadError::Malformed {
            object: object(),
            what: "not a 64-bit little-endian ELF file".into(),
        });
    }
    if !(data.as_ptr() as usize).is_multiple_of(8) {
        return Err(LoadError::Malformed {
            object: object(),
            what: "object bytes are not 8-byte aligned".into(),
        });
    }
    Ok(())
}

/// How symbol `i` is named in messages: its name, or, for a section
/// symbol (which has none), its section's.
pub fn shown_symbol(name: &str, shndx: u16, sections: &[Section<'_>], i: usize) -> String {
    if !name.is_empty() {
        name.to_string()
    } else if let Some(s) = sections.get(shndx as usize) {
        format!("section {}", s.name)
    } else {
        format!("#{i}")
    }
}

/// Parses and checks the module object `data` (initrd entry `file`).
pub fn parse<'a>(file: &'a str, data: &'a [u8]) -> Result<Object<'a>, LoadError> {
    check_ident(file, data)?;
    let object = || file.to_string();
    let malformed = |what: String| LoadError::Malformed {
        object: object(),
        what,
    };
    let truncated = |what: String| LoadError::Truncated {
        object: object(),
        what,
    };
    let elf = ElfFile::new(data).map_err(|e| malformed(e.into()))?;
    let pt2 = &elf.header.pt2;
    if !matches!(pt2.machine().as_machine(), Machine::X86_64) {
        return Err(LoadError::WrongMachine {
            object: object(),
            machine: machine_name(u16::from_le_bytes([data[18], data[19]])),
        });
    }
    match pt2.type_().as_type() {
        Type::Relocatable => {}
        t => {
            return Err(LoadError::NotRelocatable {
                object: object(),
                kind: match t {
                    Type::Executable => "an executable (ET_EXEC)",
                    Type::SharedObject => "a shared object or PIE (ET_DYN)",
                    Type::Core => "a core file (ET_CORE)",
                    _ => "an ELF file of another type",
                },
            });
        }
    }
    let (shoff, shnum) = (pt2.sh_offset(), pt2.sh_count());
    if pt2.sh_entry_size() as u64 != SHDR_SIZE || shnum == 0 || shnum >= SHN_LORESERVE {
        return Err(malformed(format!(
            "{shnum} section headers of {} bytes",
            pt2.sh_entry_size()
        )));
    }
    if !inside(shoff, shnum as u64 * SHDR_SIZE, data.len()) {
        return Err(truncated(format!(
            "the {shnum} section headers at offset {shoff:#x} end past the {}-byte file",
            data.len()
        )));
    }
    if !shoff.is_multiple_of(8) {
        return Err(malformed(format!(
            "section headers at unaligned offset {shoff:#x}"
        )));
    }
    // Every header is inside the file now, so `section_header` cannot fail.
    let headers: Vec<SectionHeader<'a>> = (0..shnum)
        .map(|i| elf.section_header(i).map_err(|e| malformed(e.into())))
        .collect::<Result<_, _>>()?;
    let mut types = Vec::with_capacity(headers.len());
    for (i, h) in headers.iter().enumerate() {
        let t = h
            .get_type()
            .map_err(|e| malformed(format!("section {i}: {e}")))?;
        if i > 0
            && !matches!(t, ShType::NoBits | ShType::Null)
            && !inside(h.offset(), h.size(), data.len())
        {
            return Err(truncated(format!(
                "section {i} (offset {:#x}, {} bytes) ends past the {}-byte file",
                h.offset(),
                h.size(),
                data.len()
            )));
        }
        types.push(t);
    }
    if types[0] != ShType::Null {
        return Err(malformed(format!(
            "section header 0 is not the null section ({:?})",
            types[0]
        )));
    }
    let raw = |i: usize| -> &'a [u8] {
        match types[i] {
            ShType::NoBits | ShType::Null => &[],
            // Checked inside the file above.
            _ if i > 0 => headers[i].raw_data(&elf),
            _ => &[],
        }
    };
    let shstrndx = pt2.sh_str_index() as usize;
    if shstrndx == 0 || shstrndx >= headers.len() || types[shstrndx] != ShType::StrTab {
        return Err(malformed(format!(
            "section name table index {shstrndx} is not a string table"
        )));
    }
    let shstr = raw(shstrndx);
    let mut sections = Vec::with_capacity(headers.len());
    for (i, h) in headers.iter().enumerate() {
        let name = if i == 0 {
            ""
        } else {
            name_at(file, shstr, h.name(), &format!("section {i}"))?
        };
        let align = h.align().max(1);
        let alloc = i > 0 && h.flags() & SHF_ALLOC != 0 && name != MODINFO_SECTION;
        let placed = alloc.then(|| {
            let class = if h.flags() & SHF_EXECINSTR != 0 {
                Class::Text
            } else if name.starts_with(".data.rel.ro") {
                Class::Rodata
            } else if h.flags() & SHF_WRITE != 0 {
                Class::Data
            } else {
                Class::Rodata
            };
            (class, types[i] == ShType::NoBits)
        });
        if placed.is_some() {
            if !matches!(types[i], ShType::ProgBits | ShType::NoBits) {
                return Err(LoadError::Unsupported {
                    object: object(),
                    what: format!(
                        "section {name} is allocated but of type {:?}; only PROGBITS and NOBITS sections are loaded",
                        types[i]
                    ),
                });
            }
            if h.flags() & SHF_TLS != 0 {
                return Err(LoadError::Unsupported {
                    object: object(),
                    what: format!("section {name} is thread-local"),
                });
            }
            if !align.is_power_of_two() || align > 1 << 21 {
                return Err(malformed(format!("section {name} has alignment {align}")));
            }
            if h.size() > u32::MAX as u64 {
                return Err(malformed(format!("section {name} is too large")));
            }
        }
        sections.push(Section {
            name,
            placed,
            size: h.size(),
            align,
            data: raw(i),
        });
    }
    // The symbol table.
    let symtabs: Vec<usize> = (0..headers.len())
        .filter(|&i| types[i] == ShType::SymTab)
        .collect();
    let [symtab] = symtabs[..] else {
        return Err(malformed(format!(
            "{} symbol tables, expected one",
            symtabs.len()
        )));
    };
    let sh = &headers[symtab];
    let strtab_index = sh.link() as usize;
    if !(sh.entry_size() as u64 == SYM_SIZE
        && sh.size().is_multiple_of(SYM_SIZE)
        && sh.offset().is_multiple_of(8))
    {
        return Err(malformed(
            "symbol table entries are not 24 aligned bytes".into(),
        ));
    }
    if strtab_index == 0 || strtab_index >= headers.len() || types[strtab_index] != ShType::StrTab {
        return Err(malformed(format!(
            "symbol table links section {strtab_index}, not a string table"
        )));
    }
    let strtab = raw(strtab_index);
    let entries: &'a [Entry64] = match sh.get_data(&elf) {
        Ok(SectionData::SymbolTable64(e)) => e,
        _ => return Err(malformed("unreadable symbol table".into())),
    };
    // sh_info is one past the last local symbol: locals first (the null
    // symbol, index 0, among them), then the others.
    let first_global = sh.info() as usize;
    if !entries.is_empty() && (first_global == 0 || first_global > entries.len()) {
        return Err(malformed(format!(
            "symbol table gives sh_info {first_global} as its first non-local symbol, but has {} symbols",
            entries.len()
        )));
    }
    let mut symbols = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let name = if e.name() == 0 {
            ""
        } else {
            name_at(file, strtab, e.name(), &format!("symbol {i}"))?
        };
        // STB_LOCAL is binding 0, the high nibble of st_info.
        let local = e.info() >> 4 == 0;
        if local != (i < first_global) {
            return Err(malformed(format!(
                "symbol {i}{} is {}, but the symbol table's sh_info ({first_global}) puts the local symbols before index {first_global}",
                if name.is_empty() {
                    String::new()
                } else {
                    format!(" `{name}`")
                },
                if local { "local" } else { "not local" },
            )));
        }
        let binding = e.get_binding().unwrap_or(Binding::Local);
        let shndx = e.shndx();
        let shown = |name: &str| shown_symbol(name, shndx, &sections, i);
        let refused = match e.info() & 0xf {
            _ if shndx == SHN_COMMON => Some("is COMMON (build with -fno-common)"),
            STT_TLS => Some("is thread-local (STT_TLS)"),
            STT_GNU_IFUNC => Some("is an indirect function (STT_GNU_IFUNC)"),
            _ => None,
        };
        if let Some(why) = refused {
            return Err(LoadError::Unsupported {
                object: object(),
                what: format!("symbol `{}` {why}", shown(name)),
            });
        }
        if shndx == 0xffff {
            return Err(LoadError::Unsupported {
                object: object(),
                what: format!("symbol `{}` uses an extended section index", shown(name)),
            });
        }
        if shndx != SHN_UNDEF && shndx < SHN_LORESERVE && shndx as usize >= sections.len() {
            return Err(malformed(format!(
                "symbol `{}` (#{i}) is in section {shndx}, out of range",
                shown(name)
            )));
        }
        if shndx != SHN_UNDEF
            && let Some(sec) = sections.get(shndx as usize)
            && sec.placed.is_some()
            && e.value() > sec.size
        {
            return Err(malformed(format!(
                "symbol `{}` has value {:#x}, past the end of its section {} ({} bytes)",
                shown(name),
                e.value(),
                sec.name,
                sec.size
            )));
        }
        symbols.push(Symbol {
            name,
            shndx,
            value: e.value(),
            global: !matches!(binding, Binding::Local),
            weak: matches!(binding, Binding::Weak),
        });
    }
    // Relocation tables of placed sections.
    let mut relas = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let target = h.info() as usize;
        if types[i] == ShType::Rela {
            if target == 0 || target >= sections.len() {
                return Err(malformed(format!(
                    "relocation section {} applies to section {target}, out of range",
                    sections[i].name
                )));
            }
            // The compiler names it after its section: one that says
            // otherwise has a damaged sh_info, and its relocations would be
            // dropped (or applied elsewhere) without a word.
            if let Some(named) = sections[i].name.strip_prefix(".rela")
                && named != sections[target].name
            {
                return Err(malformed(format!(
                    "relocation section {} applies to section {target} ({}), not {named}",
                    sections[i].name, sections[target].name
                )));
            }
        }
        let applies_to_placed = sections.get(target).is_some_and(|s| s.placed.is_some());
        match types[i] {
            ShType::Rel if applies_to_placed => {
                return Err(LoadError::Unsupported {
                    object: object(),
                    what: format!(
                        "section {} uses REL relocations (only RELA)",
                        sections[i].name
                    ),
                });
            }
            ShType::Rela if applies_to_placed => {
                if !(h.entry_size() as u64 == RELA_SIZE
                    && h.size().is_multiple_of(RELA_SIZE)
                    && h.offset().is_multiple_of(8))
                    || h.link() as usize != symtab
                {
                    return Err(malformed(format!(
                        "relocation section {} is not 24-byte entries against the symbol table",
                        sections[i].name
                    )));
                }
                match h.get_data(&elf) {
                    Ok(SectionData::Rela64(r)) => relas.push((target, r)),
                    _ => {
                        return Err(malformed(format!(
                            "unreadable relocation section {}",
                            sections[i].name
                        )));
                    }
                }
            }
            _ => {}
        }
    }
    // Every relocation of a placed section names a symbol there is.
    for &(t, rs) in &relas {
        for r in rs {
            let sym = r.get_symbol_table_index() as usize;
            if r.get_type() != 0 && (sym == 0 || sym >= symbols.len()) {
                return Err(malformed(format!(
                    "{} at section {} offset {:#x} refers to {}",
                    reloc_name(r.get_type()),
                    sections[t].name,
                    r.get_offset(),
                    if sym == 0 {
                        "the null symbol (index 0)".to_string()
                    } else {
                        format!("symbol {sym}, out of range ({} symbols)", symbols.len())
                    }
                )));
            }
        }
    }
    let info = parse_modinfo(file, &sections)?;
    let entry = |name: &str| -> Result<Option<usize>, LoadError> {
        let Some(i) = symbols
            .iter()
            .position(|s| s.global && s.shndx != SHN_UNDEF && s.name == name)
        else {
            return Ok(None);
        };
        let s = &symbols[i];
        match sections
            .get(s.shndx as usize)
            .filter(|x| matches!(x.placed, Some((Class::Text, _))))
        {
            Some(x) if s.value >= x.size => Err(malformed(format!(
                "entry symbol {name} is at offset {:#x} of section {}, which has only {} bytes",
                s.value, x.name, x.size
            ))),
            Some(_) => Ok(Some(i)),
            _ => Err(LoadError::Modinfo {
                object: object(),
                what: format!("entry symbol {name} is not in a text section"),
            }),
        }
    };
    let probe = entry(PROBE_SYMBOL)?.ok_or_else(|| LoadError::Modinfo {
        object: object(),
        what: format!("module {} has no global {PROBE_SYMBOL}", info.name),
    })?;
    let selftest = entry(SELFTEST_SYMBOL)?;
    Ok(Object {
        file,
        sections,
        symbols,
        relas,
        info,
        probe,
        selftest,
    })
}

fn parse_modinfo<'a>(file: &str, sections: &[Section<'a>]) -> Result<ModInfo<'a>, LoadError> {
    let err = |what: String| LoadError::Modinfo {
        object: file.to_string(),
        what,
    };
    // The module API emits several `.modinfo` sections: the module's
    // entries, and one per recorded signature.
    let parts: Vec<(usize, &Section<'a>)> = sections
        .iter()
        .enumerate()
        .filter(|(_, s)| s.name == MODINFO_SECTION)
        .collect();
    if parts.is_empty() {
        return Err(err(format!(
            "no {MODINFO_SECTION} section (not a module object?)"
        )));
    }
    let mut info = ModInfo::default();
    let (mut abi, mut name) = (None, None);
    let entries = parts
        .iter()
        .flat_map(|&(i, s)| modinfo::entries(s.data).map(move |e| e.map_err(|e| (i, e))));
    for e in entries {
        let (k, v) = e.map_err(|(i, e)| err(format!("{MODINFO_SECTION} section {i}: {e}")))?;
        match k {
            "abi" | "name" => {
                let seen = if k == "abi" { &mut abi } else { &mut name };
                if seen.replace(v).is_some() {
                    return Err(err(format!(
                        "{MODINFO_SECTION} has more than one {k}= entry"
                    )));
                }
            }
            "depends" if !valid_module_name(v) => {
                return Err(err(format!("entry depends={v} does not name a module")));
            }
            "depends" if !info.depends.contains(&v) => info.depends.push(v),
            "export" => info.exports.push(v),
            "import_sig" | "export_sig" => {
                let Some((n, sig)) = v.split_once(':') else {
                    return Err(err(format!("entry {k}={v} is not {k}=NAME:SIGNATURE")));
                };
                if k == "import_sig" {
                    info.import_sigs.push((n, sig));
                } else {
                    info.export_sigs.push((n, sig));
                }
            }
            _ => {}
        }
    }
    if !abi.is_some_and(modinfo::is_abi_value) {
        return Err(err(format!(
            "module ABI {} does not match the kernel's {ABI_VERSION}",
            abi.unwrap_or("(none)")
        )));
    }
    info.name = name.ok_or_else(|| err(format!("{MODINFO_SECTION} has no name= entry")))?;
    if info.depends.contains(&info.name) {
        return Err(err(format!("module {} depends on itself", info.name)));
    }
    if !valid_module_name(info.name) {
        return Err(err(format!(
            "{MODINFO_SECTION} name `{}` is not [a-z][a-z0-9_]{{0,31}}",
            info.name
        )));
    }
    Ok(info)
}

/// Whether `name` is a valid module name: `[a-z][a-z0-9_]{0,31}` (the
/// prelinker's rule).
pub fn valid_module_name(name: &str) -> bool {
    modinfo::valid_name(name)
}

/// Name of an x86_64 relocation type, for messages.
pub fn reloc_name(t: u32) -> String {
    const NAMES: [&str; 43] = [
        "R_X86_64_NONE",
        "R_X86_64_64",
        "R_X86_64_PC32",
        "R_X86_64_GOT32",
        "R_X86_64_PLT32",
        "R_X86_64_COPY",
        "R_X86_64_GLOB_DAT",
        "R_X86_64_JUMP_SLOT",
        "R_X86_64_RELATIVE",
        "R_X86_64_GOTPCREL",
        "R_X86_64_32",
        "R_X86_64_32S",
        "R_X86_64_16",
        "R_X86_64_PC16",
        "R_X86_64_8",
        "R_X86_64_PC8",
        "R_X86_64_DTPMOD64",
        "R_X86_64_DTPOFF64",
        "R_X86_64_TPOFF64",
        "R_X86_64_TLSGD",
        "R_X86_64_TLSLD",
        "R_X86_64_DTPOFF32",
        "R_X86_64_GOTTPOFF",
        "R_X86_64_TPOFF32",
        "R_X86_64_PC64",
        "R_X86_64_GOTOFF64",
        "R_X86_64_GOTPC32",
        "R_X86_64_GOT64",
        "R_X86_64_GOTPCREL64",
        "R_X86_64_GOTPC64",
        "R_X86_64_GOTPLT64",
        "R_X86_64_PLTOFF64",
        "R_X86_64_SIZE32",
        "R_X86_64_SIZE64",
        "R_X86_64_GOTPC32_TLSDESC",
        "R_X86_64_TLSDESC_CALL",
        "R_X86_64_TLSDESC",
        "R_X86_64_IRELATIVE",
        "R_X86_64_RELATIVE64",
        "R_X86_64_39",
        "R_X86_64_40",
        "R_X86_64_GOTPCRELX",
        "R_X86_64_REX_GOTPCRELX",
    ];
    NAMES
        .get(t as usize)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("R_X86_64_<{t}>"))
}
