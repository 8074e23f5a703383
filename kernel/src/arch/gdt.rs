//! The kernel GDT and TSS.
//!
//! Layout: null, kernel code (`0x08`), kernel data (`0x10`), TSS (`0x18`).
//! The TSS provides separate interrupt stacks (IST) so that a double fault,
//! an NMI or a machine check runs on a known-good stack even when the
//! current one has overflowed or been corrupted.

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// IST slot (1-based, as in the IDT gate) for the double-fault handler.
pub const DOUBLE_FAULT_IST: u8 = 1;
/// IST slot for the NMI handler.
pub const NMI_IST: u8 = 2;
/// IST slot for the machine-check handler.
pub const MACHINE_CHECK_IST: u8 = 3;

const IST_STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stack([u8; IST_STACK_SIZE]);

static mut DOUBLE_FAULT_STACK: Stack = Stack([0; IST_STACK_SIZE]);
static mut NMI_STACK: Stack = Stack([0; IST_STACK_SIZE]);
static mut MACHINE_CHECK_STACK: Stack = Stack([0; IST_STACK_SIZE]);

/// Segment selectors of the kernel GDT.
#[derive(Clone, Copy, Debug)]
pub struct Selectors {
    /// 64-bit kernel code.
    pub code: SegmentSelector,
    /// Kernel data.
    pub data: SegmentSelector,
    /// The TSS.
    pub tss: SegmentSelector,
}

static TSS: Once<TaskStateSegment> = Once::new();
static GDT: Once<(GlobalDescriptorTable, Selectors)> = Once::new();

fn stack_top(stack: *mut Stack) -> VirtAddr {
    VirtAddr::from_ptr(stack) + IST_STACK_SIZE as u64
}

/// Builds and loads the GDT and TSS and reloads all segment registers.
pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        // Taking raw addresses of the stacks: no reference to a `static mut`
        // is created; only the CPU writes to them.
        tss.interrupt_stack_table[usize::from(DOUBLE_FAULT_IST - 1)] =
            stack_top(&raw mut DOUBLE_FAULT_STACK);
        tss.interrupt_stack_table[usize::from(NMI_IST - 1)] = stack_top(&raw mut NMI_STACK);
        tss.interrupt_stack_table[usize::from(MACHINE_CHECK_IST - 1)] =
            stack_top(&raw mut MACHINE_CHECK_STACK);
        tss
    });
    let (gdt, sel) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss = gdt.append(Descriptor::tss_segment(tss));
        (gdt, Selectors { code, data, tss })
    });
    gdt.load();
    // SAFETY: the selectors come from the GDT just loaded, which lives in a
    // static, and describe flat 64-bit kernel segments and a valid TSS.
    unsafe {
        CS::set_reg(sel.code);
        SS::set_reg(sel.data);
        DS::set_reg(sel.data);
        ES::set_reg(sel.data);
        load_tss(sel.tss);
    }
}

/// The kernel's selectors (after [`init`]).
pub fn selectors() -> Selectors {
    GDT.get().expect("gdt::init not called").1
}
