//! Link tests on synthetic objects: the value written for every relocation
//! type, overflow, layout, dependency order, exports, and the set of
//! relocations recorded for the kernel.

mod common;

use common::*;
use modtable::reloc::decode;
use modtable::table::{RelocField, RelocRecord, Table, Target};
use modtable::{Class, RelocKind};
use object::SectionKind;
use prelinker::ErrorKind;
use prelinker::kernel::Kernel;
use prelinker::relocate::*;
use prelinker::synth::{KernelSpec, export_addr};

fn table(out: &prelinker::LinkOutput) -> Table<'_> {
    let k = Kernel::parse("image", &out.image).unwrap();
    let a = k.modtable;
    Table::parse(&out.image[a.file_off as usize..(a.file_off + a.size) as usize]).unwrap()
}

#[test]
fn every_relocation_type_writes_the_right_value() {
    let mut b = ModBuilder::new("relocs");
    let ro = b.section(".rodata.x", SectionKind::ReadOnlyData, &[0x11; 32], 8);
    let da = b.section(".data.x", SectionKind::Data, &[0x22; 16], 8);
    let ro_s = b.local("ro", ro, 0);
    let da_s = b.local("dat", da, 0);
    let small = b.absolute("small", 0x1234);
    let (kl, ka, kf, mc, ms) = (
        b.undef("kapi_log"),
        b.undef("kapi_alloc"),
        b.undef("kapi_free"),
        b.undef("memcpy"),
        b.undef("memset"),
    );
    let t = b.text;
    let o64 = b.code(&[0; 8]);
    b.reloc(t, o64, ro_s, 8, R_64);
    let o32s = b.code(&[0; 4]);
    b.reloc(t, o32s, kl, 0, R_32S);
    let o32 = b.code(&[0; 4]);
    b.reloc(t, o32, small, 4, R_32);
    let opc = b.code(&[0; 4]);
    b.reloc(t, opc, da_s, -4, R_PC32);
    let oplt = b.code(&[0; 4]);
    b.reloc(t, oplt, ka, -4, R_PLT32);
    let opc64 = b.code(&[0; 8]);
    b.reloc(t, opc64, ro_s, 16, R_PC64);
    // mov memcpy@GOTPCREL(%rip), %rax -> lea
    let omov = b.code(&[0x48, 0x8b, 0x05, 0, 0, 0, 0]) + 3;
    b.reloc(t, omov, mc, -4, R_REX_GOTPCRELX);
    // call *memset@GOTPCREL(%rip) -> addr32 call
    let ocall = b.code(&[0xff, 0x15, 0, 0, 0, 0]) + 2;
    b.reloc(t, ocall, ms, -4, R_GOTPCRELX);
    // jmp *dat@GOTPCREL(%rip) -> jmp; nop
    let ojmp = b.code(&[0xff, 0x25, 0, 0, 0, 0]) + 2;
    b.reloc(t, ojmp, da_s, -4, R_GOTPCRELX);
    // add kapi_free@GOTPCREL(%rip), %rax: not relaxed, through the GOT
    let oadd = b.code(&[0x48, 0x03, 0x05, 0, 0, 0, 0]) + 3;
    b.reloc(t, oadd, kf, -4, R_REX_GOTPCRELX);
    // plain GOTPCREL (twice the same target: one entry)
    let og1 = b.code(&[0x48, 0x8b, 0x05, 0, 0, 0, 0]) + 3;
    b.reloc(t, og1, mc, -4, R_GOTPCREL);
    let og2 = b.code(&[0x48, 0x8b, 0x0d, 0, 0, 0, 0]) + 3;
    b.reloc(t, og2, mc, -4, R_GOTPCREL);
    // GOTPCRELX with an addend other than -4: not relaxable
    let oodd = b.code(&[0x8b, 0x05, 0, 0, 0, 0]) + 2;
    b.reloc(t, oodd, ro_s, 0, R_GOTPCRELX);

    let spec = KernelSpec::default();
    let out = link(vec![input("relocs.o", b.build())]).unwrap();
    let m = &out.plan.modules[0];
    let text = class_bytes(&spec, &out, 0, Class::Text);
    let rodata = class_bytes(&spec, &out, 0, Class::Rodata);
    let ta = m.addr[Class::Text];
    let (ra, dta) = (m.addr[Class::Rodata], m.addr[Class::Data]);
    let at = |k: RelocKind, off: u64| decode(k, text, ta, off as usize).unwrap();
    assert_eq!(at(RelocKind::Abs64, o64), ra + 8);
    assert_eq!(at(RelocKind::Abs32S, o32s), export_addr("kapi_log"));
    assert_eq!(at(RelocKind::Abs32, o32), 0x1238);
    // PC32 with addend -4: the field holds S - 4 - P.
    assert_eq!(at(RelocKind::Pc32, opc), dta - 4);
    assert_eq!(at(RelocKind::Pc32, oplt), export_addr("kapi_alloc") - 4);
    assert_eq!(at(RelocKind::Pc64, opc64), ra + 16);
    // Relaxed forms.
    let o = omov as usize;
    assert_eq!(&text[o - 3..o], &[0x48, 0x8d, 0x05]);
    assert_eq!(at(RelocKind::Pc32, omov), export_addr("memcpy") - 4);
    let o = ocall as usize;
    assert_eq!(&text[o - 2..o], &[0x67, 0xe8]);
    assert_eq!(at(RelocKind::Pc32, ocall), export_addr("memset") - 4);
    let o = ojmp as usize;
    assert_eq!(text[o - 2], 0xe9);
    assert_eq!(text[o + 3], 0x90);
    // jmp rel32 at o-1: next instruction at o+3, so the destination is dat.
    let rel = i32::from_le_bytes(text[o - 1..o + 3].try_into().unwrap());
    assert_eq!((ta + o as u64 + 3).wrapping_add(rel as i64 as u64), dta);
    // GOT: appended at the end of rodata, 8-aligned, one entry per target.
    assert_eq!(m.got_entries, Some(3));
    assert_eq!(m.placement.size[Class::Rodata], 32 + 3 * 8);
    let got = |i: usize| u64::from_le_bytes(rodata[32 + 8 * i..40 + 8 * i].try_into().unwrap());
    assert_eq!(
        [got(0), got(1), got(2)],
        [export_addr("kapi_free"), export_addr("memcpy"), ra]
    );
    assert_eq!(&text[oadd as usize - 3..oadd as usize], &[0x48, 0x03, 0x05]);
    assert_eq!(at(RelocKind::Pc32, oadd), ra + 32 - 4);
    assert_eq!(at(RelocKind::Pc32, og1), ra + 40 - 4);
    assert_eq!(at(RelocKind::Pc32, og2), ra + 40 - 4);
    assert_eq!(&text[oodd as usize - 2..oodd as usize], &[0x8b, 0x05]);
    assert_eq!(at(RelocKind::Pc32, oodd), ra + 48);
    // The checksum in the table is the checksum of the used bytes.
    let tb = table(&out);
    let data = class_bytes(&spec, &out, 0, Class::Data);
    assert_eq!(
        tb.module(0).placement.checksum,
        modtable::checksum::module_checksum([text, rodata, data])
    );
}

