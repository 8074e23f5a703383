//! Host replay of the kernel's boot-time move + relocate, natively: reads a
//! prelinked image's module table and slot bytes, and for every module moves
//! its classes to a 64-byte packing cursor (as if every module were kept)
//! and redoes its recorded relocations there with the kernel's own code
//! (`modtable::table::Table::redo`), timing that against a plain memmove of
//! the same bytes. Prints one JSON object.
//!
//! `cargo run --release -p prelinker --example relocate_replay -- IMAGE [RUNS]`

use modtable::table::Table;
use modtable::{Class, PerClass};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: relocate_replay IMAGE [RUNS]");
        std::process::exit(2);
    };
    let runs: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(201);
    let image = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let k = prelinker::kernel::Kernel::parse(path, &image).unwrap_or_else(|e| panic!("{e}"));
    let area =
        &image[k.modtable.file_off as usize..(k.modtable.file_off + k.modtable.size) as usize];
    let t = Table::parse(area).unwrap_or_else(|e| panic!("{path}: {e}"));
    let h = *t.header();
    // The regions as they are in the image (the slots, as prelinked).
    let region = |c: Class| {
        let a = k.regions[c];
        &image[a.file_off as usize..(a.file_off + a.size) as usize]
    };
    // Where every module goes: packed at 64 bytes (or its own alignment).
    let mut cursor = h.region_base;
    let mut bases: Vec<PerClass<u64>> = Vec::new();
    for i in 0..t.len() {
        let m = t.module(i);
        let mut b = PerClass([0u64; 3]);
        for c in Class::ALL {
            let align = (m.align[c] as u64).max(64);
            let at = if m.size[c] == 0 {
                cursor[c]
            } else {
                cursor[c].div_ceil(align) * align
            };
            b[c] = at;
            cursor[c] = at + m.size[c] as u64;
        }
        bases.push(b);
    }
    let mut dest: PerClass<Vec<u8>> =
        PerClass(Class::ALL.map(|c| vec![0u8; h.region_size[c] as usize]));
    let slot = |m: usize, c: Class| h.region_base[c] + t.module(m).slot_off[c] as u64;
    let moved =
        |m: u16, c: Class| Some(bases[m as usize][c].wrapping_sub(slot(m as usize, c)) as i64);
    let (mut move_ns, mut memmove_ns, mut relocs, mut bytes) = (Vec::new(), Vec::new(), 0u64, 0u64);
    for (i, base) in bases.iter().enumerate() {
        let m = t.module(i);
        bytes += m.size.total() as u64;
        let mut best_move = u128::MAX;
        let mut best_copy = u128::MAX;
        let mut rewritten = 0;
        for _ in 0..runs {
            // Plain memmove of the same bytes.
            let t0 = Instant::now();
            for c in Class::ALL {
                let (from, n) = (m.slot_off[c] as usize, m.size[c] as usize);
                let to = (base[c] - h.region_base[c]) as usize;
                dest[c][to..to + n].copy_from_slice(&region(c)[from..from + n]);
            }
            best_copy = best_copy.min(t0.elapsed().as_nanos());
            // Move + relocate, as the kernel does it.
            let t0 = Instant::now();
            for c in Class::ALL {
                let (from, n) = (m.slot_off[c] as usize, m.size[c] as usize);
                let to = (base[c] - h.region_base[c]) as usize;
                dest[c][to..to + n].copy_from_slice(&region(c)[from..from + n]);
            }
            let [dt, dr, dd] = &mut dest.0;
            let at = |c: Class| (base[c] - h.region_base[c]) as usize;
            let span = |c: Class| at(c)..at(c) + m.size[c] as usize;
            let mut view = PerClass([
                &mut dt[span(Class::Text)],
                &mut dr[span(Class::Rodata)],
                &mut dd[span(Class::Data)],
            ]);
            rewritten = t
                .redo(i, &mut view, moved)
                .unwrap_or_else(|e| panic!("module {i}: {e}"));
            best_move = best_move.min(t0.elapsed().as_nanos());
        }
        relocs += rewritten as u64;
        move_ns.push(best_move as u64);
        memmove_ns.push(best_copy as u64);
    }
    let (mv, mm): (u64, u64) = (move_ns.iter().sum(), memmove_ns.iter().sum());
    println!(
        "{{\"modules\":{},\"bytes\":{bytes},\"relocs\":{relocs},\"runs\":{runs},\"move_relocate_ns\":{mv},\"memmove_ns\":{mm},\"ratio\":{:.3},\"ns_per_reloc\":{:.2}}}",
        t.len(),
        mv as f64 / mm as f64,
        (mv - mm.min(mv)) as f64 / relocs.max(1) as f64
    );
}
