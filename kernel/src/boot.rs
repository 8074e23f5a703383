//! PVH entry and the 32-bit to 64-bit trampoline.
//!
//! QEMU (and Xen, Firecracker, cloud-hypervisor) finds the entry point in an
//! ELF note of type `XEN_ELFNOTE_PHYS32_ENTRY` (18) named "Xen" and starts
//! it in 32-bit protected mode, paging off, with the physical address of the
//! `hvm_start_info` structure in `ebx`.
//!
//! Everything here lives in the low `.boot` section (virtual = physical
//! address, below 2 MiB). The trampoline:
//! 1. saves `ebx`, checks that the CPU has long mode and NX;
//! 2. loads static early page tables that map
//!    * physical 0..4 GiB at virtual 0 (identity, needed while switching),
//!    * physical 0..4 GiB at [`crate::mm::paging::DIRECT_MAP_BASE`],
//!    * physical 0..1 GiB at `0xffffffff80000000` (the kernel image);
//! 3. enables PAE, long mode, NX and write protection, then paging;
//! 4. far-jumps to 64-bit code, zeroes `.bss`, switches to the boot stack in
//!    the higher half and calls [`crate::kernel_main`] with the start-info
//!    address.
//!
//! [`crate::mm::paging`] replaces these tables with the kernel's own, which
//! have no identity map.

core::arch::global_asm!(
    r#"
    .set PTE_P,  0x1
    .set PTE_W,  0x2
    .set PTE_PS, 0x80

    /* ---- PVH ELF note -------------------------------------------------- */
    .section .note.pvh, "a", @note
    .balign 4
    .long 4                 /* n_namesz */
    .long 8                 /* n_descsz: 64-bit, as QEMU reads a full word */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad _start32

    /* ---- 32-bit entry --------------------------------------------------- */
    .section .boot.text, "ax", @progbits
    .code32
    .global _start32
_start32:
    cli
    cld
    movl %ebx, pvh_start_info_phys

    /* Long mode (CPUID 0x80000001 EDX bit 29) and NX (bit 20) are required. */
    movl $0x80000000, %eax
    cpuid
    cmpl $0x80000001, %eax
    jb .Lno_long_mode
    movl $0x80000001, %eax
    cpuid
    testl $(1 << 29), %edx
    jz .Lno_long_mode
    testl $(1 << 20), %edx
    jz .Lno_long_mode

    /* CR4.PAE, and CR4.OSFXSR | CR4.OSXMMEXCPT: SSE (part of every x86_64
       CPU) for the checksums of modtable::checksum, the kernel's only SSE
       code (its target is soft-float). */
    movl %cr4, %eax
    orl $((1 << 5) | (1 << 9) | (1 << 10)), %eax
    movl %eax, %cr4

    movl $early_pml4, %eax
    movl %eax, %cr3

    /* EFER.LME | EFER.NXE */
    movl $0xc0000080, %ecx
    rdmsr
    orl $((1 << 8) | (1 << 11)), %eax
    wrmsr

    /* CR0.PG | CR0.WP | CR0.PE, CR0.MP; CR0.EM clear (no x87 emulation, so
       SSE instructions run) */
    movl %cr0, %eax
    andl $~(1 << 2), %eax
    orl $((1 << 31) | (1 << 16) | (1 << 1) | 1), %eax
    movl %eax, %cr0

    lgdt early_gdt_ptr
    ljmp $0x08, $_start64_low

.Lno_long_mode:
    /* Say why on COM1 (usable without setup under QEMU), then exit(fail). */
    movl $.Lno_lm_msg, %esi
1:  movb (%esi), %al
    testb %al, %al
    jz 2f
    movw $0x3f8, %dx
    outb %al, %dx
    incl %esi
    jmp 1b
2:  movw ${exit_port}, %dx
    movl ${failure}, %eax
    outl %eax, %dx
3:  hlt
    jmp 3b

    /* ---- 64-bit, still running low ------------------------------------ */
    .code64
_start64_low:
    xorl %eax, %eax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs

    /* Zero .bss (QEMU zero-fills it too; do not depend on that). */
    movabsq $__bss_start, %rdi
    movabsq $__bss_end, %rcx
    subq %rdi, %rcx
    xorl %eax, %eax
    rep stosb

    movabsq $__boot_stack_top, %rsp
    xorl %ebp, %ebp
    movl pvh_start_info_phys, %edi
    movabsq $kernel_main, %rax
    call *%rax
4:  cli
    hlt
    jmp 4b

    /* ---- data ----------------------------------------------------------- */
    .section .boot.data, "aw", @progbits
.Lno_lm_msg:
    .asciz "boot: this CPU lacks long mode or NX; cannot start\n"

    .balign 4
    .global pvh_start_info_phys
pvh_start_info_phys:
    .long 0

    .balign 16
early_gdt:
    .quad 0
    .quad 0x00af9a000000ffff    /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff    /* 0x10: data */
early_gdt_end:
early_gdt_ptr:
    .word early_gdt_end - early_gdt - 1
    .long early_gdt

    .balign 4096
early_pml4:
    .quad early_pdpt_low + (PTE_P | PTE_W)      /* [0]: identity 0..4 GiB */
    .fill 255, 8, 0
    .quad early_pdpt_low + (PTE_P | PTE_W)      /* [256]: direct map 0..4 GiB */
    .fill 254, 8, 0
    .quad early_pdpt_high + (PTE_P | PTE_W)     /* [511]: kernel image */
early_pdpt_low:
    .quad early_pd + 0x0000 + (PTE_P | PTE_W)
    .quad early_pd + 0x1000 + (PTE_P | PTE_W)
    .quad early_pd + 0x2000 + (PTE_P | PTE_W)
    .quad early_pd + 0x3000 + (PTE_P | PTE_W)
    .fill 508, 8, 0
early_pdpt_high:
    .fill 510, 8, 0
    .quad early_pd + (PTE_P | PTE_W)            /* 0xffffffff80000000 -> 0 */
    .quad 0
early_pd:                                       /* 2048 x 2 MiB = 4 GiB */
    .set i, 0
    .rept 2048
    .quad (i << 21) | (PTE_P | PTE_W | PTE_PS)
    .set i, i + 1
    .endr

    /* ---- boot stack (higher half, in .bss) ----------------------------- */
    .section .bss.boot_stack, "aw", @nobits
    .balign 4096
    .global __boot_stack_bottom
__boot_stack_bottom:
    .skip 0x10000
    .global __boot_stack_top
__boot_stack_top:

    /* Give the module regions their section flags (contents come from the
       linker script and, later, from the prelinker). */
    .section .modules.text, "ax", @progbits
    .section .modules.rodata, "a", @progbits
    .section .modules.data, "aw", @progbits
    .text
    "#,
    exit_port = const report::verdict::DEBUG_EXIT_PORT,
    failure = const report::verdict::FAILURE_CODE,
    options(att_syntax)
);
