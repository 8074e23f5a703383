//! Starting the application processors, running functions on other CPUs,
//! and TLB shootdown.
//!
//! **Start-up.** [`Starter::start`] gives an AP its per-CPU area, a guarded
//! kernel stack, three guarded IST stacks and its own GDT/TSS, patches the
//! trampoline ([`crate::arch::trampoline`]) for it and sends INIT, waits
//! 10 ms, then two STARTUP IPIs 200 µs apart. The AP claims its area in
//! [`ap_main`] (state `WAITING` → `ALIVE`), loads its tables and the shared
//! IDT, sets up its local APIC, calibrates and starts its timer, goes
//! online and idles with interrupts on (`READY`). An AP that does not claim
//! its area in [`ALIVE_TIMEOUT_MS`] is abandoned (the boot CPU wins the
//! state change, so a late AP halts without touching anything) and sent an
//! INIT, which parks it in wait-for-SIPI.
//!
//! **Calls.** [`call_on`] and [`call_on_all`] post a `&dyn Fn()` in the
//! target's mailbox, send [`apic::CALL_VECTOR`] and wait until it ran. The
//! function runs in the target's interrupt handler (interrupts off), so it
//! must be short and must not wait for the caller. While waiting, a caller
//! runs requests posted to itself, so two CPUs calling each other do not
//! deadlock. Callers must not hold a spin lock.
//!
//! **Shootdown.** [`shootdown`] is called by the page-table code, under its
//! lock, after it changed or removed mappings: every other online CPU gets
//! [`apic::SHOOTDOWN_VECTOR`], flushes the range and acknowledges the
//! request's generation, and the caller waits for every acknowledgement
//! before the change is final (and before freed page-table frames are
//! reused). A CPU that spins on the page-table lock with interrupts off
//! flushes pending requests while it spins ([`service_shootdown`]), so the
//! lock holder's wait always ends. A CPU that does not acknowledge within
//! [`SHOOTDOWN_TIMEOUT_MS`] is taken offline and reported.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::arch::gdt::CpuTables;
use crate::arch::percpu::{self, MAX_CPUS, PerCpu, mailbox, state};
use crate::arch::trampoline::{Trampoline, TrampolineError};
use crate::arch::{apic, tsc};
use crate::console::EmergencyWriter;
use crate::mm::PAGE_SIZE;
use crate::mm::stack::{self, StackError};

/// Pages of an AP's kernel stack.
pub const AP_STACK_PAGES: usize = 16;
/// Pages of each IST stack of an AP.
pub const IST_STACK_PAGES: usize = 4;
/// How long an AP has to reach its Rust entry after the STARTUP IPIs.
pub const ALIVE_TIMEOUT_MS: u64 = 500;
/// How long an AP that answered has to finish its set-up.
pub const READY_TIMEOUT_MS: u64 = 2000;
/// How long a caller waits for a call to start running.
pub const CALL_TIMEOUT_MS: u64 = 1000;
/// How long a shootdown waits for each acknowledgement.
pub const SHOOTDOWN_TIMEOUT_MS: u64 = 1000;

// ---- start-up ----------------------------------------------------------------

/// CR0 and CR4 of the boot CPU, which every AP copies.
static BSP_CR0: AtomicU64 = AtomicU64::new(0);
static BSP_CR4: AtomicU64 = AtomicU64::new(0);

/// Why an AP did not start.
#[derive(Clone, Copy, Debug)]
pub enum StartError {
    /// No per-CPU area (index out of range or heap full).
    NoArea,
    /// No stack for it.
    Stack(StackError),
    /// The local APIC did not accept an IPI.
    Send,
    /// It did not reach its entry in time.
    NoAnswer,
    /// It reached its entry but did not finish its set-up in time.
    NotReady,
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StartError::NoArea => f.write_str("no per-CPU area"),
            StartError::Stack(e) => write!(f, "no stack: {e:?}"),
            StartError::Send => f.write_str("the local APIC did not send the IPI"),
            StartError::NoAnswer => write!(f, "did not answer within {ALIVE_TIMEOUT_MS} ms"),
            StartError::NotReady => {
                write!(f, "answered but was not ready within {READY_TIMEOUT_MS} ms")
            }
        }
    }
}

