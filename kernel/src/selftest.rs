//! Boot-time self-tests of the foundation: paging, frames, heap, exception
//! hook, IRQ dispatch, timer and exports.
//!
//! They run on every boot (a few milliseconds) after interrupts are on. Each
//! prints one `selftest: <name>: ok ...` line with what it measured; any
//! failure panics, which exits QEMU with failure (status 35). The boot tests
//! on the host check these lines.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::{TrapFrame, idt, irq, tsc};
use crate::mm::paging::{self, Flags, PageSize, PagingError};
use crate::mm::{HUGE_PAGE_SIZE, PAGE_SIZE, frames, heap};

/// Unused virtual range (PML4 slot 448) the paging test maps and unmaps.
const SCRATCH: u64 = 0xffff_e000_0000_0000;

macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            panic!("selftest failed: {} ({})", format_args!($($msg)+), stringify!($cond));
        }
    };
}

// Probes that touch memory and report a fault instead of dying: the
// exception hook below moves RIP from the faulting instruction to the
// fix-up, which returns 1.
core::arch::global_asm!(
    ".section .text.selftest_probe, \"ax\"",
    ".global selftest_probe_write",
    "selftest_probe_write:",
    "    xor eax, eax",
    ".global selftest_probe_write_insn",
    "selftest_probe_write_insn:",
    "    mov byte ptr [rdi], sil",
    "    ret",
    ".global selftest_probe_read",
    "selftest_probe_read:",
    "    xor eax, eax",
    ".global selftest_probe_read_insn",
    "selftest_probe_read_insn:",
    "    mov cl, byte ptr [rdi]",
    "    ret",
    ".global selftest_probe_fixup",
    "selftest_probe_fixup:",
    "    mov eax, 1",
    "    ret",
    ".text",
);

unsafe extern "C" {
    fn selftest_probe_write(addr: u64, value: u8) -> u64;
    fn selftest_probe_read(addr: u64) -> u64;
    static selftest_probe_write_insn: u8;
    static selftest_probe_read_insn: u8;
    static selftest_probe_fixup: u8;
}

static LAST_FAULT_CR2: AtomicU64 = AtomicU64::new(0);
static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);

fn probe_hook(f: &mut TrapFrame) -> bool {
    let write_insn = (&raw const selftest_probe_write_insn) as u64;
    let read_insn = (&raw const selftest_probe_read_insn) as u64;
    if f.vector == idt::PAGE_FAULT && (f.rip == write_insn || f.rip == read_insn) {
        LAST_FAULT_CR2.store(
            x86_64::registers::control::Cr2::read_raw(),
            Ordering::SeqCst,
        );
        f.rip = (&raw const selftest_probe_fixup) as u64;
        return true;
    }
    if f.vector == 3 {
        // int3 is a trap: RIP already points past it.
        BREAKPOINTS.fetch_add(1, Ordering::SeqCst);
        f.rbx = 0x5e1f_7e57;
        return true;
    }
    false
}

/// True if writing to `addr` faults.
fn write_faults(addr: u64) -> bool {
    // SAFETY: the probe writes one byte at `addr`; the callers only pass
    // scratch pages they mapped, or addresses that must fault, and the
    // installed hook turns the fault into a return value.
    unsafe { selftest_probe_write(addr, 0xa5) == 1 }
}

/// True if reading `addr` faults.
fn read_faults(addr: u64) -> bool {
    // SAFETY: as for `write_faults`; reads have no side effect on RAM.
    unsafe { selftest_probe_read(addr) == 1 }
}

/// Runs every self-test; panics on the first failure.
pub fn run() {
    idt::set_exception_hook(Some(probe_hook));
    exceptions();
    paging();
    heap();
    irqs();
    timer();
    exports();
    idt::set_exception_hook(None);
    log::info!("selftest: all passed");
}

fn exceptions() {
    let rbx: u64;
    // SAFETY: int3 traps into the hook, which counts it, sets RBX and
    // resumes after the instruction. RBX is saved and restored around it
    // because the compiler may use it.
    unsafe {
        core::arch::asm!(
            "push rbx",
            "xor ebx, ebx",
            "int3",
            "mov {out}, rbx",
            "pop rbx",
            out = out(reg) rbx,
        );
    }
    check!(
        BREAKPOINTS.load(Ordering::SeqCst) == 1,
        "int3 reached the hook"
    );
    check!(
        rbx == 0x5e1f_7e57,
        "register written by the hook survives iretq: {rbx:#x}"
    );
    log::info!("selftest: exception hook: ok (#BP resumed with a rewritten register)");
}

