//! The real-mode start-up trampoline of the application processors (APs).
//!
//! A STARTUP IPI starts a CPU in 16-bit real mode at `vector << 12`, so the
//! code it runs first must lie in a 4 KiB page below 1 MiB. The trampoline
//! is assembled into the kernel image (in `.rodata`, only ever copied) and
//! [`Trampoline::install`] copies it to [`TRAMPOLINE_PHYS`]. There it:
//!
//! 1. loads its own GDT and enters 32-bit protected mode;
//! 2. enables PAE, loads the start-up PML4 below 1 MiB, sets EFER.LME and
//!    EFER.NXE and enables paging with write protection;
//! 3. far-jumps to 64-bit code, sets the GS base to the CPU's per-CPU area,
//!    loads the CPU's kernel stack and jumps to the kernel's AP entry (in the
//!    higher half) with the per-CPU area in `rdi` and the kernel's CR3 in
//!    `rsi`; the entry switches to the kernel's page tables.
//!
//! The start-up PML4 is the kernel's own top-level table (its higher-half
//! entries copied, so every kernel mapping is the kernel's) plus entry 0,
//! which maps physical 0..2 MiB at virtual 0, read-only and executable,
//! through a PDPT and PD of its own: the low identity mapping the switch to
//! paging needs. It exists only in these low pages, only while CPUs are
//! being started, and is never part of the kernel's tables, which keep no
//! identity mapping. [`Trampoline::remove`] puts back what the low pages
//! held.
//!
//! The CPU-specific fields (stack, per-CPU area, CR3, entry) are patched
//! into the copy before each AP is started; APs start one at a time.

use alloc::vec::Vec;

use crate::mm::paging::phys_to_virt;

/// Physical (and real-mode linear) address of the trampoline page.
pub const TRAMPOLINE_PHYS: u64 = 0x8000;
/// The start-up PML4, PDPT and PD follow the trampoline page.
const PML4_PHYS: u64 = TRAMPOLINE_PHYS + 0x1000;
const PDPT_PHYS: u64 = TRAMPOLINE_PHYS + 0x2000;
const PD_PHYS: u64 = TRAMPOLINE_PHYS + 0x3000;
/// Low bytes the trampoline uses (code page and three tables).
pub const LOW_BYTES: u64 = 0x4000;

const PTE_P: u64 = 1 << 0;
const PTE_W: u64 = 1 << 1;
const PTE_PS: u64 = 1 << 7;