fn overflow_case(
    sym: impl FnOnce(&mut ModBuilder) -> object::write::SymbolId,
    r_type: u32,
    addend: i64,
) -> prelinker::Error {
    let mut b = ModBuilder::new("ovf");
    let s = sym(&mut b);
    let t = b.text;
    let o = b.code(&[0; 4]);
    b.reloc(t, o, s, addend, r_type);
    link(vec![input("ovf.o", b.build())]).unwrap_err()
}

#[test]
fn relocation_overflow_is_rejected() {
    let e = overflow_case(|b| b.absolute("low_thing", 0x1000_0000_0000), R_PC32, -4);
    assert_eq!(e.kind(), ErrorKind::RelocationOverflow, "{e}");
    for want in [
        "ovf.o",
        "R_X86_64_PC32",
        "section .text",
        "offset 0x10",
        "`low_thing`",
    ] {
        assert!(e.message().contains(want), "{want} missing in: {e}");
    }
    let e = overflow_case(|b| b.undef("kapi_log"), R_32, 0);
    assert_eq!(e.kind(), ErrorKind::RelocationOverflow, "{e}");
    assert!(
        e.message().contains("R_X86_64_32 ") && e.message().contains("kapi_log"),
        "{e}"
    );
    let e = overflow_case(|b| b.absolute("two_gib", 0x8000_0000), R_32S, 0);
    assert_eq!(e.kind(), ErrorKind::RelocationOverflow, "{e}");
    // The same relocations with values that fit are fine.
    let mut b = ModBuilder::new("fits");
    let s = b.absolute("fits_32", 0xffff_fff0);
    let t = b.text;
    let o = b.code(&[0; 4]);
    b.reloc(t, o, s, 0xf, R_32);
    link(vec![input("fits.o", b.build())]).unwrap();
}

