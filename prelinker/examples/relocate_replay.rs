//! Host replay of the kernel's boot-time module phase, natively: reads a
//! prelinked image's module table and slot bytes and, module by module in
//! table order as the kernel's loader does under the `compact` policy,
//! moves the module's classes down to the packing cursors (in place, inside
//! one buffer per class, as the kernel's overlapping copy does), verifies
//! its checksum there and redoes its recorded relocations with the kernel's
//! own code (`modtable::table::Table::redo`). Probes are replaced by
//! a kept set: modules in it advance the cursors, the others are overwritten
//! by the next one (and modules depending on them are skipped unchecked, as
//! at boot). Prints one JSON object.
//!
//! Every run times, from the same pristine bytes, with warm and with cold
//! caches in turn (cold: a buffer twice the last-level cache, at most
//! 256 MiB, is written after the reset):
//! - `phase`: move, checksum and relocate of every module, each step timed;
//!   the checksum is also split into the modules that moved
//!   (`phase_checksum_moved_ns`, reading the copy the move has just
//!   written) and those none of whose bytes moved
//!   (`phase_checksum_unmoved_ns`, reading them where the reset left them:
//!   at the start of each region the cursor is the slot);
//! - `serial phase`: the same, with the serial FNV-1a word chain of table
//!   formats 3 and 4 (`serial_module_checksum`) as the checksum, the
//!   "before" in the same place (only its checksum is recorded);
//! - `memmove`: the moves alone (the in-place downward memmove baseline);
//! - `checksum`: the module checksums alone, in the slots
//!   (`module_checksum`);
//! - `serial_checksum`: the same bytes through the serial chain.
//!
//! `checksum_simd` in the output names the checksum's block loop this CPU
//! ran (`avx2` or `sse2`, `modtable::checksum::simd`).
//!
//! `relocate_replay IMAGE [--kept FILE] [--runs N]`: FILE lists the kept
//! modules, one name a line (the format of `link --expect`); without it the
//! image's own predictions decide, or, if it has none, every module is kept.
//! Figures are medians over the runs (default 21).

use modtable::checksum::{module_checksum, serial_module_checksum};
use modtable::table::{Prediction, Table};
use modtable::{Class, PerClass};
use reclaim::pack::Cursors;
use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::Instant;

fn usage() -> ! {
    eprintln!("usage: relocate_replay IMAGE [--kept FILE] [--runs N]");
    std::process::exit(2);
}

/// The last-level cache size from sysfs, or 32 MiB if it cannot be read.
fn llc_bytes() -> usize {
    let mut best = 0;
    for i in 0..8 {
        let p = format!("/sys/devices/system/cpu/cpu0/cache/index{i}/size");
        let Ok(s) = std::fs::read_to_string(p) else {
            continue;
        };
        let s = s.trim();
        let (n, mul) = match s.strip_suffix('K') {
            Some(n) => (n, 1 << 10),
            None => match s.strip_suffix('M') {
                Some(n) => (n, 1 << 20),
                None => (s, 1),
            },
        };
        best = best.max(n.parse::<usize>().unwrap_or(0) * mul);
    }
    if best == 0 { 32 << 20 } else { best }
}

