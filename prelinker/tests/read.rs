//! Reading module files: only the parts the link uses are read (debug
//! information is skipped) into a compact copy, a buffer reused from file to
//! file gives the same link as reading every file whole, an archive or an
//! ELF file with unreadable headers is read whole so the parser can say
//! what is wrong, and anything else, special files and oversized files are
//! refused before they are read.

mod common;

use common::*;
use object::SectionKind;
use prelinker::input::read_module;
use prelinker::synth::{self, KernelSpec};
use prelinker::{InputFile, LinkOptions};
use std::path::{Path, PathBuf};

/// The file range of section `name` in an ELF object.
fn section_range(data: &[u8], name: &str) -> (usize, usize) {
    use object::{Object, ObjectSection};
    let f = object::File::parse(data).unwrap();
    let s = f.section_by_name(name).unwrap();
    let (off, size) = s.file_range().unwrap();
    (off as usize, (off + size) as usize)
}

/// The data of section `name` as a parser of `data` (a whole file or what
/// `read_module` read) sees it.
fn section_data(data: &[u8], name: &str) -> Vec<u8> {
    let e = prelinker::elf::ElfFile::parse(data).unwrap();
    e.section_data(e.section_by_name(name).unwrap()).to_vec()
}

#[test]
fn debug_sections_are_not_read() {
    let mut b = ModBuilder::new("dbg");
    b.section(".debug_info", SectionKind::Debug, &[0x11; 20000], 1);
    let t = b.text;
    b.global("some_fn", t, 0);
    let data = b.build();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("dbg.o");
    std::fs::write(&p, &data).unwrap();
    let mut buf = vec![0x5a; 2 * data.len()];
    read_module(&p, "dbg.o", &mut buf).unwrap();
    // What was read is a compact ELF file of the used sections only.
    assert!(
        buf.len() + 20000 <= data.len(),
        "{} bytes read of {}",
        buf.len(),
        data.len()
    );
    assert!(
        !buf.windows(64).any(|w| w.iter().all(|&x| x == 0x11)),
        "the debug section was read"
    );
    assert!(section_data(&buf, ".debug_info").is_empty());
    let (d0, d1) = section_range(&data, ".debug_info");
    assert_eq!(d1 - d0, 20000);
    for name in [".text", ".modinfo", ".symtab", ".strtab"] {
        assert_eq!(
            section_data(&buf, name),
            section_data(&data, name),
            "{name} differs"
        );
    }
    let bytes = |data: &[u8]| {
        let chunks = prelinker::arena::Chunks::default();
        let p = prelinker::prepare::prepare("dbg.o", data, &mut chunks.arena()).unwrap();
        let size: u64 = p.layout.size.0.iter().sum();
        let (at, maps) = (p.image, chunks.into_maps());
        (
            maps[at.chunk][at.off..at.off + size as usize].to_vec(),
            p.layout,
        )
    };
    let (whole, whole_layout) = bytes(&data);
    let (read, read_layout) = bytes(&buf);
    assert_eq!(read, whole);
    assert_eq!(read_layout, whole_layout);
    // The same buffer for a smaller file: exactly what a fresh buffer gets.
    let small = ModBuilder::new("small").build();
    let q = dir.path().join("small.o");
    std::fs::write(&q, &small).unwrap();
    read_module(&q, "small.o", &mut buf).unwrap();
    let mut fresh = Vec::new();
    read_module(&q, "small.o", &mut fresh).unwrap();
    assert!(
        buf == fresh,
        "a reused buffer kept bytes of the earlier file"
    );
    assert!(buf.len() <= small.len());
}

