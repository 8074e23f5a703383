//! Per-CPU areas, reached through the GS base.
//!
//! Every CPU owns one area, made before the CPU runs kernel code and never
//! freed. An area is a copy of the kernel's per-CPU template ([`PerCpu`] as
//! [`template`] gives it) followed by a copy of an appended template
//! ([`create`]'s `extra`): none today, the place a later change gives the
//! modules' per-CPU variables (their template prelinked like a fourth
//! class, copied into every area at [`PerCpu::extra`]). `IA32_GS_BASE`
//! holds the area's address and the area's first word holds it too, so
//! [`current`] is a single `mov reg, gs:[0]`.
//!
//! The boot CPU installs its area right after the heap is up
//! ([`init_boot_cpu`]); before that [`current`] returns `None`. An
//! application processor's area is made by the boot CPU before starting it,
//! and its trampoline loads the GS base before any Rust code runs.
//!
//! Fields other CPUs read or write (the call mailbox, the shootdown
//! acknowledgement, the online flag) are atomics; the rest is written
//! before the area is published.

use core::alloc::Layout;
use core::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

use crate::arch::gdt::CpuTables;

/// Most CPUs the kernel runs on (boot CPU included).
pub const MAX_CPUS: usize = 64;
/// Alignment of an area and of its appended part (a cache line).
pub const AREA_ALIGN: usize = 64;

/// Bring-up states of [`PerCpu::boot_state`].
pub mod state {
    /// Made; the CPU has not reached kernel code.
    pub const WAITING: u8 = 0;
    /// The CPU reached its Rust entry and claimed the area.
    pub const ALIVE: u8 = 1;
    /// Set up and idle: it takes calls and shootdowns.
    pub const READY: u8 = 2;
    /// The boot CPU gave up waiting; the CPU must not use the area.
    pub const ABANDONED: u8 = 3;
}

/// Mailbox states of [`Mailbox::state`].
pub mod mailbox {
    /// Free.
    pub const FREE: u8 = 0;
    /// A caller owns it and is writing the request.
    pub const CLAIMED: u8 = 1;
    /// A request is posted.
    pub const POSTED: u8 = 2;
    /// The owning CPU is running the request.
    pub const RUNNING: u8 = 3;
    /// The request finished; the caller frees the mailbox.
    pub const DONE: u8 = 4;
}

/// A CPU's IPI call mailbox: one request at a time (see
/// [`crate::arch::smp::call_on`]).
#[repr(C)]
pub struct Mailbox {
    /// One of the [`mailbox`] states.
    pub state: AtomicU8,
    /// Address of the caller's `&dyn Fn()` while a request is posted.
    pub func: AtomicUsize,
    /// Requests this CPU ran.
    pub runs: AtomicU64,
}

/// The kernel's part of a per-CPU area.
#[repr(C, align(64))]
pub struct PerCpu {
    /// Address of this area (`gs:[0]`).
    this: AtomicUsize,
    /// CPU index: 0 for the boot CPU, then in start-up order.
    pub index: usize,
    /// Local APIC id the MADT gives for this CPU.
    pub apic_id: u32,
    /// Local APIC id the CPU read from its own local APIC when it started.
    pub seen_apic_id: AtomicU32,
    /// One of the [`state`] values.
    pub boot_state: AtomicU8,
    /// Whether the CPU takes part in IPI calls and TLB shootdowns.
    pub online: AtomicBool,
    /// The module running on this CPU ([`crate::kapi::owner`]).
    pub module_owner: AtomicUsize,
    /// Frequency of this CPU's local APIC timer clock (after its divider),
    /// as the CPU measured it against the TSC.
    pub timer_hz: AtomicU64,
    /// Local APIC timer interrupts this CPU took.
    pub timer_ticks: AtomicU64,
    /// IPIs this CPU took (calls and shootdowns).
    pub ipis: AtomicU64,
    /// NMIs this CPU took as watchdog ticks.
    pub nmis: AtomicU64,
    /// TSC value from which the guarded callback running on this CPU is
    /// due for the NMI watchdog (0: none running): CPU 0 forwards the
    /// watchdog's NMI to a CPU past the eighth only while it is due.
    pub watch_due: AtomicU64,
    /// Last TLB shootdown generation this CPU flushed for.
    pub shootdown_ack: AtomicU64,
    /// Shootdown flushes this CPU did.
    pub shootdown_flushes: AtomicU64,
    /// IPI call mailbox.
    pub mailbox: Mailbox,
    /// Top of the CPU's guarded kernel stack (0 until it has one).
    pub stack_top: AtomicU64,
    /// The unmapped guard page below that stack.
    pub stack_guard: AtomicU64,
    /// The CPU's own GDT and TSS (`None` for the boot CPU, whose are static).
    tables: AtomicPtr<CpuTables>,
    /// Bytes of the appended part.
    extra_len: usize,
}