/// The paging test's region: `huge` 2 MiB pages and three 4 KiB pages of
/// 2 MiB-aligned frames. Two huge pages where memory allows, one on a small
/// machine (the region then tests one split instead of two).
fn scratch_frames() -> (u64, u64) {
    for huge in [2, 1] {
        let pages = (huge * HUGE_PAGE_SIZE / PAGE_SIZE) as usize + 3;
        if let Ok(p) = frames::alloc(pages, 512) {
            return (huge, p.0);
        }
    }
    panic!(
        "selftest failed: no 2 MiB-aligned frames for the paging test ({} frames free)",
        frames::free_frames()
    );
}

fn paging() {
    // Create the upper-level tables once, so the frame count below is exact.
    let tmp = frames::alloc(1, 1).expect("frame");
    paging::map_range(SCRATCH, tmp.0, PAGE_SIZE, Flags::RW).expect("map");
    paging::unmap_range(SCRATCH, PAGE_SIZE).expect("unmap");
    frames::free(tmp, 1).expect("free");
    let free_before = frames::free_frames();

    let (huge, phys) = scratch_frames();
    let region = huge * HUGE_PAGE_SIZE + 3 * PAGE_SIZE;
    let pages = (region / PAGE_SIZE) as usize;
    let huge = huge as usize;
    paging::map_range(SCRATCH, phys, region, Flags::RW).expect("map scratch");
    let (n4k, n2m) = paging::count_mappings(SCRATCH, region);
    check!(
        (n4k, n2m) == (3, huge),
        "largest pages used: {n4k} x 4K + {n2m} x 2M"
    );
    check!(
        paging::translate(SCRATCH + 0x1234) == Some((phys + 0x1234, Flags::RW, PageSize::Size2M)),
        "translate 2M"
    );
    let tail = SCRATCH + huge as u64 * HUGE_PAGE_SIZE + PAGE_SIZE;
    check!(
        paging::translate(tail + 8)
            == Some((
                phys + huge as u64 * HUGE_PAGE_SIZE + PAGE_SIZE + 8,
                Flags::RW,
                PageSize::Size4K
            )),
        "translate 4K"
    );
    // The mapping reaches the same RAM as the direct map.
    // SAFETY: both addresses map frames allocated above, exclusively ours.
    unsafe {
        (SCRATCH as *mut u64)
            .add(1000)
            .write_volatile(0x1122_3344_5566_7788);
        let back = (paging::phys_to_virt(phys) as *const u64)
            .add(1000)
            .read_volatile();
        check!(back == 0x1122_3344_5566_7788, "alias read {back:#x}");
    }
    check!(
        paging::map_range(SCRATCH + PAGE_SIZE, phys, PAGE_SIZE, Flags::R)
            == Err(PagingError::AlreadyMapped(SCRATCH + PAGE_SIZE)),
        "double map refused"
    );
    check!(
        paging::map_range(
            SCRATCH - PAGE_SIZE,
            phys,
            PAGE_SIZE,
            Flags::RW | Flags::EXEC
        ) == Err(PagingError::WriteExec),
        "W+X refused"
    );
    check!(
        paging::map_range(SCRATCH + 1, phys, PAGE_SIZE, Flags::R)
            == Err(PagingError::Unaligned(SCRATCH + 1)),
        "unaligned refused"
    );

    // Write-protect one 4 KiB page inside the first 2 MiB page: it is split.
    let ro = SCRATCH + 2 * PAGE_SIZE;
    paging::protect_range(ro, PAGE_SIZE, Flags::R).expect("protect");
    let (n4k, n2m) = paging::count_mappings(SCRATCH, region);
    check!(
        (n4k, n2m) == (512 + 3, huge - 1),
        "split on protect: {n4k} x 4K + {n2m} x 2M"
    );
    check!(
        paging::translate(ro).map(|t| t.1) == Some(Flags::R),
        "protected flags"
    );
    check!(write_faults(ro), "write to a read-only page faults");
    check!(
        LAST_FAULT_CR2.load(Ordering::SeqCst) == ro,
        "CR2 names the page"
    );
    check!(
        !write_faults(ro + PAGE_SIZE),
        "write to a writable page works"
    );
    check!(!read_faults(ro), "read of a read-only page works");
    check!(
        paging::protect_range(SCRATCH - PAGE_SIZE, 2 * PAGE_SIZE, Flags::R)
            == Err(PagingError::NotMapped(SCRATCH - PAGE_SIZE)),
        "protect of unmapped refused"
    );

    // Punch a hole: unmapped pages fault.
    paging::unmap_range(SCRATCH + PAGE_SIZE, PAGE_SIZE).expect("unmap hole");
    check!(
        paging::translate(SCRATCH + PAGE_SIZE).is_none(),
        "hole unmapped"
    );
    check!(read_faults(SCRATCH + PAGE_SIZE), "read of the hole faults");
    // Unmap part of the second 2 MiB page (split), then everything.
    let split_4k = if huge == 2 {
        paging::unmap_range(SCRATCH + HUGE_PAGE_SIZE + 16 * PAGE_SIZE, 16 * PAGE_SIZE)
            .expect("unmap split");
        496
    } else {
        0
    };
    let (n4k, n2m) = paging::count_mappings(SCRATCH, region);
    check!(
        (n4k, n2m) == (511 + split_4k + 3, 0),
        "after unmaps: {n4k} x 4K + {n2m} x 2M"
    );
    check!(paging::count_wx_pages() == 0, "no W+X pages");
    paging::unmap_range(SCRATCH, region).expect("unmap all");
    check!(
        paging::count_mappings(SCRATCH, region) == (0, 0),
        "all unmapped"
    );
    // Empty page tables were freed, so 2 MiB pages fit again.
    let huge_bytes = huge as u64 * HUGE_PAGE_SIZE;
    paging::map_range(SCRATCH, phys, huge_bytes, Flags::R).expect("remap");
    check!(
        paging::count_mappings(SCRATCH, region) == (0, huge),
        "2 MiB pages again after unmap"
    );
    paging::unmap_range(SCRATCH, huge_bytes).expect("unmap again");
    frames::free(frames::PhysAddr(phys), pages).expect("free scratch frames");
    // The checkers find what they look for: a frame mapped read-only here
    // while the direct map has it writable, and a planted W+X leaf.
    let before = paging::wx_alias_frames();
    check!(
        before == 0,
        "no aliased frame before the check, got {before}"
    );
    let alias_frame = frames::alloc_zeroed(1, 1).expect("frame for the alias check");
    let alias_va = SCRATCH;
    paging::map_range(alias_va, alias_frame.0, PAGE_SIZE, Flags::R).expect("map read-only alias");
    let aliases = paging::wx_alias_frames();
    paging::unmap_range(alias_va, PAGE_SIZE).expect("unmap alias");
    frames::free(alias_frame, 1).expect("free alias check frame");
    check!(aliases == 1, "one aliased frame found, got {aliases}");
    check!(
        paging::wx_alias_frames() == 0,
        "no alias after unmapping it"
    );
    let wx_va = SCRATCH;
    let wx_frame = frames::alloc_zeroed(1, 1).expect("frame for the W+X check");
    paging::map_range(wx_va, wx_frame.0, PAGE_SIZE, Flags::RW).expect("map W+X check page");
    check!(paging::plant_wx_for_selftest(wx_va), "plant a W+X leaf");
    let planted = paging::count_wx_pages();
    paging::unmap_range(wx_va, PAGE_SIZE).expect("unmap W+X check page");
    frames::free(wx_frame, 1).expect("free W+X check frame");
    check!(planted == 1, "one planted W+X page found, got {planted}");
    check!(
        paging::count_wx_pages() == 0,
        "no W+X page after unmapping it"
    );
    let free_after = frames::free_frames();
    check!(
        free_after == free_before,
        "page tables leaked: {free_before} -> {free_after} free frames"
    );
    check!(
        frames::free(frames::PhysAddr(phys), 1).is_err(),
        "double free detected"
    );
    log::info!(
        "selftest: paging: ok (map/protect/unmap/split/translate/count over {huge} x 2M + 3 x 4K, W+X pages: {}, frames balanced at {free_after})",
        paging::count_wx_pages()
    );
}

