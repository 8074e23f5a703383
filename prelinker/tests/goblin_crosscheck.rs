//! goblin as an independent ELF reader: for every real module object
//! (`build/modules/*.o`, built by `make modules`) goblin's view of the
//! allocated sections (names and sizes), the defined global symbols and the
//! relocation count of each allocated section agrees with what the
//! prelinker read; and the final image `build/image.elf` parses and
//! validates under goblin (every segment inside the file, loadable segments
//! aligned, the module region sections present, inside loadable segments).
//!
//! Without the build outputs these tests say so and pass, unless
//! `PLK_REQUIRE_BUILD` is set (as `make test`, which builds them first,
//! does): then a missing directory or file fails them.

mod common;

use common::{build_dir, build_output, module_objects};
use goblin::elf::{Elf, program_header as ph, section_header as sh, sym};
use prelinker::ErrorKind;
use prelinker::input::{ModuleObject, read_module};
use std::collections::{BTreeMap, BTreeSet};

/// What is compared, from either reader.
#[derive(Debug)]
struct View {
    /// Allocated sections, by section index: (index, name, size).
    alloc: Vec<(usize, String, u64)>,
    /// Names of the defined global (and weak) symbols.
    globals: BTreeSet<String>,
    /// Relocation entries per allocated target section (by index).
    relocs: BTreeMap<usize, usize>,
}

fn goblin_view(data: &[u8]) -> View {
    let e = Elf::parse(data).expect("goblin cannot parse the object");
    assert_eq!(e.header.e_type, goblin::elf::header::ET_REL);
    let is_alloc = |i: usize| {
        e.section_headers
            .get(i)
            .is_some_and(|s| s.sh_flags & u64::from(sh::SHF_ALLOC) != 0)
    };
    let alloc = e
        .section_headers
        .iter()
        .enumerate()
        .filter(|(i, _)| is_alloc(*i))
        .map(|(i, s)| {
            let name = e.shdr_strtab.get_at(s.sh_name).expect("section name");
            (i, name.to_string(), s.sh_size)
        })
        .collect();
    let globals = e
        .syms
        .iter()
        .filter(|s| s.st_bind() != sym::STB_LOCAL && s.st_shndx != sh::SHN_UNDEF as usize)
        .filter_map(|s| e.strtab.get_at(s.st_name))
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    let mut relocs = BTreeMap::new();
    for (ri, rs) in &e.shdr_relocs {
        let r = &e.section_headers[*ri];
        assert_eq!(r.sh_type, sh::SHT_RELA, "only RELA sections are expected");
        let target = r.sh_info as usize;
        if is_alloc(target) {
            *relocs.entry(target).or_insert(0) += rs.len();
        }
    }
    View {
        alloc,
        globals,
        relocs,
    }
}

fn prelinker_view(o: &ModuleObject<'_>) -> View {
    let alloc = o
        .elf
        .sections
        .iter()
        .enumerate()
        .filter(|(_, s)| s.flags & prelinker::elf::SHF_ALLOC != 0)
        .map(|(i, s)| (i, s.name().to_string(), s.size))
        .collect();
    let globals = o
        .globals
        .keys()
        .map(|n| String::from_utf8(n.to_vec()).unwrap())
        .collect();
    let mut relocs = BTreeMap::new();
    for &(ri, target) in &o.rela_sections {
        *relocs.entry(target).or_insert(0) += o.elf.relas(ri).unwrap().len();
    }
    View {
        alloc,
        globals,
        relocs,
    }
}

#[test]
fn module_objects_agree_with_goblin() {
    let Some(files) = module_objects() else {
        return;
    };
    for p in &files {
        let name = p.display().to_string();
        let whole = std::fs::read(p).unwrap();
        let g = goblin_view(&whole);
        // What the prelinker reads from the file (a compact copy of the
        // parts the link uses), and, for comparison, from the whole file.
        let mut buf = Vec::new();
        read_module(p, &name, &mut buf).unwrap();
        for (what, bytes) in [("as read", &buf[..]), ("whole", &whole[..])] {
            let o = ModuleObject::parse(&name, bytes).unwrap();
            let v = prelinker_view(&o);
            assert_eq!(
                v.alloc, g.alloc,
                "{name} ({what}): allocated sections differ"
            );
            assert_eq!(
                v.globals, g.globals,
                "{name} ({what}): defined globals differ"
            );
            assert_eq!(
                v.relocs, g.relocs,
                "{name} ({what}): relocation counts differ"
            );
            // Everything allocated but .modinfo is placed.
            for (i, n, _) in &v.alloc {
                assert_eq!(
                    o.placement[*i] != prelinker::input::Placement::None,
                    n != ".modinfo",
                    "{name}: section {n}"
                );
            }
        }
        // Real modules have code, data, exports or imports to check.
        assert!(
            !g.alloc.is_empty() && !g.globals.is_empty() && g.relocs.values().sum::<usize>() > 0,
            "{name}: nothing to compare: {g:?}"
        );
        assert!(g.globals.contains("__module_probe"), "{name}");
        eprintln!(
            "{name}: goblin agrees: {} allocated sections, {} defined globals, {} relocations in {} sections",
            g.alloc.len(),
            g.globals.len(),
            g.relocs.values().sum::<usize>(),
            g.relocs.len()
        );
    }
}

