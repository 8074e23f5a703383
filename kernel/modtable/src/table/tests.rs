//! Round trips, the redo against relocating afresh, and corruption.

use super::*;
use crate::{Class, PerClass, RelocKind};
use alloc::string::ToString;
use alloc::vec;

fn header() -> Header {
    Header {
        module_count: 0,
        slot_align: 4096,
        region_base: PerClass([
            0xffff_ffff_8040_0000,
            0xffff_ffff_80c0_0000,
            0xffff_ffff_8140_0000,
        ]),
        region_size: PerClass([2 << 20; 3]),
    }
}

fn records() -> vec::Vec<RelocRecord> {
    vec![
        RelocRecord {
            place_off: 8,
            place_class: Class::Text,
            kind: RelocKind::Pc32,
            target: Target::Module {
                module: 0,
                class: Class::Rodata,
            },
            addend: -4,
        },
        RelocRecord {
            place_off: 0,
            place_class: Class::Data,
            kind: RelocKind::Abs64,
            target: Target::Absolute,
            addend: 0xffff_ffff_8020_1000u64 as i64,
        },
    ]
}

fn entry(name: &str, deps: &[u16], off: u32) -> ModuleEntry {
    ModuleEntry {
        name: name.to_string(),
        deps: deps.to_vec(),
        placement: Placement {
            slot_off: PerClass([off; 3]),
            slot_size: PerClass([4096; 3]),
            size: PerClass([100, 50, 24]),
            align: PerClass([16, 8, 8]),
            bss_size: 8,
            probe_off: 4,
            checksum: 0x1234,
            ..Placement::default()
        },
        relocs: RelocGroups::new(records().iter().map(RelocRecord::field)),
    }
}

#[test]
fn round_trip() {
    let mods = vec![entry("pci", &[], 0), entry("e1000", &[0], 4096)];
    let bytes = build(&header(), &mods);
    let t = Table::parse(&bytes).unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t.header().slot_align, 4096);
    let m1 = t.module(1);
    assert_eq!(t.name(&m1), "e1000");
    assert_eq!(t.deps(&m1).collect::<vec::Vec<_>>(), vec![0]);
    assert_eq!(m1.placement, mods[1].placement);
    assert_eq!(m1.placement.selftest_off, None);
    let fields: vec::Vec<RelocField> = t.fields(&m1).collect();
    assert_eq!(fields.len(), mods[1].relocs.len());
    for r in &records() {
        assert!(fields.contains(&r.field()), "{r:?} missing");
    }
    assert_eq!(t.field_count(&m1), 2);
    // Trailing bytes of the reserved area are ignored.
    let mut area = bytes.clone();
    area.resize(bytes.len() + 4096, 0);
    assert_eq!(Table::parse(&area).unwrap().len(), 2);
}

#[test]
fn redo_after_moving_equals_relocating_at_the_new_addresses() {
    use crate::reloc::{apply, decode};
    let h = header();
    let base = h.region_base;
    // Module 0 (at slot offset 0) and module 1 (at 4096): module 1's text
    // holds a PC32 to its own rodata, a PC32 to module 0's text, an abs64
    // (in data) to its own text, and a PC32 to an absolute address.
    let m = |name: &str, off: u32, relocs: vec::Vec<RelocRecord>| ModuleEntry {
        name: name.to_string(),
        deps: vec::Vec::new(),
        placement: Placement {
            slot_off: PerClass([off; 3]),
            slot_size: PerClass([4096; 3]),
            size: PerClass([64, 64, 64]),
            align: PerClass([16, 8, 8]),
            ..Placement::default()
        },
        relocs: RelocGroups::new(relocs.iter().map(RelocRecord::field)),
    };
    let rec = |place_class, place_off, kind, target, addend| RelocRecord {
        place_off,
        place_class,
        kind,
        target,
        addend,
    };
    let own = |class| Target::Module { module: 1, class };
    let relocs = vec![
        rec(Class::Text, 4, RelocKind::Pc32, own(Class::Rodata), 0x10),
        rec(
            Class::Text,
            12,
            RelocKind::Pc32,
            Target::Module {
                module: 0,
                class: Class::Text,
            },
            8,
        ),
        rec(Class::Data, 0, RelocKind::Abs64, own(Class::Text), 0x20),
        rec(
            Class::Text,
            20,
            RelocKind::Pc32,
            Target::Absolute,
            0xffff_ffff_8020_0000u64 as i64,
        ),
    ];
    let bytes = build(
        &h,
        &[m("a", 0, vec::Vec::new()), m("b", 4096, relocs.clone())],
    );
    let t = Table::parse(&bytes).unwrap();
    // Fields applied at the slots, as the prelinker does.
    let slot = |module: u16, c: Class| base[c] + 4096 * module as u64;
    let target_at = |r: &RelocRecord, at: &dyn Fn(u16, Class) -> u64| match r.target {
        Target::Absolute => r.addend as u64,
        Target::Module { module, class } => at(module, class).wrapping_add(r.addend as u64),
    };
    let mut cls = [[0u8; 64]; 3];
    for r in &relocs {
        let c = r.place_class;
        apply(
            r.kind,
            &mut cls[c.index()],
            slot(1, c),
            r.place_off as usize,
            target_at(r, &slot),
        )
        .unwrap();
    }
    // Both modules move down by different amounts per class.
    let new = |module: u16, c: Class| {
        slot(module, c)
            - [0x1000, 0xf00, 0xf80][c.index()]
            - module as u64 * 0x40 * (c.index() as u64 + 1)
    };
    let [t0, t1, t2] = &mut cls;
    let mut view = PerClass([&mut t0[..], &mut t1[..], &mut t2[..]]);
    let n = t
        .redo(1, &mut view, |module, c| {
            Some(new(module, c).wrapping_sub(slot(module, c)) as i64)
        })
        .unwrap();
    assert_eq!(n, 4);
    for r in &relocs {
        let c = r.place_class;
        let got = decode(r.kind, &cls[c.index()], new(1, c), r.place_off as usize).unwrap();
        assert_eq!(got, target_at(r, &new), "{r:?}");
    }
    // A target that was not kept is an error.
    let [t0, t1, t2] = &mut cls;
    let mut view = PerClass([&mut t0[..], &mut t1[..], &mut t2[..]]);
    let e = t
        .redo(1, &mut view, |module, _| (module == 1).then_some(-64))
        .unwrap_err();
    assert_eq!(e, RedoError::Target(0));
}