fn heap() {
    let used_before = heap::used_bytes();
    {
        let v: Vec<u64> = (0..10_000).collect();
        let b = Box::new([7u8; 1000]);
        check!(v.iter().sum::<u64>() == 49_995_000, "vec contents");
        check!(b.iter().all(|&x| x == 7), "box contents");
        check!(heap::used_bytes() >= used_before + 80_000, "usage grows");
    }
    check!(
        heap::used_bytes() == used_before,
        "heap leak: {} -> {}",
        used_before,
        heap::used_bytes()
    );
    // Too big for the heap: the allocator returns null instead of panicking.
    let layout = core::alloc::Layout::from_size_align(heap::size() * 2, 8).expect("layout");
    check!(
        heap::try_alloc(layout).is_none(),
        "oversized allocation returns null"
    );
    let small = core::alloc::Layout::from_size_align(64, 64).expect("layout");
    let p = heap::try_alloc(small).expect("small allocation");
    check!(
        (p.as_ptr() as usize).is_multiple_of(64),
        "alignment honoured"
    );
    // SAFETY: allocated just above with the same layout.
    unsafe { heap::free(p, small) };
    check!(heap::used_bytes() == used_before, "try_alloc/free balanced");
    log::info!(
        "selftest: heap: ok (alloc/free balanced at {used_before} bytes used, {} free, oversized request -> null)",
        heap::free_bytes()
    );
}