#[test]
fn layout_inside_slots() {
    let mut b = ModBuilder::new("lay");
    let tb = b.section(".text.b", SectionKind::Text, &[0x90; 5], 1);
    let tc = b.section(".text.c", SectionKind::Text, &[0x90; 8], 64);
    b.section(".rodata.a", SectionKind::ReadOnlyData, &[1, 2, 3], 1);
    b.section(
        ".data.rel.ro.x",
        SectionKind::ReadOnlyDataWithRel,
        &[4; 8],
        8,
    );
    let bz = b.bss(".bss.z", 10, 4);
    b.section(".data.y", SectionKind::Data, &[5; 4], 4);
    b.bss(".bss.w", 6, 8);
    b.section(".comment", SectionKind::OtherString, b"not placed\0", 1);
    let _ = (tb, tc, bz);
    let m2 = ModBuilder::new("second");
    let spec = KernelSpec::default();
    let out = link(vec![
        input("lay.o", b.build()),
        input("second.o", m2.build()),
    ])
    .unwrap();
    let m = &out.plan.modules[0];
    assert_eq!(m.placement.size.0, [72, 16, 22]);
    assert_eq!(m.placement.align.0, [64, 8, 8]);
    assert_eq!(m.placement.bss_size, 18);
    assert_eq!(m.placement.slot_size.0, [4096; 3]);
    let text = class_bytes(&spec, &out, 0, Class::Text);
    assert_eq!(&text[16..21], &[0x90; 5]);
    assert_eq!(&text[21..64], &[0xcc; 43][..], "text padding is int3");
    assert_eq!(&text[64..72], &[0x90; 8]);
    let ro = class_bytes(&spec, &out, 0, Class::Rodata);
    assert_eq!(ro, &[1, 2, 3, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4]);
    let d = class_bytes(&spec, &out, 0, Class::Data);
    assert_eq!(
        d,
        &[
            5, 5, 5, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        ]
    );
    // Where each section went, as the plan (and its JSON) tells a debugger.
    let at = |name: &str| {
        let s = m
            .sections
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} not in the plan: {:?}", m.sections));
        (s.class, s.offset, s.size)
    };
    assert_eq!(at(".text.b"), (Class::Text, 16, 5));
    assert_eq!(at(".text.c"), (Class::Text, 64, 8));
    assert_eq!(at(".rodata.a"), (Class::Rodata, 0, 3));
    assert_eq!(at(".data.rel.ro.x"), (Class::Rodata, 8, 8));
    assert_eq!(at(".data.y"), (Class::Data, 0, 4));
    assert_eq!(at(".bss.z"), (Class::Data, 4, 10));
    assert_eq!(at(".bss.w"), (Class::Data, 16, 6));
    assert!(
        !m.sections
            .iter()
            .any(|s| s.name == ".comment" || s.name == ".modinfo"),
        "unplaced sections are not listed: {:?}",
        m.sections
    );
    let j = &out.plan.to_json()["modules"][0]["sections"];
    assert!(
        j.as_array().unwrap().iter().any(|s| s["name"] == ".bss.w"
            && s["class"] == "data"
            && s["offset"] == 16
            && s["size"] == 6),
        "{j}"
    );
    let m2 = &out.plan.modules[1];
    assert_eq!(
        m2.placement.slot_off.0,
        [4096, 4096, 4096],
        "an empty class takes no slot"
    );
    assert_eq!(m2.placement.slot_size.0, [4096, 0, 0]);
    assert_eq!(
        m2.addr[Class::Text],
        out.plan.regions[Class::Text].addr + 4096
    );

    // Smaller slot alignment; a class aligned more than the slots starts aligned.
    let first = ModBuilder::new("first");
    let mut b = ModBuilder::new("big_align");
    b.section(".text.c", SectionKind::Text, &[0x90; 8], 64);
    let out = link_with(
        &spec,
        vec![input("first.o", first.build()), input("b.o", b.build())],
        16,
    )
    .unwrap();
    assert_eq!(out.plan.modules[0].placement.slot_size[Class::Text], 16);
    assert_eq!(out.plan.modules[1].placement.slot_off[Class::Text], 64);
    assert_eq!(out.plan.modules[1].placement.slot_size[Class::Text], 80);
    let t = table(&out);
    assert_eq!(t.header().slot_align, 16);
    assert_eq!(t.module(1).placement.slot_off.0[0], 64);
}

