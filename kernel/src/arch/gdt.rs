//! The kernel GDT and TSS.
//!
//! Layout: null, kernel code (`0x08`), kernel data (`0x10`), TSS (`0x18`).
//! The TSS provides separate interrupt stacks (IST) so that a double fault,
//! an NMI or a machine check runs on a known-good stack even when the
//! current one has overflowed or been corrupted.
//!
//! The boot CPU's GDT, TSS and IST stacks are statics ([`init`]). Every
//! other CPU gets its own from [`CpuTables::new`] (its TSS names its own
//! IST stacks, and a TSS descriptor is marked busy when loaded, so no two
//! CPUs can share one) with the same selectors, so the shared IDT's gates
//! are valid on every CPU.

use alloc::boxed::Box;
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

/// A CPU's own GDT and TSS (for every CPU but the boot CPU).
pub struct CpuTables {
    gdt: GlobalDescriptorTable,
    sel: Selectors,
}

impl CpuTables {
    /// Builds a GDT and a TSS whose IST slots point at `ist_tops` (double
    /// fault, NMI, machine check, as [`DOUBLE_FAULT_IST`] etc. number them).
    /// They live as long as the kernel.
    pub fn new(ist_tops: [u64; 3]) -> &'static CpuTables {
        let mut tss = TaskStateSegment::new();
        for (slot, top) in [DOUBLE_FAULT_IST, NMI_IST, MACHINE_CHECK_IST]
            .into_iter()
            .zip(ist_tops)
        {
            tss.interrupt_stack_table[usize::from(slot - 1)] = VirtAddr::new(top);
        }
        let tss: &'static TaskStateSegment = Box::leak(Box::new(tss));
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss = gdt.append(Descriptor::tss_segment(tss));
        Box::leak(Box::new(CpuTables {
            gdt,
            sel: Selectors { code, data, tss },
        }))
    }

    /// Loads these tables on the calling CPU and reloads its segment
    /// registers.
    pub fn load(&'static self) {
        load(&self.gdt, self.sel);
    }

    /// The selectors (equal to the boot CPU's).
    pub fn selectors(&self) -> Selectors {
        self.sel
    }
}

fn load(gdt: &'static GlobalDescriptorTable, sel: Selectors) {
    gdt.load();
    // SAFETY: the selectors come from the GDT just loaded, which lives as
    // long as the kernel, and describe flat 64-bit kernel segments and a
    // valid TSS that no other CPU has loaded.
    unsafe {
        CS::set_reg(sel.code);
        SS::set_reg(sel.data);
        DS::set_reg(sel.data);
        ES::set_reg(sel.data);
        load_tss(sel.tss);
    }
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
    load(gdt, *sel);
}

/// The kernel's selectors (after [`init`]).
pub fn selectors() -> Selectors {
    GDT.get().expect("gdt::init not called").1
}
