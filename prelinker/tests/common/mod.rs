//! Helpers shared by the integration tests: a builder of module objects
//! (x86_64 ELF relocatable, via `object::write`), an `ar` writer, and
//! running the prelinker.

// Each test binary uses only some of these helpers.
#![allow(dead_code)]

use object::write::{Object, Relocation, SectionId, Symbol, SymbolId, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, RelocationFlags, SectionFlags, SectionKind,
    SymbolFlags, SymbolKind, SymbolScope, elf,
};
use prelinker::synth::{self, KernelSpec};
use prelinker::{InputFile, LinkOptions, LinkOutput};
use std::path::{Path, PathBuf};

/// Builds one module object.
pub struct ModBuilder {
    pub obj: Object<'static>,
    pub text: SectionId,
    text_sections: Vec<SectionId>,
    modinfo: Vec<String>,
}

impl ModBuilder {
    /// A module `name` with a `.text` section holding `__module_probe`
    /// (`xor eax,eax; ret`, padded to 16 bytes with int3).
    pub fn new(name: &str) -> ModBuilder {
        let mut obj = Object::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
        let text = obj.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
        let mut code = vec![0x31, 0xc0, 0xc3];
        code.resize(16, 0xcc);
        obj.append_section_data(text, &code, 16);
        let mut b = ModBuilder {
            obj,
            text,
            text_sections: Vec::new(),
            modinfo: vec!["abi=2".into(), format!("name={name}")],
        };
        // As the module API does: every kernel service's signature.
        for (service, sig) in modabi::SERVICE_SIGNATURES {
            b.modinfo.push(format!("import_sig={service}:{sig}"));
        }
        b.global("__module_probe", text, 0);
        b
    }

