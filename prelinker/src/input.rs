//! Module inputs: relocatable x86_64 objects (or the one module member of a
//! staticlib archive), their `.modinfo`, and which class each section goes to.

use crate::elf::{self, ElfFile, Sym};
use crate::error::{Error, Result};
use crate::{bail, err};
use modabi::modinfo::{self, ABI_VERSION, MODINFO_SECTION, PROBE_SYMBOL, SELFTEST_SYMBOL};
use modtable::Class;

/// The largest input file the prelinker reads (module object, archive,
/// kernel, image or boot log): 256 MiB. A larger file is refused before
/// anything but its metadata is read; real inputs are a few MiB (a module
/// object under 100 KiB, its staticlib archive about 7 MiB, a kernel with
/// three 16 MiB regions about 50 MiB).
pub const MAX_INPUT_SIZE: u64 = 256 << 20;

/// How many bytes of a file are read first to tell what it is.
const HEAD: u64 = 64;

/// Opens an input after checking that it is a regular file (not a
/// directory, device or pipe, which could not be read or never end) of at
/// most [`MAX_INPUT_SIZE`] bytes; returns it with its length. `name` is
/// used in messages.
pub fn open_input(path: &std::path::Path, name: &str) -> Result<(std::fs::File, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e: std::io::Error| err!(Io, "{name}: cannot read: {e}");
    let check = |m: &std::fs::Metadata| -> Result<u64> {
        if !m.is_file() {
            let what = if m.is_dir() {
                "a directory"
            } else {
                "a device, pipe or socket"
            };
            bail!(
                Io,
                "{name}: not a regular file ({what}); inputs must be files"
            );
        }
        if m.len() > MAX_INPUT_SIZE {
            bail!(
                Io,
                "{name}: {} bytes, more than the {MAX_INPUT_SIZE} bytes (256 MiB) the prelinker reads from one input",
                m.len()
            );
        }
        Ok(m.len())
    };
    // Opened without blocking (a pipe would otherwise wait for a writer)
    // and without becoming a controlling terminal, then checked before any
    // read: one path lookup per input rather than a stat and an open.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let len = check(&f.metadata().map_err(io)?)?;
    Ok((f, len))
}

/// Reads `n` bytes at `off` of `f`, failing if the file is shorter.
fn read_exact(f: &std::fs::File, name: &str, buf: &mut [u8], off: u64) -> Result<()> {
    use std::os::unix::fs::FileExt;
    f.read_exact_at(buf, off)
        .map_err(|e| err!(Io, "{name}: cannot read: {e}"))
}

/// The first bytes of a file of `len` bytes (at most [`HEAD`]).
fn head(f: &std::fs::File, name: &str, len: u64) -> Result<Vec<u8>> {
    let mut h = vec![0u8; len.min(HEAD) as usize];
    read_exact(f, name, &mut h, 0)?;
    Ok(h)
}

/// The magic bytes of an `ar` archive.
pub const AR_MAGIC: &[u8] = b"!<arch>\n";

/// An input file read into memory.
#[derive(Clone, Debug)]
pub struct InputFile {
    /// The name used in messages (the path as given).
    pub name: String,
    /// The file bytes.
    pub data: Vec<u8>,
}

impl InputFile {
    /// Reads a whole input (a regular file of at most [`MAX_INPUT_SIZE`]
    /// bytes: see [`open_input`]).
    pub fn read(path: &std::path::Path) -> Result<InputFile> {
        let name = path.display().to_string();
        let (f, len) = open_input(path, &name)?;
        let mut data = vec![0u8; len as usize];
        read_exact(&f, &name, &mut data, 0)?;
        Ok(InputFile { name, data })
    }

    /// Reads a whole input that must start with `magic` (which says what it
    /// is in the message, `what`), checking its first bytes before reading
    /// the rest.
    pub fn read_with_magic(path: &std::path::Path, magic: &[u8], what: &str) -> Result<InputFile> {
        let name = path.display().to_string();
        let (f, len) = open_input(path, &name)?;
        if !head(&f, &name, len)?.starts_with(magic) {
            bail!(Malformed, "{name}: not {what} (bad magic)");
        }
        let mut data = vec![0u8; len as usize];
        read_exact(&f, &name, &mut data, 0)?;
        Ok(InputFile { name, data })
    }
}