/// The parts a link uses are the same whether they fall inside the two
/// windows read ahead (the file's first bytes, the section table and what
/// precedes it), straddle a window's edge, or lie outside both: for text,
/// debug information and symbol tables of many sizes around the windows'
/// sizes, the compact copy prepares exactly as the whole file does, with
/// one reader reused from file to file.
#[test]
fn read_ahead_windows_give_the_same_parts() {
    let dir = tempfile::tempdir().unwrap();
    let mut reader = prelinker::input::ModuleReader::default();
    let prepared = |data: &[u8]| {
        let chunks = prelinker::arena::Chunks::default();
        let p = prelinker::prepare::prepare("w.o", data, &mut chunks.arena()).unwrap();
        let size: u64 = p.layout.size.0.iter().sum();
        let (at, maps) = (p.image, chunks.into_maps());
        let lists = &maps[at.chunk][at.off + p.lists.at..];
        (
            maps[at.chunk][at.off..at.off + size as usize].to_vec(),
            p.layout,
            p.lists.relocs(lists).collect::<Vec<_>>(),
            p.lists.targets(lists).collect::<Vec<_>>(),
        )
    };
    let mut case = 0;
    for text_kib in [0usize, 1, 23, 24, 25, 40, 70] {
        for debug_kib in [0usize, 3, 30] {
            for symbols in [1usize, 300, 3000] {
                let mut b = ModBuilder::new("w");
                let t = b.text;
                b.code(&[0x90; 16]);
                let fill: Vec<u8> = (0..text_kib * 1024 + 17)
                    .map(|i| (i * 7 + case) as u8)
                    .collect();
                let big = b.section(".text.big", SectionKind::Text, &fill, 16);
                b.section(
                    ".debug_info",
                    SectionKind::Debug,
                    &vec![0x11; debug_kib * 1024],
                    1,
                );
                let ro = b.section(".rodata.tail", SectionKind::ReadOnlyData, &[0x22; 100], 8);
                for i in 0..symbols {
                    b.global(
                        &format!("symbol_with_a_long_name_{i:05}"),
                        big,
                        (i % 16) as u64,
                    );
                }
                let target = b.global("some_data", ro, 8);
                b.reloc(t, 0, target, 0, object::elf::R_X86_64_64.0);
                let data = b.build();
                let p = dir.path().join(format!("w{case}.o"));
                std::fs::write(&p, &data).unwrap();
                let read = reader.read(&p, "w.o").unwrap().to_vec();
                assert_eq!(
                    prepared(&read),
                    prepared(&data),
                    "text {text_kib} KiB, debug {debug_kib} KiB, {symbols} symbols"
                );
                case += 1;
            }
        }
    }
}

/// A module object in a file far larger than its sections (a sparse tail)
/// costs memory for its sections, not for the file: the buffer stays small,
/// the link is the same, and the prelinker runs in a data limit a whole
/// read would exceed.
#[test]
fn memory_follows_the_sections_not_the_file() {
    let data = {
        let mut b = ModBuilder::new("sparse");
        let s = b.undef("kapi_log");
        let t = b.text;
        let o = b.code(&[0; 8]);
        b.reloc(t, o, s, -4, prelinker::relocate::R_PLT32);
        b.build()
    };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sparse.o");
    std::fs::write(&p, &data).unwrap();
    let size = 240u64 << 20;
    assert!(size <= prelinker::input::MAX_INPUT_SIZE);
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(size)
        .unwrap();
    let mut buf = Vec::new();
    read_module(&p, "sparse.o", &mut buf).unwrap();
    assert!(buf.len() <= data.len(), "{} bytes read", buf.len());
    assert!(
        buf.capacity() < 1 << 20,
        "{} bytes allocated",
        buf.capacity()
    );
    let spec = KernelSpec::default();
    let kernel = synth::kernel_elf(&spec);
    let opts = LinkOptions::default();
    let mem = prelinker::link("kernel.elf", &kernel, &[input("sparse.o", data)], &opts).unwrap();
    let from_file = prelinker::link_files("kernel.elf", &kernel, &[&p], &opts).unwrap();
    assert_eq!(
        from_file.plan.modules[0].placement.checksum,
        mem.plan.modules[0].placement.checksum
    );
    assert!(from_file.apply(&kernel) == mem.image);
    // The command line, with a data limit of 160 MiB: reading the file whole
    // would need 240.
    let k = dir.path().join("kernel.elf");
    std::fs::write(&k, &kernel).unwrap();
    let out = dir.path().join("image.elf");
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -d 163840 && exec \"$0\" link --kernel \"$1\" --output \"$2\" \"$3\"")
        .arg(env!("CARGO_BIN_EXE_prelinker"))
        .args([&k, &out, &p])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(std::fs::read(&out).unwrap() == mem.image);
}