/// A started AP.
pub struct Started {
    /// Its per-CPU area.
    pub cpu: &'static PerCpu,
    /// Time from the INIT IPI until it was ready.
    pub ns: u64,
}

/// Starts APs one at a time while the trampoline is installed.
pub struct Starter {
    tramp: Trampoline,
    cr3: u64,
}

fn wait_until(ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let limit = tsc::frequency_hz().saturating_mul(ms) / 1000;
    let t0 = tsc::read();
    loop {
        if done() {
            return true;
        }
        if tsc::read().wrapping_sub(t0) >= limit {
            return done();
        }
        core::hint::spin_loop();
    }
}

fn send(apic_id: u32, icr: u32) -> Result<(), StartError> {
    if apic::send(apic_id, icr) {
        Ok(())
    } else {
        Err(StartError::Send)
    }
}

impl Starter {
    /// Installs the trampoline. Needs the local APIC mapped and set up on
    /// the boot CPU.
    pub fn new() -> Result<Starter, TrampolineError> {
        use x86_64::registers::control::{Cr0, Cr3, Cr4};
        BSP_CR0.store(Cr0::read_raw(), Ordering::Relaxed);
        BSP_CR4.store(Cr4::read_raw(), Ordering::Relaxed);
        let (frame, _) = Cr3::read_raw();
        Ok(Starter {
            tramp: Trampoline::install()?,
            cr3: frame.start_address().as_u64(),
        })
    }