/// Reads the module input at `path` into `buf`; `name` is used in messages.
/// The input must be a regular file of at most [`MAX_INPUT_SIZE`] bytes
/// whose first bytes say it is an ELF file or an `ar` archive. An ELF object
/// is read as a compact copy of the parts the link uses (its headers, the
/// allocated sections, symbols, strings, `.modinfo` and the relocations of
/// allocated sections; the section table points at them, and every other
/// section is empty), so `buf` ends up the size of those parts, not of the
/// file. An archive, and an ELF file whose headers cannot be read that way
/// (the parser then says what is wrong), are read whole.
pub fn read_module(path: &std::path::Path, name: &str, buf: &mut Vec<u8>) -> Result<()> {
    let mut r = ModuleReader {
        buf: std::mem::take(buf),
        ..ModuleReader::default()
    };
    let res = r.read(path, name).map(|_| ());
    *buf = r.buf;
    res
}

/// Reads module objects one after another as [`read_module`] does,
/// reusing its buffers (the compact copy, and the parts of each file read
/// ahead) from one object to the next.
#[derive(Default)]
pub struct ModuleReader {
    ahead: crate::sparse::ReadAhead,
    buf: Vec<u8>,
}

impl ModuleReader {
    /// Reads the module object at `path` (named `name` in messages): its
    /// bytes, as [`read_module`] gives them, until the next read.
    pub fn read(&mut self, path: &std::path::Path, name: &str) -> Result<&[u8]> {
        let (f, len) = open_input(path, name)?;
        let io = |e: std::io::Error| err!(Io, "{name}: cannot read: {e}");
        self.ahead.fill(&f, len).map_err(io)?;
        let h = self.ahead.head();
        if !h.starts_with(AR_MAGIC) && !h.starts_with(&object::elf::ELFMAG) {
            bail!(
                Malformed,
                "{name}: not an ELF file or ar archive (bad magic)"
            );
        }
        if h.starts_with(AR_MAGIC)
            || !crate::sparse::read_module_parts(&f, len, &self.ahead, &mut self.buf).map_err(io)?
        {
            self.buf.clear();
            self.buf.resize(len as usize, 0);
            read_exact(&f, name, &mut self.buf, 0)?;
        }
        Ok(&self.buf)
    }
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

/// A byte range `(start, end)` of [`ModInfo::text`].
type Span = (u32, u32);

/// The metadata of a module from its `.modinfo` section. Its strings are
/// ranges of one copy of the section's entries, so that a module's metadata
/// costs a few allocations, not one per entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModInfo {
    /// The `.modinfo` entries the ranges below are in.
    text: String,
    /// The module's name.
    name: Span,
    /// Modules it depends on, in declaration order, without repeats.
    depends: Vec<Span>,
    /// Symbols it exports to later modules.
    exports: Vec<Span>,
    /// Signatures of the functions it exports (`export_sig=NAME:SIG`),
    /// sorted by name.
    export_sigs: Vec<(Span, Span)>,
    /// Signatures it expects of the functions it imports, from the kernel
    /// or other modules (`import_sig=NAME:SIG`), sorted by name.
    import_sigs: Vec<(Span, Span)>,
}

impl ModInfo {
    fn at(&self, (s, e): Span) -> &str {
        &self.text[s as usize..e as usize]
    }

    /// The module's name.
    pub fn name(&self) -> &str {
        self.at(self.name)
    }

    /// Modules it depends on, in declaration order, without repeats.
    pub fn depends(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.depends.iter().map(|&d| self.at(d))
    }

    /// Symbols it exports to later modules, in declaration order.
    pub fn exports(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.exports.iter().map(|&e| self.at(e))
    }

    /// The signature this module expects of import `name`.
    pub fn import_sig(&self, name: &str) -> Option<&str> {
        self.sig_in(&self.import_sigs, name)
    }

    /// The signature of `name` in `list`, sorted by name.
    fn sig_in(&self, list: &[(Span, Span)], name: &str) -> Option<&str> {
        let text = self.text.as_bytes();
        list.binary_search_by(|&((s, e), _)| text[s as usize..e as usize].cmp(name.as_bytes()))
            .ok()
            .map(|i| self.at(list[i].1))
    }