/// A class aligned more than the region's start is placed at an address
/// with that alignment, not just at an offset with it: the regions begin
/// right after the kernel's own bytes, 64-byte aligned.
#[test]
fn class_alignment_holds_for_the_address() {
    let spec = KernelSpec {
        region_base: Some(prelinker::synth::KERNEL_BASE + 0x40_0000 + 0x40),
        ..KernelSpec::default()
    };
    let first = ModBuilder::new("first");
    let mut b = ModBuilder::new("page_aligned");
    b.section(".text.p", SectionKind::Text, &[0x90; 8], 4096);
    b.section(".rodata.p", SectionKind::ReadOnlyData, &[1; 8], 4096);
    let out = link_with(
        &spec,
        vec![input("first.o", first.build()), input("p.o", b.build())],
        64,
    )
    .unwrap();
    let m = &out.plan.modules[1];
    for c in [Class::Text, Class::Rodata] {
        assert_eq!(m.addr[c] % 4096, 0, "{c:?} at {:#x}", m.addr[c]);
        assert_eq!(
            m.addr[c],
            out.plan.regions[c].addr + u64::from(m.placement.slot_off[c])
        );
    }
    assert_eq!(out.plan.regions[Class::Text].addr % 4096, 0x40);
}

#[test]
fn region_overflow_says_how_much_is_needed() {
    let spec = KernelSpec {
        region_size: modtable::PerClass([8192, 4096, 4096]),
        ..Default::default()
    };
    let mut b = ModBuilder::new("huge");
    b.section(".text.big", SectionKind::Text, &vec![0x90; 9000], 16);
    let e = link_with(&spec, vec![input("huge.o", b.build())], 4096).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RegionOverflow);
    assert!(
        e.message().contains("text region")
            && e.message().contains("12288")
            && e.message().contains("8192"),
        "{e}"
    );
}

fn pci_and_nic() -> (Vec<u8>, Vec<u8>) {
    let mut pci = ModBuilder::new("pci")
        .export("pci_read")
        .export("pci_table");
    let f = pci.code(&[0xc3]);
    let t = pci.text;
    pci.global("pci_read", t, f);
    let d = pci.section(".data.pci", SectionKind::Data, &[0; 16], 8);
    pci.global("pci_table", d, 8);
    let mut nic = ModBuilder::new("nic").depends("pci");
    let pr = nic.undef("pci_read");
    let pt = nic.undef("pci_table");
    let t = nic.text;
    let o = nic.code(&[0xe8, 0, 0, 0, 0]) + 1;
    nic.reloc(t, o, pr, -4, R_PLT32);
    let d = nic.section(".data.nic", SectionKind::Data, &[0; 8], 8);
    nic.reloc(d, 0, pt, 0, R_64);
    (pci.build(), nic.build())
}

