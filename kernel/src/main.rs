//! A small x86_64 higher-half kernel whose drivers are prelinked built-in
//! modules (see the project's design notes).
//!
//! Boot path: QEMU's PVH loader enters [`boot`] in 32-bit mode; the
//! trampoline enables long mode and calls [`kernel_main`] in the higher half,
//! which brings up, in order: COM1 and logging, the GDT/TSS and IDT, the
//! PVH memory map and command line, the frame allocator, the kernel's own
//! page tables, the heap and the boot CPU's per-CPU area, the PICs and PIT,
//! the TSC, interrupts, the local APIC and the other CPUs ([`smp`]), which
//! idle while the boot CPU runs the boot self-tests and the module phase.
//! Then it exits QEMU (status 33, or 37 if a kept module failed its
//! self-test or faulted later) or, with `halt` on the command line, idles.
//!
//! Public APIs for the rest of the kernel: [`console`], [`serial`],
//! [`exit`], [`panic`], [`cmdline`], [`pvh`], [`layout`], [`exports`], [`hw`],
//! [`arch::gdt`], [`arch::idt`], [`arch::irq`], [`arch::tsc`],
//! [`arch::apic`], [`arch::percpu`], [`arch::smp`], [`smp`],
//! [`mm::frames`], [`mm::paging`], [`mm::heap`].
#![no_std]
#![no_main]

extern crate alloc;

pub mod arch;
pub mod boot;
pub mod cmdline;
pub mod console;
pub mod exit;
pub mod exports;
pub mod hw;
pub mod initrd;
pub mod kapi;
pub mod layout;
pub mod loader;
pub mod mem;
pub mod mm;
pub mod modules;
pub mod panic;
pub mod pvh;
pub mod rx;
pub mod selftest;
pub mod serial;
pub mod shell;
pub mod smp;
pub mod watchdog;

use arch::{gdt, idt, irq, tsc};
use mm::{frames, heap, paging};

/// Kernel version, from Cargo.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

const MIB: u64 = 1 << 20;