    /// The signature this module records for its export `name`.
    pub fn export_sig(&self, name: &str) -> Option<&str> {
        self.sig_in(&self.export_sigs, name)
    }
}

/// Sorts the signature entries `list` (spans of `bytes`) by name for
/// [`ModInfo::import_sig`] and [`ModInfo::export_sig`], dropping repeats
/// of an entry; a name given two different signatures is an error naming
/// the first two (in entry order).
fn sort_signatures(file: &str, bytes: &[u8], list: &mut Vec<(Span, Span)>) -> Result<()> {
    let text = |(s, e): Span| &bytes[s as usize..e as usize];
    // Stable: entries of one name stay in entry order.
    list.sort_by(|a, b| text(a.0).cmp(text(b.0)));
    let mut kept = 0;
    for i in 0..list.len() {
        if kept > 0 && text(list[kept - 1].0) == text(list[i].0) {
            let (old, new) = (list[kept - 1].1, list[i].1);
            if text(old) != text(new) {
                let s = |x| String::from_utf8_lossy(text(x));
                bail!(
                    Modinfo,
                    "{file}: .modinfo gives `{}` two signatures: `{}` and `{}`",
                    s(list[i].0),
                    s(old),
                    s(new)
                );
            }
        } else {
            list[kept] = list[i];
            kept += 1;
        }
    }
    list.truncate(kept);
    Ok(())
}

/// Parses the entries of a `.modinfo` section.
pub fn parse_modinfo(file: &str, bytes: &[u8]) -> Result<ModInfo> {
    parse_modinfo_vec(file, bytes.to_vec())
}

/// Like [`parse_modinfo`], keeping `bytes` as the copy the entries are in.
fn parse_modinfo_vec(file: &str, bytes: Vec<u8>) -> Result<ModInfo> {
    // Where a string the entries give (a slice of `bytes`) lies in `bytes`.
    let base = bytes.as_ptr() as usize;
    let span = |v: &str| -> Span {
        let s = v.as_ptr() as usize - base;
        (s as u32, (s + v.len()) as u32)
    };
    if bytes.len() > u32::MAX as usize {
        bail!(Modinfo, "{file}: .modinfo is larger than 4 GiB");
    }
    let mut info = ModInfo::default();
    // Most entries are import signatures: room for one per entry.
    info.import_sigs
        .reserve(bytes.iter().filter(|&&b| b == 0).count());
    let (mut abi, mut name) = (None, None);
    for e in modinfo::entries(&bytes) {
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
            "depends" => {
                if !valid_module_name(v) {
                    bail!(
                        Modinfo,
                        "{file}: .modinfo entry depends={} does not name a module: {}",
                        v.escape_debug(),
                        name_rule()
                    );
                }
                let seen = info
                    .depends
                    .iter()
                    .any(|&(s, e)| bytes[s as usize..e as usize] == *v.as_bytes());
                if !seen {
                    info.depends.push(span(v));
                }
            }
            "export" => info.exports.push(span(v)),
            "export_sig" | "import_sig" => {
                let Some((n, sig)) = v
                    .split_once(':')
                    .filter(|(n, s)| !n.is_empty() && !s.is_empty())
                else {
                    bail!(
                        Modinfo,
                        "{file}: .modinfo entry {k}={v} is not {k}=NAME:SIGNATURE"
                    );
                };
                let list = if k == "export_sig" {
                    &mut info.export_sigs
                } else {
                    &mut info.import_sigs
                };
                list.push((span(n), span(sig)));
            }
            // Unknown keys are informational (license, author, ...).
            _ => {}
        }
    }
    for list in [&mut info.export_sigs, &mut info.import_sigs] {
        sort_signatures(file, &bytes, list)?;
    }
    match abi {
        None => bail!(Modinfo, "{file}: .modinfo has no abi= entry"),
        Some(v) if !modinfo::is_abi_value(v) => bail!(
            Modinfo,
            "{file}: module ABI version {v} does not match the prelinker's ABI version {ABI_VERSION}"
        ),
        _ => {}
    }
    match name {
        None | Some("") => bail!(Modinfo, "{file}: .modinfo has no name= entry"),
        Some(n) if !valid_module_name(n) => bail!(
            Modinfo,
            "{file}: module name `{}` is not valid: {}",
            n.escape_debug(),
            name_rule()
        ),
        Some(n) => info.name = span(n),
    }
    // Every entry is UTF-8 (or the loop above failed), and so are the NUL
    // bytes around them: the whole section is.
    info.text = String::from_utf8(bytes)
        .map_err(|e| err!(Modinfo, "{file}: .modinfo is not UTF-8: {e}"))?;
    Ok(info)
}