core::arch::global_asm!(
    ".section .rodata.ap_trampoline, \"a\", @progbits",
    ".balign 16",
    ".global ap_trampoline_start",
    "ap_trampoline_start:",
    ".code16",
    "    cli",
    "    cld",
    "    mov ax, cs",
    "    mov ds, ax",
    // lgdt [ap_tramp_gdtr] (DS-relative: DS = CS = the trampoline page)
    "    .byte 0x0f, 0x01, 0x16",
    "    .word ap_tramp_gdtr - ap_trampoline_start",
    // CR0.PE, caches on (INIT leaves CD and NW set)
    "    mov eax, cr0",
    "    and eax, 0x9fffffff",
    "    or eax, 1",
    "    mov cr0, eax",
    // ljmpl 0x08:pm32 (operand-size prefix: 32-bit offset)
    "    .byte 0x66, 0xea",
    "    .long {tramp} + (ap_tramp_pm32 - ap_trampoline_start)",
    "    .word 0x08",
    ".code32",
    "ap_tramp_pm32:",
    "    mov ax, 0x10",
    "    mov ds, ax",
    "    mov es, ax",
    "    mov ss, ax",
    // CR4.PAE
    "    mov eax, cr4",
    "    or eax, 0x20",
    "    mov cr4, eax",
    // mov eax, [ap_tramp_pml4] (flat address)
    "    .byte 0xa1",
    "    .long {tramp} + (ap_tramp_pml4 - ap_trampoline_start)",
    "    mov cr3, eax",
    // EFER.LME | EFER.NXE (the kernel's tables use NX)
    "    mov ecx, 0xc0000080",
    "    rdmsr",
    "    or eax, 0x900",
    "    wrmsr",
    // CR0.PG | CR0.WP | CR0.PE
    "    mov eax, cr0",
    "    or eax, 0x80010001",
    "    mov cr0, eax",
    // ljmp 0x18:lm64
    "    .byte 0xea",
    "    .long {tramp} + (ap_tramp_lm64 - ap_trampoline_start)",
    "    .word 0x18",
    ".code64",
    "ap_tramp_lm64:",
    "    xor eax, eax",
    "    mov ds, ax",
    "    mov es, ax",
    "    mov ss, ax",
    "    mov fs, ax",
    "    mov gs, ax",
    // IA32_GS_BASE = the CPU's per-CPU area
    "    mov ecx, 0xc0000101",
    "    mov eax, dword ptr [rip + ap_tramp_percpu]",
    "    mov edx, dword ptr [rip + ap_tramp_percpu + 4]",
    "    wrmsr",
    "    mov rsp, qword ptr [rip + ap_tramp_stack]",
    "    mov rdi, qword ptr [rip + ap_tramp_percpu]",
    "    mov rsi, qword ptr [rip + ap_tramp_cr3]",
    "    mov rax, qword ptr [rip + ap_tramp_entry]",
    "    jmp rax",
    ".balign 8",
    "ap_tramp_gdt:",
    "    .quad 0",
    "    .quad 0x00cf9a000000ffff", // 0x08: 32-bit code
    "    .quad 0x00cf92000000ffff", // 0x10: data
    "    .quad 0x00af9a000000ffff", // 0x18: 64-bit code
    "ap_tramp_gdtr:",
    "    .word 31",
    "    .long {tramp} + (ap_tramp_gdt - ap_trampoline_start)",
    ".balign 8",
    ".global ap_tramp_pml4",
    "ap_tramp_pml4: .quad 0",
    ".global ap_tramp_cr3",
    "ap_tramp_cr3: .quad 0",
    ".global ap_tramp_stack",
    "ap_tramp_stack: .quad 0",
    ".global ap_tramp_percpu",
    "ap_tramp_percpu: .quad 0",
    ".global ap_tramp_entry",
    "ap_tramp_entry: .quad 0",
    ".global ap_trampoline_end",
    "ap_trampoline_end:",
    ".text",
    tramp = const TRAMPOLINE_PHYS,
);

unsafe extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
    static ap_tramp_pml4: u8;
    static ap_tramp_cr3: u8;
    static ap_tramp_stack: u8;
    static ap_tramp_percpu: u8;
    static ap_tramp_entry: u8;
}

/// The trampoline as assembled in the image.
fn image() -> &'static [u8] {
    let start = (&raw const ap_trampoline_start) as usize;
    let end = (&raw const ap_trampoline_end) as usize;
    // SAFETY: both symbols delimit the assembled trampoline in `.rodata`,
    // which is mapped and never written.
    unsafe { core::slice::from_raw_parts(start as *const u8, end - start) }
}

/// Offset of a data field inside the trampoline.
fn offset(field: *const u8) -> u64 {
    field as u64 - (&raw const ap_trampoline_start) as u64
}

/// Why the trampoline could not be installed.
#[derive(Clone, Copy, Debug)]
pub enum TrampolineError {
    /// The low pages are not usable RAM in the memory map.
    NotUsable(u64),
    /// The assembled trampoline is larger than its page.
    TooLarge(usize),
}

impl core::fmt::Display for TrampolineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TrampolineError::NotUsable(a) => write!(
                f,
                "low memory {a:#x}..{:#x} is not usable RAM",
                a + LOW_BYTES
            ),
            TrampolineError::TooLarge(n) => write!(f, "trampoline is {n} bytes, over a page"),
        }
    }
}

/// The installed trampoline; [`Trampoline::remove`] takes it away.
pub struct Trampoline {
    saved: Vec<u8>,
}

fn low_usable() -> bool {
    crate::pvh::boot_info().is_some_and(|b| {
        b.usable()
            .any(|r| r.start <= TRAMPOLINE_PHYS && r.end() >= TRAMPOLINE_PHYS + LOW_BYTES)
    })
}