#[test]
fn image_validates_under_goblin() {
    let path = build_dir().join("image.elf");
    let Some(data) = build_output(&path, std::fs::read(&path), "image") else {
        return;
    };
    let name = path.display().to_string();
    let e = Elf::parse(&data).expect("goblin cannot parse the image");
    let len = data.len() as u64;
    assert_eq!(e.header.e_type, goblin::elf::header::ET_EXEC);
    assert_eq!(e.header.e_machine, goblin::elf::header::EM_X86_64);
    assert!(e.is_64 && e.little_endian);
    // Program headers: inside the file, loadable ones aligned.
    let loads: Vec<_> = e
        .program_headers
        .iter()
        .filter(|p| p.p_type == ph::PT_LOAD)
        .collect();
    assert!(!loads.is_empty(), "no PT_LOAD segment");
    for (i, p) in e.program_headers.iter().enumerate() {
        assert!(
            p.p_offset
                .checked_add(p.p_filesz)
                .is_some_and(|end| end <= len),
            "segment {i} ({p:?}) lies past the end of the {len}-byte file"
        );
        assert!(p.p_filesz <= p.p_memsz, "segment {i}: filesz > memsz");
        if p.p_type == ph::PT_LOAD && p.p_align > 1 {
            assert!(
                p.p_align.is_power_of_two(),
                "segment {i}: align {}",
                p.p_align
            );
            assert_eq!(
                p.p_vaddr % p.p_align,
                p.p_offset % p.p_align,
                "segment {i}: vaddr and offset disagree modulo the alignment"
            );
        }
    }
    // Section headers: inside the file.
    for (i, s) in e.section_headers.iter().enumerate() {
        if s.sh_type != sh::SHT_NOBITS && s.sh_size > 0 {
            assert!(
                s.sh_offset
                    .checked_add(s.sh_size)
                    .is_some_and(|end| end <= len),
                "section {i} lies past the end of the file"
            );
        }
    }
    let section = |n: &str| {
        e.section_headers
            .iter()
            .find(|s| e.shdr_strtab.get_at(s.sh_name) == Some(n))
            .unwrap_or_else(|| panic!("{name}: no {n} section"))
    };
    // The module regions and the table: present, with file bytes, loaded
    // where the prelinker says, inside one loadable segment each.
    let (regions, table) = prelinker::kernel::Kernel::image_areas(&name, &data).unwrap();
    let areas = [
        (".modules.text", regions.0[0]),
        (".modules.rodata", regions.0[1]),
        (".modules.data", regions.0[2]),
        (".modtable", table),
    ];
    for (n, a) in areas {
        let s = section(n);
        assert_eq!(s.sh_type, sh::SHT_PROGBITS, "{n}");
        assert!(
            s.sh_flags & u64::from(sh::SHF_ALLOC) != 0,
            "{n} is not allocated"
        );
        assert_eq!(
            (s.sh_addr, s.sh_size, s.sh_offset),
            (a.addr, a.size, a.file_off),
            "{n}: goblin and the prelinker disagree"
        );
        assert!(
            loads.iter().any(|p| {
                p.p_vaddr <= s.sh_addr
                    && s.sh_addr + s.sh_size <= p.p_vaddr + p.p_filesz
                    && s.sh_offset - p.p_offset == s.sh_addr - p.p_vaddr
            }),
            "{n} is not inside a loadable segment"
        );
    }
    eprintln!(
        "{name}: {} program headers ({} PT_LOAD) and {} section headers validate under goblin",
        e.program_headers.len(),
        loads.len(),
        e.section_headers.len()
    );
    // The image's table and module checksums verify, and it holds exactly
    // the modules of build/modules.
    let plan = prelinker::inspect::inspect(&name, &data).unwrap();
    if let Some(files) = module_objects() {
        let mut want: Vec<String> = files
            .iter()
            .map(|p| {
                let f = prelinker::InputFile::read(p).unwrap();
                ModuleObject::parse(&f.name, &f.data)
                    .unwrap()
                    .info
                    .name()
                    .to_string()
            })
            .collect();
        let mut got: Vec<String> = plan.modules.iter().map(|m| m.name.clone()).collect();
        want.sort();
        got.sort();
        assert_eq!(got, want, "the image's modules are not build/modules'");
    }
    // And a damaged copy does not (the check above can fail).
    let mut bad = data.clone();
    let at = regions.0[0].file_off as usize + plan.modules[0].placement.slot_off.0[0] as usize;
    bad[at] ^= 0xff;
    let err = prelinker::inspect::inspect(&name, &bad).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Checksum, "{err}");
    assert!(
        err.message()
            .contains(&format!("module `{}`", plan.modules[0].name)),
        "{err}"
    );
}