/// The longest module name, in bytes.
pub const MAX_MODULE_NAME: usize = modinfo::MAX_NAME_LEN;

/// The rule of [`valid_module_name`], for messages.
fn name_rule() -> String {
    format!(
        "a module name is a lowercase letter followed by at most {n} lowercase letters, digits or underscores ([a-z][a-z0-9_]{{0,{n}}})",
        n = MAX_MODULE_NAME - 1
    )
}

/// Whether `name` is a valid module name: `[a-z][a-z0-9_]{0,31}`.
pub fn valid_module_name(name: &str) -> bool {
    modinfo::valid_name(name)
}

/// If `data` is an `ar` archive, returns its one member with a `.modinfo`
/// section; otherwise returns `data` unchanged.
pub fn module_object_bytes<'a>(file: &str, data: &'a [u8]) -> Result<&'a [u8]> {
    if !data.starts_with(AR_MAGIC) {
        return Ok(data);
    }
    let ar = object::read::archive::ArchiveFile::parse(data)
        .map_err(|e| err!(Malformed, "{file}: malformed archive: {e}"))?;
    let mut found: Vec<(String, &[u8])> = Vec::new();
    // The first member that is not a readable ELF file, and why: what to
    // say if no member is a module.
    let mut unreadable: Option<(String, Error)> = None;
    let mut members = 0;
    for m in ar.members() {
        let m = m.map_err(|e| err!(Malformed, "{file}: malformed archive member: {e}"))?;
        let bytes = m
            .data(data)
            .map_err(|e| err!(Malformed, "{file}: malformed archive member: {e}"))?;
        members += 1;
        let name = String::from_utf8_lossy(m.name()).into_owned();
        match ElfFile::parse(bytes) {
            Ok(e) if e.section_by_name(MODINFO_SECTION).is_some() => found.push((name, bytes)),
            Ok(_) => {}
            Err(e) => {
                unreadable.get_or_insert((name, e));
            }
        }
    }
    match found.len() {
        0 if members == 0 => bail!(
            Archive,
            "{file}: the archive has no members (is it truncated?)"
        ),
        0 => match unreadable {
            Some((name, e)) => bail!(
                Archive,
                "{file}: no archive member has a {MODINFO_SECTION} section, and member `{name}` is not a readable ELF object: {e}"
            ),
            None => bail!(
                Archive,
                "{file}: no archive member has a {MODINFO_SECTION} section"
            ),
        },
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
    } else if crate::layout::is_percpu(s) {
        // Per-CPU templates live in data (a fourth class realised as a
        // sub-range of data), whatever their flags.
        Class::Data
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
    pub globals: crate::Map<&'a [u8], u32>,
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
        // The module API emits several `.modinfo` sections (the module's
        // entries, and one per recorded signature): their entries together.
        let parts: Vec<usize> = (0..elf.sections.len())
            .filter(|&i| elf.sections[i].name_is(MODINFO_SECTION))
            .collect();
        if parts.is_empty() {
            bail!(
                Modinfo,
                "{file}: no {MODINFO_SECTION} section (not a module object?)"
            );
        }
        // Each part ends its last entry: one that did not would run into
        // the next part's first.
        if let Some(&i) = parts
            .iter()
            .find(|&&i| elf.section_data(i).last().is_some_and(|&b| b != 0))
        {
            bail!(
                Modinfo,
                "{file}: {MODINFO_SECTION} section {i} does not end with a NUL byte (its last entry is unterminated)"
            );
        }
        let size = parts.iter().map(|&i| elf.section_data(i).len()).sum();
        let mut text = Vec::with_capacity(size);
        parts
            .iter()
            .for_each(|&i| text.extend_from_slice(elf.section_data(i)));
        let info = parse_modinfo_vec(file, text)?;
        let mut placement = Vec::with_capacity(elf.sections.len());
        let mut rela_sections = Vec::with_capacity(
            elf.sections
                .iter()
                .filter(|s| s.sh_type == elf::SHT_RELA)
                .count(),
        );
        for (i, s) in elf.sections.iter().enumerate() {
            let p = if i == 0 { Placement::None } else { classify(s) };
            if p != Placement::None
                && s.sh_type != elf::SHT_PROGBITS
                && s.sh_type != elf::SHT_NOBITS
            {
                bail!(
                    Unsupported,
                    "{file}: section {} is allocated but of type {}; only PROGBITS and NOBITS sections are placed",
                    s.name(),
                    s.sh_type
                );
            }
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
            if p != Placement::None && s.align > crate::kernel::HUGE_PAGE {
                bail!(
                    Unsupported,
                    "{file}: section {} is aligned to {} bytes, more than the 2 MiB a module section may ask for",
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
                if t == 0 || t >= placement.len() {
                    bail!(
                        Malformed,
                        "{file}: relocation section {} applies to section index {t}, out of range",
                        s.name()
                    );
                }
                // The compiler names it after its section: one that says
                // otherwise has a damaged sh_info, and its relocations
                // would be dropped (or applied elsewhere) without a word.
                if s.name_tail_is_rela_of(&elf.sections[t]) == Some(false) {
                    let named = &s.name()[".rela".len()..];
                    bail!(
                        Malformed,
                        "{file}: relocation section {} applies to section {t} ({}), not {named}",
                        s.name(),
                        elf.sections[t].name()
                    );
                }
                if placement[t] != Placement::None {
                    rela_sections.push((i, t));
                }
            }
        }
        let symbols = elf.symbols().map_err(ctx)?;
        let mut globals = crate::Map::with_capacity_and_hasher(
            symbols
                .iter()
                .filter(|s| s.bind != elf::STB_LOCAL && s.shndx != elf::SHN_UNDEF as u32)
                .count(),
            Default::default(),
        );
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
                info.name()
            )
        })?;
        let selftest = entry(SELFTEST_SYMBOL)?;
        for e in info.exports() {
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
                    info.name()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names() {
        let long = "a".repeat(MAX_MODULE_NAME);
        for ok in [
            "a",
            "pci",
            "uart_com1",
            "e1000",
            "a_",
            "z9_9",
            long.as_str(),
        ] {
            assert!(valid_module_name(ok), "{ok}");
        }
        let too_long = "a".repeat(MAX_MODULE_NAME + 1);
        for bad in [
            "",
            "Pci",
            "pCi",
            "9lives",
            "_x",
            "has-dash",
            "a.b",
            "a b",
            "caf\u{e9}",
            too_long.as_str(),
        ] {
            assert!(!valid_module_name(bad), "{bad}");
        }
    }

    #[test]
    fn bad_name_is_reported_with_the_file() {
        let e = parse_modinfo("x.o", b"abi=2\0name=Bad-Name\0").unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Modinfo);
        assert!(
            e.message()
                .starts_with("x.o: module name `Bad-Name` is not valid")
                && e.message().contains("[a-z][a-z0-9_]{0,31}"),
            "{e}"
        );
        assert_eq!(
            parse_modinfo("x.o", b"abi=2\0name=ok_1\0").unwrap().name(),
            "ok_1"
        );
    }

    #[test]
    fn signatures_are_found_by_name_and_conflicts_named() {
        let m = |extra: &str| format!("abi={ABI_VERSION}\0name=m\0{extra}").into_bytes();
        let info = parse_modinfo(
            "m.o",
            &m("import_sig=zeta:fn()\0import_sig=alpha:fn(u32)\0import_sig=zeta:fn()\0export_sig=e:fn()->u8\0"),
        )
        .unwrap();
        assert_eq!(info.import_sig("alpha"), Some("fn(u32)"));
        assert_eq!(info.import_sig("zeta"), Some("fn()"));
        assert_eq!(info.import_sig("beta"), None);
        assert_eq!(info.export_sig("e"), Some("fn()->u8"));
        assert_eq!(info.export_sig("alpha"), None);
        let e = parse_modinfo(
            "m.o",
            &m("import_sig=b:fn()\0import_sig=a:fn()\0import_sig=b:fn(u8)\0import_sig=b:fn(u16)\0"),
        )
        .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Modinfo);
        assert_eq!(
            e.message(),
            "m.o: .modinfo gives `b` two signatures: `fn()` and `fn(u8)`"
        );
    }
}