#[test]
fn corruption_is_detected() {
    let bytes = build(&header(), &[entry("pci", &[], 0)]);
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        Table::parse(&bad),
        Err(TableError::Checksum { .. })
    ));
    assert_eq!(Table::parse(&[0u8; 256]).unwrap_err(), TableError::NoMagic);
    assert_eq!(
        Table::parse(&bytes[..bytes.len() - 1]).unwrap_err(),
        TableError::OutOfBounds("table size")
    );
}

#[test]
fn forward_dependency_is_rejected() {
    let bytes = build(&header(), &[entry("a", &[1], 0), entry("b", &[], 4096)]);
    assert_eq!(
        Table::parse(&bytes).unwrap_err(),
        TableError::BadModule {
            index: 0,
            what: "dependency is not an earlier module"
        }
    );
}

#[test]
fn a_class_slot_not_aligned_for_its_class_is_rejected() {
    let mut e = entry("b", &[], 64);
    e.placement.align = PerClass([16, 8, 128]);
    assert_eq!(
        Table::parse(&build(&header(), &[e.clone()])).unwrap_err(),
        TableError::BadModule {
            index: 0,
            what: "slot address not aligned for its class"
        }
    );
    e.placement.slot_off = PerClass([64, 64, 128]);
    assert!(Table::parse(&build(&header(), &[e])).is_ok());
}

#[test]
fn record_round_trip_and_unknown_flags() {
    let rec = ModuleRecord {
        name_off: 3,
        name_len: 5,
        deps_start: 1,
        deps_count: 2,
        groups_start: 7,
        groups_count: 9,
        placement: Placement {
            slot_off: PerClass([64, 128, 192]),
            slot_size: PerClass([640, 128, 256]),
            size: PerClass([600, 100, 200]),
            align: PerClass([16, 8, 64]),
            bss_size: 8,
            percpu_off: 64,
            percpu_size: 16,
            probe_off: 4,
            selftest_off: Some(32),
            checksum: 0x0123_4567_89ab_cdef,
            predicted: Some(Prediction::Expunged),
        },
    };
    assert_eq!(ModuleRecord::from_bytes(&rec.to_bytes()), Ok(rec));
    let none = ModuleRecord {
        placement: Placement {
            selftest_off: None,
            predicted: None,
            ..rec.placement
        },
        ..rec
    };
    let b = none.to_bytes();
    assert_eq!(&b[72..76], &NO_ENTRY.to_le_bytes());
    assert_eq!(ModuleRecord::from_bytes(&b), Ok(none));
    for flags in [4u32, FLAG_PREDICTED_KEPT | FLAG_PREDICTED_EXPUNGED] {
        let mut b = rec.to_bytes();
        b[84..88].copy_from_slice(&flags.to_le_bytes());
        assert_eq!(ModuleRecord::from_bytes(&b), Err("unknown flags"));
    }
}

#[test]
fn negative_relocated_values_print_with_a_sign() {
    use crate::reloc::Hex;
    assert_eq!(
        Hex(-0x7fff_ffff_ffff_ffff).to_string(),
        "-0x7fffffffffffffff"
    );
    assert_eq!(Hex(0x10).to_string(), "0x10");
}