#[test]
fn archives_are_read_whole_and_junk_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = ModBuilder::new("nic").build();
    let a = ar(&[("nic.o", &m)]);
    // An archive, and an ELF file whose headers are cut short (the parser
    // says what is wrong), are read whole.
    for (name, data) in [("libnic.a", a), ("short.o", m[..40].to_vec())] {
        let p = dir.path().join(name);
        std::fs::write(&p, &data).unwrap();
        let mut buf = vec![0x5a; 7];
        read_module(&p, name, &mut buf).unwrap();
        assert_eq!(buf, data, "{name}");
    }
    // Anything else is refused from its first bytes.
    let p = dir.path().join("junk.o");
    std::fs::write(&p, b"hello, world").unwrap();
    let e = read_module(&p, "junk.o", &mut Vec::new()).unwrap_err();
    assert!(
        e.message()
            .contains("junk.o: not an ELF file or ar archive"),
        "{e}"
    );
}

/// Inputs that are not regular files, or larger than the limit, are
/// refused before they are read, with the file named, by every reader.
#[test]
fn special_and_oversized_inputs_are_refused() {
    use prelinker::input::MAX_INPUT_SIZE;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.o");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    let huge = dir.path().join("huge.o");
    std::fs::write(&huge, ModBuilder::new("huge").build()).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&huge)
        .unwrap()
        .set_len(MAX_INPUT_SIZE + 1)
        .unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let cases: [(&Path, &str); 4] = [
        (Path::new("/dev/zero"), "not a regular file"),
        (&fifo, "not a regular file"),
        (&sub, "not a regular file (a directory)"),
        (&huge, "268435457 bytes, more than the 268435456 bytes"),
    ];
    for (p, want) in cases {
        let name = p.display().to_string();
        let e = read_module(p, &name, &mut Vec::new()).unwrap_err();
        assert!(e.message().contains(&format!("{name}: {want}")), "{e}");
        let e = InputFile::read(p).unwrap_err();
        assert!(e.message().contains(&format!("{name}: {want}")), "{e}");
        let e = prelinker::kernel::read_kernel(p).unwrap_err();
        assert!(e.message().contains(&format!("{name}: {want}")), "{e}");
    }
}

