//! The export list written after the module table: every module export,
//! with the module's table index, class and offset, so that the kernel can
//! link modules loaded at run time against kept built-in modules.

mod common;

use common::*;
use modtable::Class;
use modtable::exports::{ExportList, offset_after};
use modtable::table::Table;
use object::SectionKind;
use prelinker::kernel::Kernel;

#[test]
fn exports_follow_the_table() {
    let mut pci = ModBuilder::new("pci")
        .export("pci_read")
        .export("pci_table");
    let f = pci.code(&[0x90, 0xc3]);
    let t = pci.text;
    pci.global("pci_read", t, f);
    let d = pci.section(".data.pci", SectionKind::Data, &[0; 16], 8);
    pci.global("pci_table", d, 8);
    let uart = ModBuilder::new("uart").build();
    let out = link(vec![input("uart.o", uart), input("pci.o", pci.build())]).unwrap();
    let k = Kernel::parse("image", &out.image).unwrap();
    let a = k.modtable;
    let area = &out.image[a.file_off as usize..(a.file_off + a.size) as usize];
    let table = Table::parse(area).unwrap();
    let list = ExportList::parse(&area[offset_after(table.size())..]).unwrap();
    assert_eq!(list.len(), 2);
    let pci_index = (0..table.len())
        .find(|&i| table.name(&table.module(i)) == "pci")
        .unwrap() as u16;
    let read = list.find("pci_read").unwrap();
    assert_eq!(
        (read.module, read.class, read.offset),
        (pci_index, Class::Text, 16)
    );
    let tab = list.find("pci_table").unwrap();
    assert_eq!(
        (tab.module, tab.class, tab.offset),
        (pci_index, Class::Data, 8)
    );
}
