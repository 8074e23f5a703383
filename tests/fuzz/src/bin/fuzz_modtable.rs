//! Fuzzes the kernel's module table and export list parsers
//! (`modtable::table::Table::parse`, `modtable::exports::ExportList::parse`)
//! and, on every table that parses, the redo of each module's relocations
//! with arbitrary displacements, on mutations of real tables taken from the
//! prelinked images in `build/` (with their checksums recomputed half of the
//! time, so that mutations get past the checksum). `FUZZ_SECONDS` (default
//! 20), `FUZZ_SEED`.

use modtable::table::Table;
use modtable::{Class, PerClass};

fn main() {
    let build = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../build");
    let mut seeds = Vec::new();
    for img in ["image.elf", "test-image.elf"] {
        let p = build.join(img);
        let data = std::fs::read(&p)
            .unwrap_or_else(|e| panic!("{}: {e} (run `make image test-image`)", p.display()));
        let area = prelinker::kernel::Kernel::modtable_area(img, &data).expect("modtable");
        let bytes = &data[area.file_off as usize..(area.file_off + area.size) as usize];
        let t = Table::parse(bytes).expect("a valid table");
        let end = modtable::exports::offset_after(t.size()) + 64 * 1024;
        seeds.push(bytes[..end.min(bytes.len())].to_vec());
    }
    let seed = fuzz_targets::seed();
    let parsed = std::sync::atomic::AtomicU64::new(0);
    let r = fuzz_targets::run("modtable", &seeds, fuzz_targets::time(20), seed, &|input| {
        let mut v = input.to_vec();
        // Half of the inputs get a valid checksum, to reach the validation.
        if v.len() >= 128 && v[0] & 1 == 0 {
            fix_checksum(&mut v);
        }
        if let Ok(t) = Table::parse(&v) {
            parsed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let _ = modtable::exports::ExportList::parse(
                &v[modtable::exports::offset_after(t.size()).min(v.len())..],
            );
            for i in 0..t.len() {
                let m = t.module(i);
                let mut bufs: [Vec<u8>; 3] =
                    Class::ALL.map(|c| vec![0u8; m.placement.size[c] as usize]);
                let [a, b, c] = &mut bufs;
                let mut bytes = PerClass([&mut a[..], &mut b[..], &mut c[..]]);
                let _ = t.redo(i, &mut bytes, |module, class| {
                    Some(((module as i64) << 12) - ((class as i64) << 6))
                });
                let _ = t.name(&m);
                let _ = t.deps(&m).count();
            }
        }
    });
    match r {
        Ok(n) => println!(
            "fuzz_modtable: {n} inputs ({} tables parsed and redone), no crash (seed {seed})",
            parsed.into_inner()
        ),
        Err(p) => {
            eprintln!(
                "fuzz_modtable: CRASH (seed {seed}); input kept in {}",
                p.display()
            );
            std::process::exit(1);
        }
    }
}

/// Recomputes the table checksum of `v` in place (as the writer does), if
/// its declared size fits.
fn fix_checksum(v: &mut [u8]) {
    let size = u32::from_le_bytes(v[20..24].try_into().unwrap()) as usize;
    if size < modtable::table::HEADER_SIZE || size > v.len() {
        return;
    }
    let sum = modtable::table::checksum_of(&v[..size]);
    v[112..120].copy_from_slice(&sum.to_le_bytes());
}