#[test]
fn dependencies_first_and_exports_resolve() {
    let (pci, nic) = pci_and_nic();
    let uart = ModBuilder::new("uart").build();
    let out = link(vec![
        input("nic.o", nic),
        input("uart.o", uart),
        input("pci.o", pci),
    ])
    .unwrap();
    let names: Vec<&str> = out.plan.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["uart", "pci", "nic"]);
    let spec = KernelSpec::default();
    let (pm, nm) = (&out.plan.modules[1], &out.plan.modules[2]);
    let text = class_bytes(&spec, &out, 2, Class::Text);
    assert_eq!(
        decode(RelocKind::Pc32, text, nm.addr[Class::Text], 17).unwrap(),
        pm.addr[Class::Text] + 16 - 4
    );
    let data = class_bytes(&spec, &out, 2, Class::Data);
    assert_eq!(
        decode(RelocKind::Abs64, data, nm.addr[Class::Data], 0).unwrap(),
        pm.addr[Class::Data] + 8
    );
    let t = table(&out);
    let m = t.module(2);
    assert_eq!(t.deps(&m).collect::<Vec<_>>(), [1]);
    let recs: Vec<RelocField> = t.fields(&m).collect();
    assert!(recs.contains(&RelocField {
        place_off: 17,
        place_class: Class::Text,
        kind: RelocKind::Pc32,
        target: Target::Module {
            module: 1,
            class: Class::Text
        },
    }));
    assert!(recs.contains(&RelocField {
        place_off: 0,
        place_class: Class::Data,
        kind: RelocKind::Abs64,
        target: Target::Module {
            module: 1,
            class: Class::Data
        },
    }));
}

#[test]
fn undeclared_dependency_is_rejected() {
    let (pci, _) = pci_and_nic();
    let mut nic = ModBuilder::new("nic");
    let pr = nic.undef("pci_read");
    let t = nic.text;
    let o = nic.code(&[0xe8, 0, 0, 0, 0]) + 1;
    nic.reloc(t, o, pr, -4, R_PLT32);
    let e = link(vec![input("pci.o", pci), input("nic.o", nic.build())]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UndeclaredDependency);
    assert!(
        e.message().contains("nic.o")
            && e.message().contains("pci_read")
            && e.message().contains("depends=pci"),
        "{e}"
    );
}