    /// Starts the AP with APIC id `apic_id` as CPU `index`; with `sipi`
    /// false the STARTUP IPIs are left out (it then cannot answer). What a
    /// CPU that did not start was given (area, stacks) stays allocated.
    pub fn start(&self, index: usize, apic_id: u32, sipi: bool) -> Result<Started, StartError> {
        let cpu = percpu::create(index, apic_id, &[]).ok_or(StartError::NoArea)?;
        let stack = stack::alloc(AP_STACK_PAGES).map_err(StartError::Stack)?;
        let mut ist = [0u64; 3];
        for top in ist.iter_mut() {
            *top = stack::alloc(IST_STACK_PAGES)
                .map_err(StartError::Stack)?
                .top;
        }
        cpu.stack_top.store(stack.top, Ordering::Relaxed);
        cpu.stack_guard.store(stack.guard, Ordering::Relaxed);
        cpu.set_tables(CpuTables::new(ist));
        self.tramp.prepare(
            self.cr3,
            stack.top,
            cpu as *const PerCpu as u64,
            ap_start64 as *const () as u64,
        );

        let t0 = tsc::read();
        send(apic_id, smpboot::ipi::init_assert())?;
        send(apic_id, smpboot::ipi::init_deassert())?;
        tsc::delay_ns(smpboot::ipi::INIT_DELAY_US * 1000);
        if sipi {
            let icr = smpboot::ipi::startup(self.tramp.start_address())
                .expect("the trampoline page is aligned and below 1 MiB");
            for _ in 0..2 {
                send(apic_id, icr)?;
                tsc::delay_ns(smpboot::ipi::STARTUP_DELAY_US * 1000);
            }
        }
        let answered = wait_until(ALIVE_TIMEOUT_MS, || {
            cpu.boot_state.load(Ordering::Acquire) != state::WAITING
        });
        if !answered
            && cpu
                .boot_state
                .compare_exchange(
                    state::WAITING,
                    state::ABANDONED,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
        {
            // Park it in wait-for-SIPI, so it cannot run the trampoline
            // after it is gone.
            let _ = send(apic_id, smpboot::ipi::init_assert());
            let _ = send(apic_id, smpboot::ipi::init_deassert());
            return Err(StartError::NoAnswer);
        }
        if !wait_until(READY_TIMEOUT_MS, || {
            cpu.boot_state.load(Ordering::Acquire) == state::READY
        }) {
            return Err(StartError::NotReady);
        }
        Ok(Started {
            cpu,
            ns: tsc::ticks_to_ns(tsc::read().wrapping_sub(t0)),
        })
    }

    /// Removes the trampoline (every AP that answered is past it; the
    /// others were sent an INIT).
    pub fn finish(self) {
        self.tramp.remove();
    }
}

/// First kernel code of an AP, jumped to by the trampoline with the per-CPU
/// area in `rdi`, the kernel's CR3 in `rsi` and its stack loaded.
#[unsafe(naked)]
unsafe extern "C" fn ap_start64() -> ! {
    core::arch::naked_asm!(
        // The kernel's page tables: the trampoline's identity mapping is
        // not in them. This code and the stack are mapped the same in both.
        "mov cr3, rsi",
        "xor ebp, ebp",
        "call {main}",
        "ud2",
        main = sym ap_main,
    )
}

/// Rust entry of an AP (interrupts off, GS base at `cpu`).
extern "C" fn ap_main(cpu: &'static PerCpu) -> ! {
    if cpu
        .boot_state
        .compare_exchange(
            state::WAITING,
            state::ALIVE,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_err()
    {
        // The boot CPU gave up on this CPU: use nothing shared.
        crate::exit::halt_forever();
    }
    // SAFETY: the boot CPU's CR0 and CR4 describe the same paging mode the
    // trampoline set up (PE, PG, WP; PAE) plus caching and FPU bits that are
    // valid on every CPU of the machine.
    unsafe {
        x86_64::registers::control::Cr0::write_raw(BSP_CR0.load(Ordering::Relaxed));
        x86_64::registers::control::Cr4::write_raw(BSP_CR4.load(Ordering::Relaxed));
    }
    // XCR0 is per CPU: the same AVX state as the boot CPU, before this CPU
    // can check a checksum.
    crate::arch::simd::enable_avx();
    match cpu.tables() {
        Some(t) => t.load(),
        None => crate::exit::halt_forever(),
    }
    crate::arch::idt::init();
    apic::init_local(false);
    cpu.seen_apic_id.store(apic::id(), Ordering::Relaxed);
    let hz = apic::calibrate_timer();
    cpu.timer_hz.store(hz, Ordering::Relaxed);
    cpu.shootdown_ack
        .store(SHOOT_GEN.load(Ordering::Acquire), Ordering::Relaxed);
    cpu.online.store(true, Ordering::Release);
    apic::start_timer(hz);
    cpu.boot_state.store(state::READY, Ordering::Release);
    idle()
}

/// Idles with interrupts on, forever (APs between requests).
pub fn idle() -> ! {
    loop {
        x86_64::instructions::interrupts::enable_and_hlt();
    }
}

// ---- calls ---------------------------------------------------------------------

/// A function to run on another CPU.
pub type CallFn<'a> = &'a (dyn Fn() + Sync);

/// Why a call did not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// No such CPU, or it is not online.
    NotOnline(usize),
    /// The CPU did not take the request in time (it was withdrawn).
    Timeout(usize),
}

impl core::fmt::Display for CallError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CallError::NotOnline(i) => write!(f, "CPU {i} is not online"),
            CallError::Timeout(i) => {
                write!(
                    f,
                    "CPU {i} did not take the call within {CALL_TIMEOUT_MS} ms"
                )
            }
        }
    }
}

/// Runs pending requests for the calling CPU: shootdowns, then its call.
pub fn service() {
    service_shootdown();
    let Some(me) = percpu::current() else {
        return;
    };
    let mb = &me.mailbox;
    if mb
        .state
        .compare_exchange(
            mailbox::POSTED,
            mailbox::RUNNING,
            Ordering::Acquire,
            Ordering::Relaxed,
        )
        .is_ok()
    {
        let p = mb.func.load(Ordering::Relaxed) as *const CallFn<'static>;
        // SAFETY: a caller stored the address of its `CallFn` before
        // posting, and keeps it alive until it sees DONE (or withdraws the
        // request, which it cannot do once it is RUNNING).
        let f = unsafe { *p };
        f();
        mb.runs.fetch_add(1, Ordering::Relaxed);
        mb.state.store(mailbox::DONE, Ordering::Release);
    }
}

/// `Ok` if CPU `index` is online, so that [`call_on`] can reach it.
pub fn check_online(index: usize) -> Result<(), CallError> {
    target(index).map(|_| ())
}