/// Rust entry point, called by the boot trampoline on the boot stack with
/// the physical address of the PVH `hvm_start_info`.
#[unsafe(no_mangle)]
pub extern "C" fn kernel_main(start_info_phys: u32) -> ! {
    tsc::mark_boot();
    serial::init();
    console::init_logger(log::LevelFilter::Info);
    kprintln!();
    kprintln!("plk {VERSION}: x86_64 kernel with prelinked built-in modules (PVH boot)");

    gdt::init();
    idt::init();
    let avx = arch::simd::enable_avx();
    log::info!(
        "simd: checksum blocks on {} (AVX state {})",
        modtable::checksum::simd().name(),
        if avx { "enabled" } else { "absent" }
    );

    let boot = match pvh::init(u64::from(start_info_phys)) {
        Ok(b) => b,
        Err(e) => panic!("cannot read the PVH start info at {start_info_phys:#x}: {e:?}"),
    };
    if let Some(level) = cmdline::get("loglevel").and_then(|l| l.parse().ok()) {
        log::set_max_level(level);
    }
    log::info!("cmdline: \"{}\"", cmdline::raw());
    print_memory_map(boot);
    print_layout();

    let fs = frames::init(boot);
    log::info!(
        "frames: {} free ({} MiB) of {} covered; reserved below {:#x} (first MiB + image), bitmap at {:#x}..{:#x}",
        fs.free_frames,
        fs.free_frames * frames::FRAME_SIZE / MIB,
        fs.total_frames,
        fs.reserved_below,
        fs.bitmap.0,
        fs.bitmap.1
    );

    let free_bytes = fs.free_frames * frames::FRAME_SIZE;
    if free_bytes < mm::MIN_FREE_BYTES {
        // What -m would give MIN_FREE_BYTES: the image, the bitmap, the
        // minimum, and what the firmware keeps at the top of RAM (the
        // usable top rounded up to a whole MiB, as QEMU sizes RAM).
        let top = boot.usable_top();
        let firmware = top.next_multiple_of(MIB) - top;
        let bitmap = fs.bitmap.1 - fs.bitmap.0;
        let need = (fs.reserved_below + bitmap + mm::MIN_FREE_BYTES + firmware).div_ceil(MIB);
        log::error!(
            "memory: {} KiB free above the kernel image, the kernel needs {} KiB: give the machine at least {need} MiB of RAM (QEMU -m {need}M)",
            free_bytes / 1024,
            mm::MIN_FREE_BYTES / 1024
        );
        exit::failure();
    }

    let ps = match paging::init(boot.usable_top()) {
        Ok(s) => s,
        Err(e) => panic!("building the kernel page tables failed: {e}"),
    };
    let identity_gone = paging::translate(0x10_0000).is_none();
    log::info!(
        "paging: kernel tables at {:#x}: {} x 2M + {} x 4K mappings in {} tables, direct map {} MiB at {:#x}, W+X pages: {}, low identity map removed: {}",
        ps.root,
        ps.stats.pages_2m,
        ps.stats.pages_4k,
        ps.stats.tables,
        ps.direct_map_bytes / MIB,
        paging::DIRECT_MAP_BASE,
        paging::count_wx_pages(),
        if identity_gone { "yes" } else { "NO" }
    );
    if !identity_gone {
        panic!("the low identity map is still present");
    }

    let heap_size = heap::size_for(free_bytes);
    match heap::init(heap_size) {
        Ok(phys) if heap_size < heap::MAX_HEAP_SIZE => log::info!(
            "heap: {} KiB at physical {phys:#x} (reduced from {} KiB: {} KiB free)",
            heap_size / 1024,
            heap::MAX_HEAP_SIZE / 1024,
            free_bytes / 1024
        ),
        Ok(phys) => log::info!("heap: {} KiB at physical {phys:#x}", heap_size / 1024),
        Err(e) => panic!("no memory for the kernel heap: {e}"),
    }
    let Some(cpu0) = arch::percpu::init_boot_cpu(arch::apic::initial_id()) else {
        panic!("no memory for the boot CPU's per-CPU area");
    };

    let stack = match mm::stack::alloc(KERNEL_STACK_PAGES) {
        Ok(s) => s,
        Err(e) => panic!("cannot allocate the kernel stack: {e:?}"),
    };
    log::info!(
        "stack: {} KiB at {:#x}..{:#x}, guard page at {:#x}",
        KERNEL_STACK_PAGES * 4,
        stack.bottom,
        stack.top,
        stack.guard
    );
    cpu0.stack_top
        .store(stack.top, core::sync::atomic::Ordering::Relaxed);
    cpu0.stack_guard
        .store(stack.guard, core::sync::atomic::Ordering::Relaxed);
    // SAFETY: `stack` was just mapped for this purpose and nothing else uses
    // it; `kernel_main_on_stack` never returns.
    unsafe { mm::stack::switch_to(stack.top, kernel_main_on_stack) }
}

/// Pages of the guarded kernel stack the boot continues on.
const KERNEL_STACK_PAGES: usize = 32;