#[test]
fn recorded_relocations_are_exactly_those_that_can_change() {
    let mut b = ModBuilder::new("rec");
    let ro = b.section(".rodata.r", SectionKind::ReadOnlyData, &[0; 16], 8);
    let rr = b.section(
        ".data.rel.ro.r",
        SectionKind::ReadOnlyDataWithRel,
        &[0; 8],
        8,
    );
    let da = b.section(".data.d", SectionKind::Data, &[0; 24], 8);
    let ro_s = b.local("ro", ro, 0);
    let da_s = b.local("dat", da, 0);
    let f = b.code(&[0xc3]);
    let t = b.text;
    let fn_s = b.local("f", t, f);
    let kl = b.undef("kapi_log");
    // 17: PC32 text -> text (same module, same class): skipped.
    let o1 = b.code(&[0; 4]);
    b.reloc(t, o1, fn_s, -4, R_PC32);
    // 21: PC32 text -> rodata: recorded.
    let o2 = b.code(&[0; 4]);
    b.reloc(t, o2, ro_s, 4, R_PC32);
    // data 0: abs64 -> kernel: skipped.
    b.reloc(da, 0, kl, 0, R_64);
    // 25: PLT32 -> kernel: recorded absolute.
    let o3 = b.code(&[0; 4]);
    b.reloc(t, o3, kl, -4, R_PLT32);
    // data 8: abs64 -> own text: recorded.
    b.reloc(da, 8, fn_s, 2, R_64);
    // 29: 32S -> own data: recorded.
    let o4 = b.code(&[0; 4]);
    b.reloc(t, o4, da_s, 16, R_32S);
    // 35 / 42: through the GOT (own data; kernel).
    let o5 = b.code(&[0x48, 0x03, 0x05, 0, 0, 0, 0]) + 3;
    b.reloc(t, o5, da_s, -4, R_REX_GOTPCRELX);
    let o6 = b.code(&[0x48, 0x03, 0x05, 0, 0, 0, 0]) + 3;
    b.reloc(t, o6, kl, -4, R_GOTPCREL);
    // rodata 0: PC32 rodata -> rodata: skipped. rodata 4: PC32 rodata -> text: recorded.
    b.reloc(ro, 0, ro_s, 8, R_PC32);
    b.reloc(ro, 4, fn_s, 0, R_PC32);
    // .data.rel.ro (rodata class, at 16): abs64 -> own rodata: recorded.
    b.reloc(rr, 0, ro_s, 0, R_64);
    // data 16: PC64 -> own data: skipped.
    b.reloc(da, 16, da_s, 0, R_PC64);
    let out = link(vec![input("rec.o", b.build())]).unwrap();
    let m = &out.plan.modules[0];
    assert_eq!(m.relocs_applied, Some(12 + 2));
    let t = table(&out);
    let got: Vec<RelocField> = t.fields(&t.module(0)).collect();
    let me = |class| Target::Module { module: 0, class };
    let r = |place_class, place_off, kind, target, addend| RelocRecord {
        place_off,
        place_class,
        kind,
        target,
        addend,
    };
    let want = vec![
        r(
            Class::Text,
            o2 as u32,
            RelocKind::Pc32,
            me(Class::Rodata),
            4,
        ),
        r(
            Class::Text,
            o3 as u32,
            RelocKind::Pc32,
            Target::Absolute,
            export_addr("kapi_log") as i64 - 4,
        ),
        r(
            Class::Text,
            o4 as u32,
            RelocKind::Abs32S,
            me(Class::Data),
            16,
        ),
        r(
            Class::Text,
            o5 as u32,
            RelocKind::Pc32,
            me(Class::Rodata),
            24 - 4,
        ),
        r(
            Class::Text,
            o6 as u32,
            RelocKind::Pc32,
            me(Class::Rodata),
            32 - 4,
        ),
        r(Class::Rodata, 4, RelocKind::Pc32, me(Class::Text), f as i64),
        r(Class::Rodata, 16, RelocKind::Abs64, me(Class::Rodata), 0),
        r(
            Class::Data,
            8,
            RelocKind::Abs64,
            me(Class::Text),
            f as i64 + 2,
        ),
        // GOT entry for own data (the kernel one is absolute: skipped).
        r(Class::Rodata, 24, RelocKind::Abs64, me(Class::Data), 0),
    ];
    let mut got_sorted = got.clone();
    let key = |x: &RelocField| (x.place_class, x.place_off);
    got_sorted.sort_by_key(key);
    // The table keeps no addends (fields are adjusted by displacements);
    // the values written with them are checked above.
    let mut want_sorted: Vec<RelocField> = want.iter().map(RelocRecord::field).collect();
    want_sorted.sort_by_key(key);
    assert_eq!(got_sorted, want_sorted);
    assert_eq!(m.relocs_recorded, 9);
}

#[test]
fn archive_member_with_modinfo_is_used() {
    let m = ModBuilder::new("arch").build();
    let mut other = object::write::Object::new(
        object::BinaryFormat::Elf,
        object::Architecture::X86_64,
        object::Endianness::Little,
    );
    let s = other.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
    other.append_section_data(s, &[0xc3], 1);
    let other = other.write().unwrap();
    let a = ar(&[("cb.o", &other), ("arch.o", &m), ("more.o", &other)]);
    let out = link(vec![input("libarch.a", a)]).unwrap();
    assert_eq!(out.plan.modules[0].name, "arch");
    let none = ar(&[("cb.o", &other)]);
    let e = link(vec![input("libnone.a", none)]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Archive);
    let two = ar(&[("a.o", &m), ("b.o", &m)]);
    let e = link(vec![input("libtwo.a", two)]).unwrap_err();
    assert!(
        e.message().contains("libtwo.a")
            && e.message().contains("a.o")
            && e.message().contains("b.o"),
        "{e}"
    );
}