/// The low pages, through the direct map.
fn low() -> *mut u8 {
    phys_to_virt(TRAMPOLINE_PHYS) as *mut u8
}

fn write_u64(phys: u64, value: u64) {
    debug_assert!((TRAMPOLINE_PHYS..TRAMPOLINE_PHYS + LOW_BYTES).contains(&phys));
    // SAFETY: `phys` lies in the low pages the installed trampoline owns
    // (checked usable RAM, below 1 MiB, which the frame allocator never
    // hands out), reached through the direct map.
    unsafe { (phys_to_virt(phys) as *mut u64).write_volatile(value) }
}

impl Trampoline {
    /// Saves what the low pages hold, copies the trampoline there and
    /// builds the start-up page tables' identity part.
    pub fn install() -> Result<Trampoline, TrampolineError> {
        let code = image();
        if code.len() > 4096 {
            return Err(TrampolineError::TooLarge(code.len()));
        }
        if !low_usable() {
            return Err(TrampolineError::NotUsable(TRAMPOLINE_PHYS));
        }
        let mut saved = alloc::vec![0u8; LOW_BYTES as usize];
        // SAFETY: the low pages are usable RAM below 1 MiB that the frame
        // allocator never hands out and nothing else in the kernel uses
        // after boot; the direct map covers them; `saved` is a separate
        // heap buffer of the same size.
        unsafe {
            core::ptr::copy_nonoverlapping(low(), saved.as_mut_ptr(), saved.len());
            core::ptr::write_bytes(low(), 0, LOW_BYTES as usize);
            core::ptr::copy_nonoverlapping(code.as_ptr(), low(), code.len());
        }
        write_u64(PML4_PHYS, PDPT_PHYS | PTE_P | PTE_W);
        write_u64(PDPT_PHYS, PD_PHYS | PTE_P | PTE_W);
        // Physical 0..2 MiB at 0: present, read-only, executable.
        write_u64(PD_PHYS, PTE_P | PTE_PS);
        let t = Trampoline { saved };
        t.field(offset(&raw const ap_tramp_pml4), PML4_PHYS);
        Ok(t)
    }

    fn field(&self, off: u64, value: u64) {
        write_u64(TRAMPOLINE_PHYS + off, value);
    }

    /// Prepares the start of one AP: the kernel's higher-half PML4 entries
    /// (from the table at physical `kernel_cr3`), and the CPU's stack top,
    /// per-CPU area and 64-bit entry point.
    pub fn prepare(&self, kernel_cr3: u64, stack_top: u64, percpu: u64, entry: u64) {
        let root = phys_to_virt(kernel_cr3 & 0x000f_ffff_ffff_f000) as *const u64;
        for i in 256..512 {
            // SAFETY: the kernel's PML4 is a page-table frame covered by the
            // direct map. Only the boot CPU changes page tables while CPUs
            // are being started, and it is here; an aligned 8-byte read
            // sees whole entries.
            let e = unsafe { root.add(i).read_volatile() };
            write_u64(PML4_PHYS + i as u64 * 8, e);
        }
        self.field(offset(&raw const ap_tramp_cr3), kernel_cr3);
        self.field(offset(&raw const ap_tramp_stack), stack_top);
        self.field(offset(&raw const ap_tramp_percpu), percpu);
        self.field(offset(&raw const ap_tramp_entry), entry);
    }

    /// The address the STARTUP IPI names.
    pub fn start_address(&self) -> u64 {
        TRAMPOLINE_PHYS
    }

    /// Puts back what the low pages held: the trampoline and its identity
    /// mapping are gone. CPUs that did not answer must have been sent an
    /// INIT first, so none can still be running here.
    pub fn remove(self) {
        // SAFETY: as in `install`: the low pages are ours, and no CPU runs
        // the trampoline any more.
        unsafe { core::ptr::copy_nonoverlapping(self.saved.as_ptr(), low(), self.saved.len()) };
    }
}