/// Second half of the boot, on the guarded kernel stack.
extern "C" fn kernel_main_on_stack() -> ! {
    irq::init();
    log::info!(
        "irq: 8259 PICs remapped to vectors {}-{}, PIT channel 0 at {} Hz",
        irq::IRQ_BASE,
        irq::IRQ_BASE + irq::NUM_IRQS - 1,
        irq::TIMER_HZ
    );
    let hz = tsc::calibrate();
    if hz == 0 {
        panic!("TSC calibration failed: PIT channel 2 never fired");
    }
    log::info!(
        "tsc: {}.{:03} MHz (calibrated against PIT channel 2, shortest of {} x {} ms)",
        hz / 1_000_000,
        (hz / 1000) % 1000,
        tsc::CALIBRATION_RUNS,
        tsc::CALIBRATION_MS
    );
    arch::enable_interrupts();
    smp::init();
    watchdog::arm();

    selftest::run();

    smp::begin_module_phase();
    if let Err(e) = modules::boot() {
        log::error!("modules: {e}");
        exit::failure();
    }

    log::info!(
        "boot: done in {} us; {} frames free, heap {} bytes used",
        tsc::now_ns() / 1000,
        frames::free_frames(),
        heap::used_bytes()
    );
    if let Err(e) = smp::after_boot() {
        log::error!("{e}");
        exit::failure();
    }
    loader::load_from_cmdline();

    match cmdline::get("fault") {
        Some("pagefault") => {
            log::info!("fault=pagefault: reading {:#x}", cmdline::FAULT_ADDRESS);
            // SAFETY: deliberately faults: the address is not mapped, and the
            // page-fault handler reports it and exits.
            let v = unsafe { (cmdline::FAULT_ADDRESS as *const u64).read_volatile() };
            panic!("read of an unmapped address returned {v:#x}");
        }
        Some("ud") => {
            log::info!("fault=ud: executing ud2");
            // SAFETY: deliberately raises #UD, which the handler reports.
            unsafe { core::arch::asm!("ud2") };
            panic!("ud2 returned");
        }
        Some("panic") => panic!("fault=panic requested on the command line"),
        Some("wx_alias") => {
            let Some((name, text)) = modules::first_kept_text() else {
                panic!("fault=wx_alias: no kept module with text");
            };
            let alias = paging::phys_to_virt(text - layout::KERNEL_VMA);
            log::info!(
                "fault=wx_alias: writing to {alias:#x}, the direct-map alias of module {name}'s text at {text:#x}"
            );
            // SAFETY: deliberately faults: the direct map covers text
            // read-only, and the page-fault handler reports it and exits.
            unsafe { (alias as *mut u8).write_volatile(0xcc) };
            panic!("a write through the direct-map alias of text did not fault");
        }
        Some("stackoverflow") => {
            log::info!("fault=stackoverflow: recursing without bound");
            let depth = recurse(0);
            panic!("unbounded recursion returned {depth}");
        }
        Some(other) => log::warn!("unknown fault={other} ignored"),
        None => {}
    }

    if cmdline::has("shell") {
        shell::run();
    }
    if cmdline::has("halt") {
        log::info!("halt: idling with interrupts on");
        loop {
            x86_64::instructions::hlt();
        }
    }
    let degraded = modules::health::degraded();
    if !degraded.is_empty() {
        for (name, why) in degraded {
            log::warn!("module {name}: {why}");
        }
        log::warn!(
            "exit: degraded: {} kept module(s) failed after their probe: {}",
            degraded.len(),
            modules::health::degraded_names().join(", ")
        );
        exit::degraded()
    }
    log::info!("exit: success");
    exit::success()
}

/// Recurses until the stack runs into its guard page (`fault=stackoverflow`).
#[allow(unconditional_recursion)]
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 32]);
    recurse(depth + 1) + frame[7]
}

fn print_memory_map(boot: &pvh::BootInfo) {
    log::info!(
        "memory map: {} entries from the PVH start info at {:#x}",
        boot.firmware_entries,
        boot.start_info_phys
    );
    for r in boot.memory_map() {
        log::info!(
            "  [{:#014x}-{:#014x}] {:<9} {:>8} KiB",
            r.start,
            r.end().saturating_sub(1),
            r.kind.name(),
            r.size / 1024
        );
    }
    let usable = boot.usable_bytes();
    log::info!(
        "memory: {} KiB ({}.{} MiB) usable in {} regions",
        usable / 1024,
        usable / MIB,
        (usable % MIB) * 10 / MIB,
        boot.usable().count()
    );
}

fn print_layout() {
    let show = |name: &str, r: layout::Range| {
        log::info!(
            "  {name:<16} {:#x}-{:#x} {:>6} KiB",
            r.start,
            r.end,
            r.len() / 1024
        );
    };
    log::info!("image layout:");
    show(".text", layout::text());
    show(".modules.text", layout::modules_text());
    show(".rodata", layout::rodata());
    show(".kexports", layout::kexports());
    show(".modtable", layout::modtable());
    show(".modules.rodata", layout::modules_rodata());
    show(".data", layout::data());
    show(".bss", layout::bss());
    show(".modules.data", layout::modules_data());
}