/// The kernel per-CPU template every area starts as, for CPU `index` with
/// APIC id `apic_id` and `extra_len` appended bytes.
pub const fn template(index: usize, apic_id: u32, extra_len: usize) -> PerCpu {
    PerCpu {
        this: AtomicUsize::new(0),
        index,
        apic_id,
        seen_apic_id: AtomicU32::new(u32::MAX),
        boot_state: AtomicU8::new(state::WAITING),
        online: AtomicBool::new(false),
        module_owner: AtomicUsize::new(crate::kapi::KERNEL),
        timer_hz: AtomicU64::new(0),
        timer_ticks: AtomicU64::new(0),
        ipis: AtomicU64::new(0),
        nmis: AtomicU64::new(0),
        watch_due: AtomicU64::new(0),
        shootdown_ack: AtomicU64::new(0),
        shootdown_flushes: AtomicU64::new(0),
        mailbox: Mailbox {
            state: AtomicU8::new(mailbox::FREE),
            func: AtomicUsize::new(0),
            runs: AtomicU64::new(0),
        },
        stack_top: AtomicU64::new(0),
        stack_guard: AtomicU64::new(0),
        tables: AtomicPtr::new(core::ptr::null_mut()),
        extra_len,
    }
}

/// Offset of the appended part in every area.
pub const fn extra_offset() -> usize {
    size_of::<PerCpu>().next_multiple_of(AREA_ALIGN)
}

impl PerCpu {
    /// The appended part of this area (empty today).
    pub fn extra(&self) -> *mut u8 {
        (self as *const PerCpu as *mut u8).wrapping_add(extra_offset())
    }

    /// Bytes in the appended part.
    pub fn extra_len(&self) -> usize {
        self.extra_len
    }

    /// The CPU's own GDT and TSS, if it is not the boot CPU.
    pub fn tables(&self) -> Option<&'static CpuTables> {
        let p = self.tables.load(Ordering::Acquire);
        // SAFETY: only `set_tables` stores non-null values, each from a
        // `&'static CpuTables`.
        (!p.is_null()).then(|| unsafe { &*p })
    }

    /// Records the CPU's own GDT and TSS (before the CPU starts).
    pub fn set_tables(&self, t: &'static CpuTables) {
        self.tables
            .store(t as *const CpuTables as *mut CpuTables, Ordering::Release);
    }
}

/// Every area made, by CPU index.
static AREAS: [AtomicPtr<PerCpu>; MAX_CPUS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];
/// Set once the boot CPU's GS base holds its area.
static READY: AtomicBool = AtomicBool::new(false);

/// Makes the area of CPU `index` with APIC id `apic_id`: the kernel
/// template, then `extra` copied behind it. `None` if `index` is out of
/// range, already taken, or the heap is full.
pub fn create(index: usize, apic_id: u32, extra: &[u8]) -> Option<&'static PerCpu> {
    if index >= MAX_CPUS || !AREAS[index].load(Ordering::Acquire).is_null() {
        return None;
    }
    let size = extra_offset() + extra.len().next_multiple_of(AREA_ALIGN);
    let layout = Layout::from_size_align(size, AREA_ALIGN).ok()?;
    let p = crate::mm::heap::try_alloc(layout)?.as_ptr();
    let area = p.cast::<PerCpu>();
    // SAFETY: `p` is a fresh, exclusively owned heap block of `size` bytes
    // aligned to 64, large enough for a `PerCpu` and `extra` at
    // `extra_offset()`; it is never freed, so the `'static` reference stays
    // valid.
    let cpu: &'static PerCpu = unsafe {
        area.write(template(index, apic_id, extra.len()));
        core::ptr::copy_nonoverlapping(extra.as_ptr(), p.add(extra_offset()), extra.len());
        &*area
    };
    cpu.this.store(area as usize, Ordering::Relaxed);
    AREAS[index].store(area, Ordering::Release);
    Some(cpu)
}

/// Points the calling CPU's GS base at `cpu`.
fn install(cpu: &'static PerCpu) {
    let addr = cpu as *const PerCpu as u64;
    // SAFETY: IA32_GS_BASE only changes what `gs:` addresses; the kernel
    // never uses GS otherwise, and `cpu` lives forever.
    unsafe { x86_64::registers::model_specific::Msr::new(0xc000_0101).write(addr) };
}

/// Makes and installs the boot CPU's area (index 0). Needs the heap.
pub fn init_boot_cpu(apic_id: u32) -> Option<&'static PerCpu> {
    let cpu = create(0, apic_id, &[])?;
    install(cpu);
    cpu.online.store(true, Ordering::Release);
    READY.store(true, Ordering::Release);
    Some(cpu)
}

/// The calling CPU's area (`None` before [`init_boot_cpu`]).
#[inline]
pub fn current() -> Option<&'static PerCpu> {
    if !READY.load(Ordering::Acquire) {
        return None;
    }
    let p: usize;
    // SAFETY: once READY is set every CPU running kernel code has its GS
    // base at its area (the boot CPU set it before READY, the others in
    // their trampoline), whose first word is its address.
    unsafe {
        core::arch::asm!("mov {}, qword ptr gs:[0]", out(reg) p, options(nostack, readonly, preserves_flags));
        Some(&*(p as *const PerCpu))
    }
}

/// The calling CPU's index (0 before the per-CPU areas exist).
#[inline]
pub fn index() -> usize {
    current().map_or(0, |c| c.index)
}

/// The area of CPU `index`, if made.
pub fn cpu(index: usize) -> Option<&'static PerCpu> {
    let p = AREAS.get(index)?.load(Ordering::Acquire);
    // SAFETY: non-null entries come from `create` and point at areas that
    // are never freed.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// Every area made, by index.
pub fn all() -> impl Iterator<Item = &'static PerCpu> {
    (0..MAX_CPUS).filter_map(cpu)
}

/// The CPUs that are online (take calls and shootdowns).
pub fn online() -> impl Iterator<Item = &'static PerCpu> {
    all().filter(|c| c.online.load(Ordering::Acquire))
}