    /// A module without the default `abi=` and `name=` entries.
    pub fn raw_modinfo(mut self, entries: &[&str]) -> ModBuilder {
        self.modinfo = entries.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Adds raw `.modinfo` entries after the default ones.
    pub fn raw_extra(mut self, entries: &[&str]) -> ModBuilder {
        self.modinfo.extend(entries.iter().map(|s| s.to_string()));
        self
    }

    /// Adds `depends=`.
    pub fn depends(mut self, d: &str) -> ModBuilder {
        self.modinfo.push(format!("depends={d}"));
        self
    }

    /// Adds `export=`, with the signature `fn()` (`export_sig=`), as
    /// `export_fn!` records one.
    pub fn export(mut self, s: &str) -> ModBuilder {
        self.modinfo.push(format!("export={s}"));
        self.modinfo.push(format!("export_sig={s}:fn()"));
        self
    }

    /// Adds `export=` with the given signature (`export_sig=`).
    pub fn export_with_sig(mut self, s: &str, sig: &str) -> ModBuilder {
        self.modinfo.push(format!("export={s}"));
        self.modinfo.push(format!("export_sig={s}:{sig}"));
        self
    }

    /// Records the signature this module expects of import `name`
    /// (`import_sig=`), replacing any recorded before.
    pub fn import_sig(mut self, name: &str, sig: &str) -> ModBuilder {
        let prefix = format!("import_sig={name}:");
        self.modinfo.retain(|e| !e.starts_with(&prefix));
        self.modinfo.push(format!("{prefix}{sig}"));
        self
    }

    /// Drops the recorded signature of import `name` (`import_sig=`), as
    /// in a module built without the module API's macros.
    pub fn no_import_sig(mut self, name: &str) -> ModBuilder {
        let prefix = format!("import_sig={name}:");
        self.modinfo.retain(|e| !e.starts_with(&prefix));
        self
    }

    /// Adds `export=` without a signature (no `export_sig=`).
    pub fn export_unsigned(mut self, s: &str) -> ModBuilder {
        self.modinfo.push(format!("export={s}"));
        self
    }

    /// Adds a section with data.
    pub fn section(&mut self, name: &str, kind: SectionKind, data: &[u8], align: u64) -> SectionId {
        let id = self
            .obj
            .add_section(Vec::new(), name.as_bytes().to_vec(), kind);
        self.obj.append_section_data(id, data, align);
        if kind == SectionKind::Text {
            self.text_sections.push(id);
        }
        id
    }

    /// Adds a section with explicit ELF type and flags.
    pub fn section_flags(
        &mut self,
        name: &str,
        sh_type: u32,
        sh_flags: u64,
        data: &[u8],
        align: u64,
    ) -> SectionId {
        let id = self.section(name, SectionKind::Other, data, align);
        self.obj.section_mut(id).flags = SectionFlags::Elf {
            sh_type: elf::SectionType(sh_type),
            sh_flags: elf::SectionFlags(sh_flags),
        };
        id
    }

    /// Adds a NOBITS (bss) section.
    pub fn bss(&mut self, name: &str, size: u64, align: u64) -> SectionId {
        let id = self.obj.add_section(
            Vec::new(),
            name.as_bytes().to_vec(),
            SectionKind::UninitializedData,
        );
        self.obj.append_section_bss(id, size, align);
        id
    }

    fn sym(
        &mut self,
        name: &str,
        section: SymbolSection,
        value: u64,
        scope: SymbolScope,
        weak: bool,
    ) -> SymbolId {
        let kind = match section {
            SymbolSection::Section(s) if s != self.text && !self.text_sections.contains(&s) => {
                SymbolKind::Data
            }
            SymbolSection::Absolute => SymbolKind::Data,
            _ => SymbolKind::Text,
        };
        self.obj.add_symbol(Symbol {
            name: name.as_bytes().to_vec(),
            value,
            size: 0,
            kind,
            scope,
            weak,
            section,
            flags: SymbolFlags::None,
        })
    }

    /// A global symbol defined at `value` in `section`.
    pub fn global(&mut self, name: &str, section: SectionId, value: u64) -> SymbolId {
        self.sym(
            name,
            SymbolSection::Section(section),
            value,
            SymbolScope::Dynamic,
            false,
        )
    }

    /// A local symbol defined at `value` in `section`.
    pub fn local(&mut self, name: &str, section: SectionId, value: u64) -> SymbolId {
        self.sym(
            name,
            SymbolSection::Section(section),
            value,
            SymbolScope::Compilation,
            false,
        )
    }

    /// An absolute symbol.
    pub fn absolute(&mut self, name: &str, value: u64) -> SymbolId {
        self.sym(
            name,
            SymbolSection::Absolute,
            value,
            SymbolScope::Compilation,
            false,
        )
    }

    /// An undefined symbol.
    pub fn undef(&mut self, name: &str) -> SymbolId {
        // An import of another module's function records its signature, as
        // `import_fn!` does (kernel services have theirs already).
        let prefix = format!("import_sig={name}:");
        if !self.modinfo.iter().any(|e| e.starts_with(&prefix)) {
            self.modinfo.push(format!("{prefix}fn()"));
        }
        self.sym(
            name,
            SymbolSection::Undefined,
            0,
            SymbolScope::Dynamic,
            false,
        )
    }

    /// An undefined weak symbol.
    pub fn undef_weak(&mut self, name: &str) -> SymbolId {
        self.sym(
            name,
            SymbolSection::Undefined,
            0,
            SymbolScope::Dynamic,
            true,
        )
    }

    /// The section symbol of a section.
    pub fn section_sym(&mut self, section: SectionId) -> SymbolId {
        self.obj.section_symbol(section)
    }

    /// Adds a relocation.
    pub fn reloc(
        &mut self,
        section: SectionId,
        offset: u64,
        symbol: SymbolId,
        addend: i64,
        r_type: u32,
    ) {
        self.obj
            .add_relocation(
                section,
                Relocation {
                    offset,
                    symbol,
                    addend,
                    flags: RelocationFlags::Elf {
                        r_type: elf::RelocationType(r_type),
                    },
                },
            )
            .unwrap();
    }

    /// Appends code to `.text`, returning its offset.
    pub fn code(&mut self, bytes: &[u8]) -> u64 {
        self.obj.append_section_data(self.text, bytes, 1)
    }

    /// The object file bytes.
    pub fn build(mut self) -> Vec<u8> {
        let mut info = Vec::new();
        for e in &self.modinfo {
            info.extend_from_slice(e.as_bytes());
            info.push(0);
        }
        let id = self
            .obj
            .add_section(Vec::new(), b".modinfo".to_vec(), SectionKind::Other);
        self.obj.append_section_data(id, &info, 1);
        self.obj.write().unwrap()
    }
}

/// An `InputFile` named `name`.
pub fn input(name: &str, data: Vec<u8>) -> InputFile {
    InputFile {
        name: name.to_string(),
        data,
    }
}

/// Links with the default synthetic kernel.
pub fn link(mods: Vec<InputFile>) -> prelinker::Result<LinkOutput> {
    link_with(&KernelSpec::default(), mods, 4096)
}

/// Links with a given synthetic kernel and slot alignment.
pub fn link_with(
    spec: &KernelSpec,
    mods: Vec<InputFile>,
    slot_align: u64,
) -> prelinker::Result<LinkOutput> {
    let k = synth::kernel_elf(spec);
    prelinker::link(
        "kernel.elf",
        &k,
        &mods,
        &LinkOptions {
            slot_align,
            ..LinkOptions::default()
        },
    )
}

/// The used bytes of module `m`'s class `c` in an image built from `spec`.
pub fn class_bytes<'a>(
    spec: &KernelSpec,
    out: &'a LinkOutput,
    m: usize,
    c: modtable::Class,
) -> &'a [u8] {
    let k = prelinker::kernel::Kernel::parse("image", &out.image).unwrap();
    let _ = spec;
    let r = k.regions[c];
    let mp = &out.plan.modules[m];
    let start = (r.file_off + u64::from(mp.placement.slot_off[c])) as usize;
    &out.image[start..start + mp.placement.size[c] as usize]
}

/// A System V `ar` archive of `(name, bytes)` members.
pub fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        let hdr = format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            format!("{name}/"),
            0,
            0,
            0,
            644,
            data.len()
        );
        assert_eq!(hdr.len(), 60);
        out.extend_from_slice(hdr.as_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

/// The workspace's `build/` directory.
pub fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../build")
}

/// Whether a missing build output fails the test instead of skipping it.
pub fn required() -> bool {
    std::env::var_os("PLK_REQUIRE_BUILD").is_some()
}

/// `read`, the result of reading the build output at `path` (built by
/// `make TARGET`), or `None` with a message saying the test is skipped if it
/// failed; a panic instead when the build outputs are [`required`].
pub fn build_output<T>(path: &Path, read: std::io::Result<T>, target: &str) -> Option<T> {
    match read {
        Ok(v) => Some(v),
        Err(e) if !required() => {
            eprintln!(
                "SKIPPED: {}: {e}; run `make {target}` (make test does, and sets PLK_REQUIRE_BUILD)",
                path.display()
            );
            None
        }
        Err(e) => panic!("{}: {e} (PLK_REQUIRE_BUILD is set)", path.display()),
    }
}

/// The module objects, or `None` (with a message) if `build/modules` is
/// missing and not required.
pub fn module_objects() -> Option<Vec<PathBuf>> {
    let dir = build_dir().join("modules");
    let entries = build_output(&dir, std::fs::read_dir(&dir), "modules")?;
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no module objects in {}", dir.display());
    Some(files)
}