static IRQ5_SEEN: AtomicU64 = AtomicU64::new(0);

fn irq5(f: &mut TrapFrame) {
    IRQ5_SEEN.store(f.vector, Ordering::SeqCst);
}

fn irqs() {
    check!(
        irq::register(0, irq5) == Err(irq::IrqError::Reserved(0)),
        "IRQ 0 reserved"
    );
    check!(
        irq::register(16, irq5) == Err(irq::IrqError::InvalidIrq(16)),
        "IRQ 16 invalid"
    );
    check!(irq::register(5, irq5).is_ok(), "register IRQ 5");
    check!(
        irq::register(5, irq5) == Err(irq::IrqError::AlreadyRegistered(5)),
        "no double register"
    );
    // Enter the IRQ 5 vector by software: same stub and dispatch path.
    // SAFETY: vector 37 has a gate; the handler only records the vector.
    unsafe { core::arch::asm!("int 37") };
    check!(
        IRQ5_SEEN.load(Ordering::SeqCst) == 37,
        "IRQ 5 handler ran with vector 37"
    );
    check!(irq::unregister(5).is_ok(), "unregister IRQ 5");
    check!(
        irq::unregister(5) == Err(irq::IrqError::NotRegistered(5)),
        "no double unregister"
    );
    log::info!("selftest: irq: ok (register/unregister/dispatch)");
}

fn timer() {
    // Wait (up to a second of TSC time) for 5 ticks: a guest on a loaded
    // host gets its timer interrupts late, but it must get them.
    let t0 = irq::ticks();
    let c0 = tsc::read();
    let limit = tsc::frequency_hz();
    while irq::ticks() - t0 < 5 && tsc::read() - c0 < limit {
        core::hint::spin_loop();
    }
    let t1 = irq::ticks();
    let ns = tsc::ticks_to_ns(tsc::read() - c0);
    check!(
        t1 - t0 >= 5,
        "PIT interrupts arrive: {} ticks in {} us",
        t1 - t0,
        ns / 1000
    );
    log::info!(
        "selftest: timer: ok ({} PIT ticks in {} us of TSC time)",
        t1 - t0,
        ns / 1000
    );
}

fn exports() {
    let n = crate::exports::exports().len();
    check!(n >= 5, "at least 5 exports, found {n}");
    let memcpy = crate::mem::memcpy as *const () as u64;
    check!(
        crate::exports::find("memcpy") == Some(memcpy),
        "memcpy export address"
    );
    check!(
        crate::exports::find("nonexistent").is_none(),
        "no bogus export"
    );
    log::info!("selftest: exports: ok ({n} records, memcpy at {memcpy:#x})");
}