fn target(index: usize) -> Result<&'static PerCpu, CallError> {
    percpu::cpu(index)
        .filter(|c| c.online.load(Ordering::Acquire))
        .ok_or(CallError::NotOnline(index))
}

/// Claims `t`'s mailbox and posts `f` to it.
fn post(t: &'static PerCpu, f: &CallFn<'_>) -> Result<(), CallError> {
    let mb = &t.mailbox;
    let claimed = wait_until(CALL_TIMEOUT_MS, || {
        let ok = mb
            .state
            .compare_exchange(
                mailbox::FREE,
                mailbox::CLAIMED,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok();
        if !ok {
            service();
        }
        ok
    });
    if !claimed {
        return Err(CallError::Timeout(t.index));
    }
    mb.func
        .store(f as *const CallFn<'_> as usize, Ordering::Relaxed);
    mb.state.store(mailbox::POSTED, Ordering::Release);
    apic::send(t.apic_id, smpboot::ipi::fixed(apic::CALL_VECTOR));
    Ok(())
}

/// Waits until the request posted to `t` ran (or withdraws it if it was
/// not taken in time), then frees the mailbox.
fn finish(t: &'static PerCpu) -> Result<(), CallError> {
    let mb = &t.mailbox;
    let limit = tsc::frequency_hz().saturating_mul(CALL_TIMEOUT_MS) / 1000;
    let t0 = tsc::read();
    loop {
        match mb.state.load(Ordering::Acquire) {
            mailbox::DONE => {
                mb.state.store(mailbox::FREE, Ordering::Release);
                return Ok(());
            }
            mailbox::POSTED
                if tsc::read().wrapping_sub(t0) >= limit
                    && mb
                        .state
                        .compare_exchange(
                            mailbox::POSTED,
                            mailbox::FREE,
                            Ordering::AcqRel,
                            Ordering::Relaxed,
                        )
                        .is_ok() =>
            {
                return Err(CallError::Timeout(t.index));
            }
            _ => {
                service();
                core::hint::spin_loop();
            }
        }
    }
}

/// Runs `f` on CPU `index` and waits until it returned (on the calling CPU
/// it runs directly).
pub fn call_on(index: usize, f: CallFn<'_>) -> Result<(), CallError> {
    let t = target(index)?;
    if percpu::current().is_some_and(|me| me.index == index) {
        f();
        return Ok(());
    }
    post(t, &f)?;
    finish(t)
}

/// Runs `f` on every online CPU, the calling one included, and waits for
/// all. Returns on how many CPUs it ran, or the first CPU that missed it.
pub fn call_on_all(f: CallFn<'_>) -> Result<usize, CallError> {
    let me = percpu::index();
    let mut posted: [Option<&'static PerCpu>; MAX_CPUS] = [None; MAX_CPUS];
    let mut first_err = None;
    for t in percpu::online().filter(|c| c.index != me) {
        match post(t, &f) {
            Ok(()) => posted[t.index] = Some(t),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    f();
    let mut ran = 1;
    for t in posted.iter().flatten() {
        match finish(t) {
            Ok(()) => ran += 1,
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(ran), Err)
}

// ---- TLB shootdown -----------------------------------------------------------

static SHOOT_LOCK: AtomicBool = AtomicBool::new(false);
/// Generation of the latest request (CPUs acknowledge by storing it).
static SHOOT_GEN: AtomicU64 = AtomicU64::new(0);
static SHOOT_START: AtomicU64 = AtomicU64::new(0);
static SHOOT_LEN: AtomicU64 = AtomicU64::new(0);
/// Shootdowns that reached at least one other CPU.
static SHOOTDOWNS: AtomicU64 = AtomicU64::new(0);
/// Shootdown IPIs sent.
static SHOOTDOWN_IPIS: AtomicU64 = AtomicU64::new(0);

/// Flushes `[virt, virt + len)` from the calling CPU's TLB: page by page up
/// to 64 pages, else the whole (non-global) TLB.
fn flush_local(virt: u64, len: u64) {
    if len / PAGE_SIZE > 64 {
        x86_64::instructions::tlb::flush_all();
    } else {
        let mut v = virt;
        while v < virt.saturating_add(len) {
            x86_64::instructions::tlb::flush(x86_64::VirtAddr::new_truncate(v));
            v += PAGE_SIZE;
        }
    }
}

/// Flushes the calling CPU's TLB for the current shootdown request if it
/// has not yet, and acknowledges it. Safe to call anywhere, any time.
pub fn service_shootdown() {
    let Some(me) = percpu::current() else {
        return;
    };
    let gen_now = SHOOT_GEN.load(Ordering::Acquire);
    if me.shootdown_ack.load(Ordering::Relaxed) >= gen_now {
        return;
    }
    flush_local(
        SHOOT_START.load(Ordering::Relaxed),
        SHOOT_LEN.load(Ordering::Relaxed),
    );
    me.shootdown_flushes.fetch_add(1, Ordering::Relaxed);
    me.shootdown_ack.store(gen_now, Ordering::Release);
}

/// Makes every other online CPU flush `[virt, virt + len)` from its TLB and
/// waits until all did (the caller flushed its own). Does nothing while no
/// other CPU is online.
pub fn shootdown(virt: u64, len: u64) {
    let me = percpu::index();
    if !percpu::online().any(|c| c.index != me) {
        return;
    }
    crate::arch::without_interrupts(|| {
        while SHOOT_LOCK
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            service_shootdown();
            core::hint::spin_loop();
        }
        SHOOT_START.store(virt, Ordering::Relaxed);
        SHOOT_LEN.store(len, Ordering::Relaxed);
        let gen_now = SHOOT_GEN.fetch_add(1, Ordering::AcqRel) + 1;
        if let Some(c) = percpu::current() {
            c.shootdown_ack.store(gen_now, Ordering::Relaxed);
        }
        let mut targets: [Option<&'static PerCpu>; MAX_CPUS] = [None; MAX_CPUS];
        let mut sent = 0;
        for t in percpu::online().filter(|c| c.index != me) {
            if apic::send(t.apic_id, smpboot::ipi::fixed(apic::SHOOTDOWN_VECTOR)) {
                sent += 1;
            }
            targets[t.index] = Some(t);
        }
        for t in targets.iter().flatten() {
            let acked = wait_until(SHOOTDOWN_TIMEOUT_MS, || {
                t.shootdown_ack.load(Ordering::Acquire) >= gen_now
            });
            if !acked {
                t.online.store(false, Ordering::Release);
                use core::fmt::Write;
                let _ = writeln!(
                    EmergencyWriter,
                    "smp: CPU {} (APIC id {}) did not acknowledge TLB shootdown {gen_now} within {SHOOTDOWN_TIMEOUT_MS} ms; taken offline",
                    t.index, t.apic_id
                );
            }
        }
        SHOOTDOWNS.fetch_add(1, Ordering::Relaxed);
        SHOOTDOWN_IPIS.fetch_add(sent, Ordering::Relaxed);
        SHOOT_LOCK.store(false, Ordering::Release);
    });
}

/// TLB shootdowns so far that reached at least one other CPU.
pub fn shootdowns() -> u64 {
    SHOOTDOWNS.load(Ordering::Relaxed)
}

/// Shootdown IPIs sent so far.
pub fn shootdown_ipis() -> u64 {
    SHOOTDOWN_IPIS.load(Ordering::Relaxed)
}

// ---- fault-tolerant accesses (for the shootdown test) ------------------------

core::arch::global_asm!(
    ".section .text.smp_probe, \"ax\"",
    ".global smp_probe_read",
    "smp_probe_read:",
    "    xor edx, edx",
    ".global smp_probe_read_insn",
    "smp_probe_read_insn:",
    "    mov rax, qword ptr [rdi]",
    "    ret",
    ".global smp_probe_write",
    "smp_probe_write:",
    "    xor edx, edx",
    "    xor eax, eax",
    ".global smp_probe_write_insn",
    "smp_probe_write_insn:",
    "    mov qword ptr [rdi], rsi",
    "    ret",
    ".global smp_probe_fixup",
    "smp_probe_fixup:",
    "    mov edx, 1",
    "    ret",
    ".global smp_touch",
    "smp_touch:",
    "    mov rax, qword ptr [rdi]",
    "    ret",
    ".text",
);

#[repr(C)]
struct ProbeResult {
    value: u64,
    faulted: u64,
}

unsafe extern "C" {
    fn smp_probe_read(addr: u64) -> ProbeResult;
    fn smp_probe_write(addr: u64, value: u64) -> ProbeResult;
    fn smp_touch(addr: u64) -> u64;
    static smp_probe_read_insn: u8;
    static smp_probe_write_insn: u8;
    static smp_probe_fixup: u8;
}

fn probe_result(r: ProbeResult) -> Result<u64, u64> {
    if r.faulted != 0 {
        Err(r.value)
    } else {
        Ok(r.value)
    }
}

/// Reads the `u64` at `addr` (8-byte aligned, in RAM or unmapped) on the
/// calling CPU; a page fault does not end the kernel but returns
/// `Err(cr2)`.
pub fn probe_read(addr: u64) -> Result<u64, u64> {
    if !addr.is_multiple_of(8)
        || crate::mm::paging::translate(addr)
            .is_some_and(|t| t.1.contains(crate::mm::paging::Flags::NO_CACHE))
    {
        return Err(addr);
    }
    // SAFETY: the probe reads 8 aligned bytes at `addr`, which is not
    // device memory (checked); if the read faults, the exception dispatcher
    // resumes at the fix-up (`fix_probe_fault`) and the result is an error.
    probe_result(unsafe { smp_probe_read(addr) })
}

/// Writes `value` at `addr` on the calling CPU, which must be a page the
/// caller mapped for itself; a page fault returns `Err(cr2)`.
pub fn probe_write(addr: u64, value: u64) -> Result<(), u64> {
    if !addr.is_multiple_of(8) || !crate::smp::is_test_page(addr) {
        return Err(addr);
    }
    // SAFETY: `addr` lies in the shootdown test's own page (checked), which
    // nothing else uses; a fault resumes at the fix-up.
    probe_result(unsafe { smp_probe_write(addr, value) }).map(|_| ())
}

/// Reads `addr` without a fix-up, if the page tables do not map it: on a
/// CPU that flushed its TLB this page-faults and the exception report ends
/// the kernel; a stale TLB entry would let it read the old frame.
pub fn touch_unmapped(addr: u64) -> Option<u64> {
    if !addr.is_multiple_of(8) || crate::mm::paging::translate(addr).is_some() {
        return None;
    }
    // SAFETY: nothing is mapped at `addr`, so the read either faults (the
    // intended outcome) or, through a stale TLB entry, reads the RAM frame
    // that was mapped there, which has no side effect.
    Some(unsafe { smp_touch(addr) })
}

/// Called by the exception dispatcher first: a page fault of a probe's
/// access resumes at its fix-up with CR2 as the value.
pub(crate) fn fix_probe_fault(frame: &mut crate::arch::TrapFrame) -> bool {
    let read = (&raw const smp_probe_read_insn) as u64;
    let write = (&raw const smp_probe_write_insn) as u64;
    if frame.vector != crate::arch::idt::PAGE_FAULT || (frame.rip != read && frame.rip != write) {
        return false;
    }
    frame.rax = x86_64::registers::control::Cr2::read_raw();
    frame.rip = (&raw const smp_probe_fixup) as u64;
    true
}

/// The bytes of firmware memory (ACPI tables) at physical `phys`, if the
/// direct map covers them.
pub fn firmware_bytes(phys: u64, len: usize) -> Option<&'static [u8]> {
    let last = phys.checked_add(len.max(1) as u64 - 1)?;
    let direct =
        |p: u64| crate::mm::paging::virt_to_phys(crate::mm::paging::phys_to_virt(p)) == Some(p);
    if !direct(phys) || !direct(last) {
        return None;
    }
    // SAFETY: the direct map covers `phys..=last` (checked at both ends; it
    // is one contiguous mapping from physical 0) and is never unmapped; the
    // firmware's tables there are only read.
    Some(unsafe {
        core::slice::from_raw_parts(crate::mm::paging::phys_to_virt(phys) as *const u8, len)
    })
}