/// Step times of one pass, summed over modules (ns).
#[derive(Clone, Copy, Default)]
struct Pass {
    checksum: u64,
    moves: u64,
    relocate: u64,
    /// The checksum's share for the modules none of whose bytes moved.
    checksum_unmoved: u64,
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else { usage() };
    let mut kept_file = None;
    let mut runs = 21usize;
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--kept" => kept_file = Some(it.next().unwrap_or_else(|| usage()).clone()),
            "--runs" => {
                runs = it
                    .next()
                    .and_then(|r| r.parse().ok())
                    .filter(|&r| r > 0)
                    .unwrap_or_else(|| usage())
            }
            _ => usage(),
        }
    }
    let image = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let k = prelinker::kernel::Kernel::parse(path, &image).unwrap_or_else(|e| panic!("{e}"));
    let area =
        &image[k.modtable.file_off as usize..(k.modtable.file_off + k.modtable.size) as usize];
    let t = Table::parse(area).unwrap_or_else(|e| panic!("{path}: {e}"));
    let h = *t.header();
    let n = t.len();
    let recs: Vec<_> = (0..n).map(|i| t.module(i)).collect();
    let kept_set: Vec<bool> = match &kept_file {
        Some(f) => {
            let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{f}: {e}"));
            let e =
                prelinker::expect::Expectation::parse(f, &text).unwrap_or_else(|e| panic!("{e}"));
            let names: BTreeSet<&str> = e.kept.iter().map(String::as_str).collect();
            recs.iter().map(|m| names.contains(t.name(m))).collect()
        }
        None if recs.iter().any(|m| m.placement.predicted.is_some()) => recs
            .iter()
            .map(|m| m.placement.predicted == Some(Prediction::Kept))
            .collect(),
        None => vec![true; n],
    };
    let deps: Vec<Vec<usize>> = recs
        .iter()
        .map(|m| t.deps(m).map(usize::from).collect())
        .collect();
    // The regions as prelinked.
    let pristine: PerClass<Vec<u8>> = PerClass(Class::ALL.map(|c| {
        let a = k.regions[c];
        image[a.file_off as usize..(a.file_off + a.size) as usize].to_vec()
    }));
    let mut work: PerClass<Vec<u8>> = pristine.clone();
    let off = |c: Class, addr: u64| (addr - h.region_base[c]) as usize;
    let slot = |i: usize| {
        PerClass(Class::ALL.map(|c| h.region_base[c] + recs[i].placement.slot_off[c] as u64))
    };

    // What the loader does, decided once: who is checked, where each goes.
    let mut checked = vec![false; n];
    let mut kept = vec![false; n];
    let mut base: Vec<PerClass<u64>> = (0..n).map(slot).collect();
    let mut cursors = Cursors::new(h.region_base);
    for i in 0..n {
        if deps[i].iter().any(|&d| !kept[d]) {
            continue;
        }
        checked[i] = true;
        let in_place = recs[i].placement.predicted == Some(Prediction::Expunged);
        for c in Class::ALL {
            if !in_place {
                base[i][c] = cursors.place(
                    c,
                    recs[i].placement.size[c] as u64,
                    recs[i].placement.align[c] as u64,
                );
            }
        }
        if kept_set[i] {
            kept[i] = true;
            for c in Class::ALL {
                cursors.commit(c, base[i][c], recs[i].placement.size[c] as u64);
            }
        }
    }
    let checked_bytes: u64 = (0..n)
        .filter(|&i| checked[i])
        .map(|i| recs[i].placement.size.total() as u64)
        .sum();
    // Checked modules with bytes that move; the others are checked where
    // they lie, and their checksum reads the bytes where the reset left
    // them, not a copy the move has just written.
    let is_moved: Vec<bool> = (0..n)
        .map(|i| {
            checked[i]
                && Class::ALL
                    .iter()
                    .any(|&c| base[i][c] != slot(i)[c] && recs[i].placement.size[c] > 0)
        })
        .collect();
    let unmoved: Vec<usize> = (0..n).filter(|&i| checked[i] && !is_moved[i]).collect();
    let bytes_moved: u64 = (0..n)
        .filter(|&i| is_moved[i])
        .map(|i| {
            Class::ALL
                .iter()
                .filter(|&&c| base[i][c] != slot(i)[c])
                .map(|&c| recs[i].placement.size[c] as u64)
                .sum::<u64>()
        })
        .sum();
    let unmoved_bytes: u64 = unmoved
        .iter()
        .map(|&i| recs[i].placement.size.total() as u64)
        .sum();

    // Only the regions' used prefix is reset between passes, so a warm
    // pass finds the module bytes where the reset left them (in cache).
    let used_end = PerClass(Class::ALL.map(|c| {
        recs.iter()
            .map(|m| (m.placement.slot_off[c] + m.placement.slot_size[c]) as usize)
            .max()
            .unwrap_or(0)
    }));
    let llc = llc_bytes();
    let evict_bytes = (2 * llc).min(256 << 20);
    let mut evict = vec![0u8; evict_bytes];
    let mut evict_round = 0u8;
    let mut reset = |work: &mut PerClass<Vec<u8>>, cold: bool| {
        for c in Class::ALL {
            let e = used_end[c];
            work[c][..e].copy_from_slice(&pristine[c][..e]);
        }
        if cold {
            // Write then read a buffer twice the last-level cache (at most
            // 256 MiB), so that the work bytes and the table leave it.
            evict_round = evict_round.wrapping_add(1);
            evict.fill(evict_round);
            let s: u64 = evict.chunks(4096).map(|p| p[0] as u64).sum();
            black_box(s);
        }
    };
    // Module `i`'s checksum at `at` (its slot, or where it was moved).
    let csum = |work: &PerClass<Vec<u8>>, i: usize, at: PerClass<u64>, serial: bool| {
        let parts = Class::ALL.map(|c| {
            let o = off(c, at[c]);
            &work[c][o..o + recs[i].placement.size[c] as usize]
        });
        if serial {
            serial_module_checksum(parts)
        } else {
            module_checksum(parts)
        }
    };
    let do_move = |work: &mut PerClass<Vec<u8>>, i: usize| {
        for c in Class::ALL {
            let (from, to) = (off(c, slot(i)[c]), off(c, base[i][c]));
            let len = recs[i].placement.size[c] as usize;
            if len > 0 && from != to {
                work[c].copy_within(from..from + len, to);
            }
        }
    };
    let do_redo = |work: &mut PerClass<Vec<u8>>, i: usize| -> usize {
        let [wt, wr, wd] = &mut work.0;
        let span = |c: Class| {
            let o = off(c, base[i][c]);
            o..o + recs[i].placement.size[c] as usize
        };
        let mut view = PerClass([
            &mut wt[span(Class::Text)],
            &mut wr[span(Class::Rodata)],
            &mut wd[span(Class::Data)],
        ]);
        let moved = |m: u16, c: Class| {
            let m = m as usize;
            (m == i || kept[m]).then(|| base[m][c].wrapping_sub(slot(m)[c]) as i64)
        };
        t.redo(i, &mut view, moved)
            .unwrap_or_else(|e| panic!("module {}: {e}", t.name(&recs[i]))) as usize
    };

    // Check the checksums once (the replay must see what the kernel sees).
    for i in (0..n).filter(|&i| checked[i]) {
        assert_eq!(
            csum(&work, i, slot(i), false),
            recs[i].placement.checksum,
            "module {}: checksum does not match the table",
            t.name(&recs[i])
        );
    }

    let mut samples: [[Vec<u64>; 10]; 2] = Default::default();
    let mut relocs = 0usize;
    // The wide checksums of the phase, where the moves put the modules.
    let mut at_base = vec![0u64; n];
    for _ in 0..runs {
        for (v, cold) in [(0, false), (1, true)] {
            // The module phase: move, checksum, relocate, module by module,
            // with the wide checksum, then with the serial one.
            for serial in [false, true] {
                reset(&mut work, cold);
                let mut p = Pass::default();
                relocs = 0;
                for i in (0..n).filter(|&i| checked[i]) {
                    let t0 = Instant::now();
                    do_move(&mut work, i);
                    let t1 = Instant::now();
                    at_base[i] = black_box(csum(&work, i, base[i], serial));
                    let t2 = Instant::now();
                    relocs += do_redo(&mut work, i);
                    let t3 = Instant::now();
                    p.moves += (t1 - t0).as_nanos() as u64;
                    p.checksum += (t2 - t1).as_nanos() as u64;
                    if !is_moved[i] {
                        p.checksum_unmoved += (t2 - t1).as_nanos() as u64;
                    }
                    p.relocate += (t3 - t2).as_nanos() as u64;
                }
                if serial {
                    samples[v][7].push(p.checksum);
                } else {
                    // What the kernel checks: each moved copy's checksum.
                    for i in (0..n).filter(|&i| checked[i]) {
                        assert_eq!(
                            at_base[i],
                            recs[i].placement.checksum,
                            "module {}: checksum after the move does not match the table",
                            t.name(&recs[i])
                        );
                    }
                    samples[v][0].push(p.checksum);
                    samples[v][8].push(p.checksum - p.checksum_unmoved);
                    samples[v][9].push(p.checksum_unmoved);
                    samples[v][1].push(p.moves);
                    samples[v][2].push(p.relocate);
                    samples[v][3].push(p.moves + p.relocate);
                }
            }
            // The moves alone: the memmove baseline.
            reset(&mut work, cold);
            let t0 = Instant::now();
            for i in (0..n).filter(|&i| checked[i]) {
                do_move(&mut work, i);
            }
            samples[v][4].push(t0.elapsed().as_nanos() as u64);
            // The checksums alone in the slots, wide then serial, each from
            // a reset.
            for (s, serial) in [(5, false), (6, true)] {
                reset(&mut work, cold);
                let t0 = Instant::now();
                for i in (0..n).filter(|&i| checked[i]) {
                    black_box(csum(&work, i, slot(i), serial));
                }
                samples[v][s].push(t0.elapsed().as_nanos() as u64);
            }
        }
    }
    let kib = checked_bytes as f64 / 1024.0;
    let moved_kib = (checked_bytes - unmoved_bytes) as f64 / 1024.0;
    let variant = |v: usize| {
        let m: Vec<u64> = samples[v].iter().map(|s| median(s.clone())).collect();
        serde_json::json!({
            "checksum_ns": m[0],
            "move_ns": m[1],
            "relocate_ns": m[2],
            "move_relocate_ns": m[3],
            "memmove_ns": m[4],
            "checksum_alone_ns": m[5],
            "serial_checksum_ns": m[6],
            "move_relocate_over_memmove": if m[4] > 0 { m[3] as f64 / m[4] as f64 } else { f64::NAN },
            "serial_phase_checksum_ns": m[7],
            "phase_checksum_ns_per_kib": m[0] as f64 / kib,
            "phase_serial_checksum_ns_per_kib": m[7] as f64 / kib,
            "phase_checksum_speedup": m[7] as f64 / m[0].max(1) as f64,
            "phase_checksum_moved_ns": m[8],
            "phase_checksum_moved_ns_per_kib": m[8] as f64 / moved_kib,
            "phase_checksum_unmoved_ns": m[9],
            "checksum_ns_per_kib": m[5] as f64 / kib,
            "serial_checksum_ns_per_kib": m[6] as f64 / kib,
            "checksum_speedup": m[6] as f64 / m[5].max(1) as f64,
            "ns_per_reloc": if relocs > 0 { (m[3].saturating_sub(m[4])) as f64 / relocs as f64 } else { 0.0 },
            "samples": {
                "checksum_ns": samples[v][0], "move_ns": samples[v][1],
                "relocate_ns": samples[v][2], "memmove_ns": samples[v][4],
                "checksum_alone_ns": samples[v][5], "serial_checksum_ns": samples[v][6],
                "serial_phase_checksum_ns": samples[v][7],
                "phase_checksum_moved_ns": samples[v][8],
                "phase_checksum_unmoved_ns": samples[v][9],
            },
        })
    };
    let out = serde_json::json!({
        "image": path,
        "modules": n,
        "checked": checked.iter().filter(|&&c| c).count(),
        "kept": kept.iter().filter(|&&c| c).count(),
        "moved_modules": is_moved.iter().filter(|&&m| m).count(),
        "bytes": checked_bytes,
        "bytes_moved": bytes_moved,
        "unmoved_modules": unmoved.len(),
        "unmoved_bytes": unmoved_bytes,
        "relocs": relocs,
        "runs": runs,
        "llc_bytes": llc,
        "evict_bytes": evict_bytes,
        "checksum_simd": modtable::checksum::simd().name(),
        "warm": variant(0),
        "cold": variant(1),
    });
    println!("{out}");
}