#[test]
fn table_matches_plan() {
    let (pci, nic) = pci_and_nic();
    let mut st = ModBuilder::new("st");
    let o = st.code(&[0xc3]);
    let t = st.text;
    st.global("__module_selftest", t, o);
    let out = link(vec![
        input("pci.o", pci),
        input("nic.o", nic),
        input("st.o", st.build()),
    ])
    .unwrap();
    let t = table(&out);
    let h = t.header();
    assert_eq!(h.region_base.0, out.plan.regions.0.map(|r| r.addr));
    assert_eq!(h.region_size.0, [2 << 20; 3]);
    let back = prelinker::plan::Plan::from_table(&t);
    for (a, b) in back.modules.iter().zip(&out.plan.modules) {
        assert_eq!((a.name.as_str(), a.addr), (b.name.as_str(), b.addr));
        assert_eq!(a.placement, b.placement, "{}", a.name);
        assert_eq!(a.relocs_recorded, b.relocs_recorded);
    }
    assert_eq!(back.modules[2].placement.selftest_off, Some(16));
    assert_eq!(
        back.totals().page_aligned.total(),
        out.plan.totals().page_aligned.total()
    );
    let j = out.plan.to_json();
    assert_eq!(j["modules"][1]["name"], "nic");
    assert_eq!(j["modules"][1]["classes"]["text"]["slot_size"], 4096);
    assert_eq!(j["totals"]["page_aligned"], 4096 * 5);
}

#[test]
fn percpu_sections_are_one_aligned_sub_range_of_data_before_bss() {
    let mut b = ModBuilder::new("pcpu");
    b.section(".data.a", SectionKind::Data, &[5; 4], 4);
    let pc = b.section(".percpu", SectionKind::Data, &[7; 12], 8);
    b.bss(".bss.z", 10, 4);
    let pc_s = b.local("counter", pc, 8);
    let t = b.text;
    let o = b.code(&[0; 8]);
    b.reloc(t, o, pc_s, 0, R_64);
    let spec = KernelSpec::default();
    let out = link(vec![
        input("pcpu.o", b.build()),
        input("plain.o", ModBuilder::new("plain").build()),
    ])
    .unwrap();
    let m = &out.plan.modules[0];
    assert_eq!((m.placement.percpu_off, m.placement.percpu_size), (64, 12));
    assert_eq!(m.placement.bss_size, 10, "bss stays at the end of data");
    assert_eq!(m.placement.size[Class::Data], 64 + 12 + 10);
    let data = class_bytes(&spec, &out, 0, Class::Data);
    assert_eq!(&data[..4], &[5; 4]);
    assert_eq!(&data[64..76], &[7; 12], "the template's bytes");
    // The reference to the per-CPU template is a data reference, recorded.
    let text = class_bytes(&spec, &out, 0, Class::Text);
    let v = decode(RelocKind::Abs64, text, m.addr[Class::Text], o as usize).unwrap();
    assert_eq!(v, m.addr[Class::Data] + 64 + 8);
    assert!(m.relocs_recorded >= 1);
    let tb = table(&out);
    let rec = tb.module(0);
    assert_eq!(
        (rec.placement.percpu_off, rec.placement.percpu_size),
        (64, 12)
    );
    assert!(tb.field_count(&rec) >= 1);
    let plain = &out.plan.modules[1];
    assert_eq!(
        (plain.placement.percpu_off, plain.placement.percpu_size),
        (0, 0)
    );
    let j = out.plan.to_json();
    assert_eq!(j["modules"][0]["percpu"], 12);
    assert_eq!(j["modules"][1]["percpu"], 0);
    assert_eq!(j["totals"]["percpu"], 12);
    assert_eq!(j["totals"]["percpu_packed"], 64);
}