/// The real module objects (built by `make modules`), in an order that
/// makes the reused buffer shrink and grow.
fn real_modules() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/modules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make modules`)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no module objects in {}", dir.display());
    files
}

#[test]
fn reading_files_links_like_reading_them_whole() {
    let files = real_modules();
    let spec = KernelSpec {
        region_size: modtable::PerClass([8 << 20; 3]),
        ..KernelSpec::default()
    };
    let kernel = synth::kernel_elf(&spec);
    let opts = LinkOptions::default();
    let whole: Vec<InputFile> = files.iter().map(|p| InputFile::read(p).unwrap()).collect();
    let mem = prelinker::link("kernel.elf", &kernel, &whole, &opts).unwrap();
    let from_files = prelinker::link_files("kernel.elf", &kernel, &files, &opts).unwrap();
    assert_eq!(from_files.plan, mem.plan);
    assert!(
        from_files.apply(&kernel) == mem.image,
        "the image linked from the files differs from the one linked from whole inputs"
    );
    // 80 modules (copies under new names), so that the files are read on
    // several threads, each reusing its buffer for files of varied sizes.
    let dir = tempfile::tempdir().unwrap();
    let mut many = vec![files.iter().find(|p| p.ends_with("pci.o")).unwrap().clone()];
    let others: Vec<&PathBuf> = files.iter().filter(|p| !p.ends_with("pci.o")).collect();
    for i in 0..79 {
        let mut data = std::fs::read(others[i % others.len()]).unwrap();
        let at = data.windows(5).position(|w| w == b"name=").unwrap() + 5;
        let len = data[at..].iter().position(|&b| b == 0).unwrap();
        assert!(len >= 3, "module name too short to rename");
        let new = format!("m{i:0>w$}", w = len - 1);
        data[at..at + len].copy_from_slice(new.as_bytes());
        let p = dir.path().join(format!("{new}.o"));
        std::fs::write(&p, data).unwrap();
        many.push(p);
    }
    let whole: Vec<InputFile> = many.iter().map(|p| InputFile::read(p).unwrap()).collect();
    let mem = prelinker::link("kernel.elf", &kernel, &whole, &opts).unwrap();
    let from_files = prelinker::link_files("kernel.elf", &kernel, &many, &opts).unwrap();
    assert_eq!(from_files.plan.modules.len(), 80);
    assert_eq!(from_files.plan, mem.plan);
    assert!(
        from_files.apply(&kernel) == mem.image,
        "80 modules: the image linked from the files differs"
    );
    // Written into the image file while relocating (as the command line
    // does): the same bytes.
    let out = dir.path().join("image.elf");
    let (staged, p) = prelinker::image::stage_image_streamed(&out, &kernel, |sink| {
        prelinker::link::link_files_streamed("kernel.elf", &kernel, &many, &opts, sink)
    })
    .unwrap();
    staged.commit().unwrap();
    assert_eq!(p.plan, mem.plan);
    assert!(
        std::fs::read(&out).unwrap() == mem.image,
        "80 modules: the image written while relocating differs"
    );
}

/// Truncated and corrupted objects give an error (or, for harmless damage,
/// a result), never a panic: every truncation length of a small module, and
/// single-byte corruptions of the headers and tables of a real one.
#[test]
fn damaged_objects_never_panic() {
    let mut b = ModBuilder::new("dmg");
    let s = b.undef("kapi_log");
    let t = b.text;
    let o = b.code(&[0; 8]);
    b.reloc(t, o, s, -4, prelinker::relocate::R_PLT32);
    let small = b.build();
    let chunks = prelinker::arena::Chunks::default();
    let mut arena = chunks.arena();
    for len in 0..small.len() {
        let _ = prelinker::prepare::prepare("cut.o", &small[..len], &mut arena);
    }
    let real = std::fs::read(&real_modules()[0]).unwrap();
    // A fixed pseudo-random sequence (xorshift), so failures reproduce.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..4000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut d = real.clone();
        // Half the hits in the ELF header and section table, half anywhere.
        let shoff = u64::from_le_bytes(d[0x28..0x30].try_into().unwrap()) as usize;
        let at = match x % 4 {
            0 => (x >> 8) as usize % 64,
            1 => shoff + (x >> 8) as usize % (d.len() - shoff),
            _ => (x >> 8) as usize % d.len(),
        };
        d[at] = (x >> 40) as u8;
        let _ = prelinker::prepare::prepare("damaged.o", &d, &mut arena);
    }
}

/// A symbol table whose `sh_info` (one past its last local symbol) does not
/// split it into locals and the rest is refused, naming the file, the
/// section and the first symbol on the wrong side (a link would otherwise
/// trust each symbol's binding alone, where other linkers refuse the file).
#[test]
fn a_symbol_table_with_a_wrong_first_global_is_refused() {
    use object::{Object, ObjectSection, ObjectSymbol};
    let mut b = ModBuilder::new("symi");
    let t = b.text;
    b.local("helper", t, 0);
    b.global("exported_fn", t, 0);
    let good = b.build();
    let f = object::File::parse(&*good).unwrap();
    let symtab = f.section_by_name(".symtab").unwrap().index().0;
    let locals = f.symbols().filter(|s| s.is_local()).count() + 1; // and the null symbol
    let count = f.symbols().count() + 1;
    drop(f);
    let shoff = u64::from_le_bytes(good[0x28..0x30].try_into().unwrap()) as usize;
    let info_at = shoff + 64 * symtab + 0x2c;
    assert_eq!(
        u32::from_le_bytes(good[info_at..info_at + 4].try_into().unwrap()) as usize,
        locals,
        "the builder's sh_info"
    );
    let chunks = prelinker::arena::Chunks::default();
    let mut arena = chunks.arena();
    prelinker::prepare::prepare("symi.o", &good, &mut arena).expect("the intact object");
    for (info, want) in [
        (locals - 1, "is local, but its sh_info"),
        (locals + 1, "is not local, but its sh_info"),
        (0, "gives sh_info 0"),
        (count + 1, &format!("but has {count} symbols") as &str),
    ] {
        let mut d = good.clone();
        d[info_at..info_at + 4].copy_from_slice(&(info as u32).to_le_bytes());
        let e = prelinker::prepare::prepare("symi.o", &d, &mut arena).unwrap_err();
        let m = e.to_string();
        assert_eq!(e.kind(), prelinker::ErrorKind::Malformed, "{m}");
        for part in ["symi.o", ".symtab", want] {
            assert!(m.contains(part), "sh_info {info}: `{part}` not in: {m}");
        }
    }
}
