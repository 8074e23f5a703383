//! The kernel image layout, from the linker script's symbols.
//!
//! See `linker-scripts/kernel.ld`: each group starts on a 2 MiB boundary in
//! the order text, module text, rodata (with `.kexports` and `.modtable`),
//! module rodata, data+bss, module data. Physical address = virtual address
//! − [`KERNEL_VMA`].

/// Virtual address of physical 0 in the kernel image mapping.
pub const KERNEL_VMA: u64 = 0xffff_ffff_8000_0000;
/// Size of each module region (`MODULE_REGION_SIZE` in the linker script).
pub const MODULE_REGION_SIZE: u64 = 2 << 20;
/// Size of the reserved module table area.
pub const MODTABLE_SIZE: u64 = 256 << 10;

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

/// The whole higher-half image, from kernel text to the end of module data.
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
