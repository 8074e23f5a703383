//! Reading module files: only the parts the link uses are read (debug
//! information is skipped), a buffer reused from file to file gives the same
//! link as reading every file whole, and an archive or a malformed file is
//! read whole so the parser can say what is wrong.

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

#[test]
fn debug_sections_are_not_read() {
    let mut b = ModBuilder::new("dbg");
    b.section(".debug_info", SectionKind::Debug, &[0x11; 100_000], 1);
    let t = b.text;
    b.global("some_fn", t, 0);
    let data = b.build();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("dbg.o");
    std::fs::write(&p, &data).unwrap();
    let mut buf = vec![0x5a; data.len()];
    read_module(&p, "dbg.o", &mut buf).unwrap();
    assert_eq!(buf.len(), data.len());
    // At most what the first read (the first 16 KiB of the file) and the
    // read of the section table (with up to 16 KiB before it) take along.
    let (d0, d1) = section_range(&data, ".debug_info");
    let read = buf[d0..d1].iter().filter(|&&x| x == 0x11).count();
    assert!(
        read <= 32 << 10,
        "{read} bytes of the debug section were read"
    );
    for name in [".text", ".modinfo", ".symtab", ".strtab"] {
        let (s, e) = section_range(&data, name);
        assert_eq!(buf[s..e], data[s..e], "{name} was not read");
    }
    // The same buffer, now longer than the next file: resized to it.
    let small = ModBuilder::new("small").build();
    let q = dir.path().join("small.o");
    std::fs::write(&q, &small).unwrap();
    read_module(&q, "small.o", &mut buf).unwrap();
    assert_eq!(buf.len(), small.len());
}

#[test]
fn archives_and_junk_are_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let m = ModBuilder::new("nic").build();
    let a = ar(&[("nic.o", &m)]);
    for (name, data) in [("libnic.a", a), ("junk.o", b"hello, world".to_vec())] {
        let p = dir.path().join(name);
        std::fs::write(&p, &data).unwrap();
        let mut buf = vec![0x5a; 7];
        read_module(&p, name, &mut buf).unwrap();
        assert_eq!(buf, data, "{name}");
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
        let new = format!("{:0>width$}", format!("m{i}"), width = len);
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
    for len in 0..small.len() {
        let _ = prelinker::prepare::prepare("cut.o", &small[..len]);
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
        let _ = prelinker::prepare::prepare("damaged.o", &d);
    }
}
