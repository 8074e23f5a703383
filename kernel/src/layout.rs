//! The kernel image layout, from the linker script's symbols.
//!
//! See `linker-scripts/kernel.ld`: one range per permission class, each
//! starting on a 2 MiB boundary and spanning whole 2 MiB pages, in the order
//! text, rodata (with `.kexports` and `.modtable`), data+bss. Each range
//! holds the kernel's own bytes of the class first, then, from the next
//! cache line to the end of the range, the module slots of that class
//! (`.modules.text`, `.modules.rodata`, `.modules.data`). Physical address =
//! virtual address − [`KERNEL_VMA`].

/// Virtual address of physical 0 in the kernel image mapping.
pub const KERNEL_VMA: u64 = 0xffff_ffff_8000_0000;

unsafe extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __data_end: u8;
    static __bss_start: u8;
    static __bss_end: u8;
    static __modules_text_start: u8;
    static __modules_text_end: u8;
    static __modules_rodata_start: u8;
    static __modules_rodata_end: u8;
    static __modules_data_start: u8;
    static __modules_data_end: u8;
    static __text_range_start: u8;
    static __text_range_end: u8;
    static __rodata_range_start: u8;
    static __rodata_range_end: u8;
    static __data_range_start: u8;
    static __data_range_end: u8;
    static __kexports_start: u8;
    static __kexports_end: u8;
    static __modtable_start: u8;
    static __modtable_end: u8;
    static __boot_stack_bottom: u8;
    static __boot_stack_top: u8;
}

/// A virtual address range `[start, end)`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Range {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl Range {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// True if `addr` lies inside.
    pub fn contains(&self, addr: u64) -> bool {
        (self.start..self.end).contains(&addr)
    }

    /// Physical address of `start` (image ranges only).
    pub fn phys_start(&self) -> u64 {
        self.start - KERNEL_VMA
    }
}

macro_rules! range {
    ($start:ident, $end:ident) => {
        Range {
            start: (&raw const $start) as u64,
            end: (&raw const $end) as u64,
        }
    };
}

/// The whole higher-half image: the three class ranges.
pub fn image() -> Range {
    range!(__kernel_start, __kernel_end)
}
/// Kernel code.
pub fn text() -> Range {
    range!(__text_start, __text_end)
}
/// Kernel read-only data, including `.kexports` and `.modtable`.
pub fn rodata() -> Range {
    range!(__rodata_start, __rodata_end)
}
/// Kernel `.data`.
pub fn data() -> Range {
    range!(__data_start, __data_end)
}
/// Kernel `.bss`.
pub fn bss() -> Range {
    range!(__bss_start, __bss_end)
}
/// The text range (RX): kernel text, then the module text slots.
pub fn text_range() -> Range {
    range!(__text_range_start, __text_range_end)
}
/// The rodata range (R): kernel rodata, exports and table, then the module
/// rodata slots.
pub fn rodata_range() -> Range {
    range!(__rodata_range_start, __rodata_range_end)
}
/// The data range (RW): kernel data and bss, then the module data slots.
pub fn data_range() -> Range {
    range!(__data_range_start, __data_range_end)
}
/// The range of class `c` (index 0 text, 1 rodata, 2 data) and the end of
/// the kernel's own bytes in it.
pub fn class_range(c: usize) -> (Range, u64) {
    match c {
        0 => (text_range(), text().end),
        1 => (rodata_range(), rodata().end),
        _ => (data_range(), bss().end),
    }
}
/// Module TEXT region (RX).
pub fn modules_text() -> Range {
    range!(__modules_text_start, __modules_text_end)
}
/// Module RODATA region (R).
pub fn modules_rodata() -> Range {
    range!(__modules_rodata_start, __modules_rodata_end)
}
/// Module DATA region (RW).
pub fn modules_data() -> Range {
    range!(__modules_data_start, __modules_data_end)
}
/// The kernel export table (array of [`crate::exports::KernelExport`]).
pub fn kexports() -> Range {
    range!(__kexports_start, __kexports_end)
}
/// The module table area written by the prelinker.
pub fn modtable() -> Range {
    range!(__modtable_start, __modtable_end)
}
/// The boot stack (in `.bss`).
pub fn boot_stack() -> Range {
    range!(__boot_stack_bottom, __boot_stack_top)
}
/// Physical end of the kernel image (everything below is reserved).
pub fn image_phys_end() -> u64 {
    image().end - KERNEL_VMA
}
