//! Running module code under guard: a CPU exception, a panic, a forbidden
//! use of a service or an exhausted time budget inside module code returns
//! control to the kernel code that called it, with the reason, and the
//! kernel carries on.
//!
//! Every call into module code is guarded: probes and self-tests
//! ([`run`]), IRQ handlers ([`call_handler`]) and the console's write
//! function ([`call_writer`]). Each pushes a frame on a small stack (an IRQ
//! handler may interrupt a probe, a console write may happen inside either)
//! holding the module, its deadline and a saved context (a setjmp) to
//! return to. A fault or panic is charged to the module of the innermost
//! frame, so a kept module's IRQ handler that faults during another
//! module's probe is blamed, not the probe.
//!
//! Leaving module code early (a longjmp, in [`switch`]) skips the frames
//! above the saved context without running their destructors. So that this
//! never skips kernel state:
//!
//! - kernel services ([`crate::kapi::service`]) never escape from inside:
//!   they return an error, and [`escape`] is called only after the service
//!   body returned and its locals were dropped;
//! - the exception and timer hooks escape only when they interrupted module
//!   code itself (not a service), so the skipped frames are the module's;
//! - a fault inside a service is a kernel fault, except in the checked copy
//!   of module buffers ([`crate::arch::checked_copy`]), which turns it into
//!   an error the service returns like any other.
//!
//! The time budget is checked by the timer tick while module code runs and
//! by every service that waits ([`check_deadline`]); a tick that finds the
//! budget spent while the module is inside a non-waiting service leaves the
//! cut-off to that service's return. Callbacks run with interrupts off, out
//! of the tick's reach: the NMI watchdog ([`crate::watchdog`], [`on_nmi`])
//! cuts off one still running after [`WATCHDOG_MS`] the same way.

mod switch;

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::idt::TrapFrame;
use switch::Shared;
pub use switch::run;

/// Guarded calls that may be nested (probe, IRQ handler, console write).
const MAX_DEPTH: usize = 4;
/// Nested service calls whose names are kept for reports.
const MAX_SERVICES: usize = 8;
/// Runtime faults of callbacks kept until the loader collects them.
const MAX_RUNTIME_FAULTS: usize = 8;
/// Time an IRQ handler or console write may take (enforced by waiting
/// services; interrupts are off in both).
pub const CALLBACK_BUDGET_MS: u64 = 10;
/// Time after which the NMI watchdog cuts off an IRQ handler or console
/// write that never waits (spinning in its own code or on a non-waiting
/// service). Well above [`CALLBACK_BUDGET_MS`]: a console write of 64 bytes
/// legitimately takes 6 ms at 115200 baud, more on a loaded emulator host,
/// and the watchdog is there for hangs, not to enforce the budget.
pub const WATCHDOG_MS: u64 = 200;

/// A short message kept without allocating (faults may happen anywhere).
#[derive(Clone, Copy)]
pub struct Msg {
    buf: [u8; 160],
    len: usize,
}

impl Msg {
    /// An empty message.
    pub const fn new() -> Msg {
        Msg {
            buf: [0; 160],
            len: 0,
        }
    }

    /// Capacity in bytes.
    pub const CAPACITY: usize = 160;

    /// A message formatted from `args` (cut at 160 bytes).
    pub fn from_fmt(args: fmt::Arguments<'_>) -> Msg {
        let mut m = Msg::new();
        let _ = m.write_fmt(args);
        m
    }

    /// A message holding (a prefix of) `bytes`, lossily as UTF-8.
    pub fn from_bytes(bytes: &[u8]) -> Msg {
        let s = match core::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
        };
        Msg::from_fmt(format_args!("{s}"))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Write for Msg {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            let mut b = [0u8; 4];
            let e = c.encode_utf8(&mut b).as_bytes();
            if self.len + e.len() > self.buf.len() {
                break;
            }
            self.buf[self.len..self.len + e.len()].copy_from_slice(e);
            self.len += e.len();
        }
        Ok(())
    }
}

impl Default for Msg {
    fn default() -> Self {
        Msg::new()
    }
}

/// Where module code was called from, when it is not a probe or self-test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// The handler of an IRQ line.
    Irq(u8),
    /// The console's write function.
    Console,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Irq(l) => write!(f, "IRQ {l} handler"),
            Place::Console => f.write_str("console write"),
        }
    }
}

/// What a guarded call runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A probe or self-test (interrupts on, cut off by the timer tick).
    Probe,
    /// A callback from interrupt or console context (interrupts stay off).
    Callback(Place),
}

/// Why guarded module code did not return normally.
#[derive(Clone, Copy)]
pub enum Abort {
    /// A CPU exception in module code.
    Fault {
        /// Exception vector.
        vector: u64,
        /// Instruction pointer.
        rip: u64,
        /// Faulting address (page faults).
        cr2: u64,
        /// Error code pushed by the CPU (0 if none).
        error: u64,
    },
    /// A CPU exception inside a kernel service, touching memory the module
    /// passed to it.
    ServiceFault {
        /// The service.
        service: &'static str,
        /// Exception vector.
        vector: u64,
        /// The address that faulted.
        addr: u64,
        /// Start of the buffer the module passed.
        buf: u64,
        /// Its length.
        len: usize,
    },
    /// The module panicked.
    Panic(Msg),
    /// The module ran past its time budget.
    Hung {
        /// The budget in milliseconds.
        budget_ms: u64,
        /// The waiting service that noticed, if it was one.
        service: Option<&'static str>,
        /// Cut off by the NMI watchdog (interrupts were off).
        nmi: bool,
    },
    /// The module used a service it may not (unclaimed port, foreign memory).
    Violation(Msg),
    /// A callback of the module (IRQ handler, console write) ended with this
    /// (kind name and text) while the module itself was being probed.
    Callback(Place, &'static str, Msg),
}

impl Abort {
    /// A violation with a formatted message.
    pub fn violation(args: fmt::Arguments<'_>) -> Abort {
        Abort::Violation(Msg::from_fmt(args))
    }

    /// Short kind name for the report.
    pub fn kind(&self) -> &'static str {
        match self {
            Abort::Fault { .. } | Abort::ServiceFault { .. } => "fault",
            Abort::Panic(_) => "panic",
            Abort::Hung { .. } => "hung",
            Abort::Violation(_) => "violation",
            Abort::Callback(_, k, _) => k,
        }
    }

    /// The instruction pointer of a fault in module code.
    pub fn rip(&self) -> Option<u64> {
        match self {
            Abort::Fault { rip, .. } => Some(*rip),
            _ => None,
        }
    }
}

impl fmt::Display for Abort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Abort::Fault {
                vector,
                rip,
                cr2,
                error,
            } => {
                write!(
                    f,
                    "{} (vector {vector}) at rip {rip:#x}",
                    exception_name(*vector)
                )?;
                if *vector == 14 {
                    write!(f, ", address {cr2:#x}, error {error:#x}")?;
                } else if *error != 0 {
                    write!(f, ", error {error:#x}")?;
                }
                Ok(())
            }
            Abort::ServiceFault {
                service,
                vector,
                addr,
                buf,
                len,
            } => write!(
                f,
                "{} (vector {vector}) in kernel service {service} at address {addr:#x}, in the buffer {buf:#x}+{len} the module passed",
                exception_name(*vector)
            ),
            Abort::Panic(m) => write!(f, "panic: {}", m.as_str()),
            Abort::Hung {
                budget_ms,
                service,
                nmi,
            } => {
                write!(f, "hung: still running after {budget_ms} ms")?;
                match (service, nmi) {
                    (Some(s), false) => write!(f, " (waiting in {s})"),
                    (Some(s), true) => write!(f, " (in {s}, cut off by the NMI watchdog)"),
                    (None, true) => write!(f, " (cut off by the NMI watchdog)"),
                    (None, false) => Ok(()),
                }
            }
            Abort::Violation(m) => write!(f, "violation: {}", m.as_str()),
            Abort::Callback(p, _, m) => write!(f, "{p}: {}", m.as_str()),
        }
    }
}

/// Mnemonic name of an exception vector.
pub fn exception_name(vector: u64) -> &'static str {
    const NAMES: [&str; 21] = [
        "divide error (#DE)",
        "debug (#DB)",
        "NMI",
        "breakpoint (#BP)",
        "overflow (#OF)",
        "bound range (#BR)",
        "invalid opcode (#UD)",
        "device not available (#NM)",
        "double fault (#DF)",
        "coprocessor segment overrun",
        "invalid TSS (#TS)",
        "segment not present (#NP)",
        "stack fault (#SS)",
        "general protection (#GP)",
        "page fault (#PF)",
        "reserved",
        "x87 error (#MF)",
        "alignment check (#AC)",
        "machine check (#MC)",
        "SIMD error (#XM)",
        "virtualization (#VE)",
    ];
    NAMES.get(vector as usize).copied().unwrap_or("exception")
}

/// A callback that ended early: which module, where, how, and during which
/// probe or self-test (if one was running).
#[derive(Clone, Copy)]
pub struct RuntimeFault {
    /// The callback's module.
    pub module: usize,
    /// The callback.
    pub place: Place,
    /// How it ended.
    pub abort: Abort,
    /// The module whose probe or self-test was running, if any.
    pub during: Option<usize>,
    /// The CPU the callback ran on.
    pub cpu: usize,
}

#[derive(Clone, Copy)]
struct Frame {
    module: usize,
    kind: Kind,
    deadline: u64,
    budget_ms: u64,
    /// When the NMI watchdog cuts a callback off ([`WATCHDOG_MS`]).
    watchdog_deadline: u64,
    /// Service depth when the call began: deeper means "inside a service".
    service_base: usize,
    /// An abort that takes effect when the current service returns.
    pending: Option<Abort>,
    /// Why the call was cut short (read after the escape).
    abort: Option<Abort>,
    /// What `kapi_probe_fail` reported.
    failure: Option<(i32, Msg)>,
}

/// One CPU's guard state: the guarded calls running on it, innermost last.
struct State {
    frames: [Option<Frame>; MAX_DEPTH],
    depth: usize,
    services: [&'static str; MAX_SERVICES],
    service_depth: usize,
    last_failure: Option<(i32, Msg)>,
}

/// Callback faults waiting for the loader, from every CPU.
struct RuntimeLog {
    faults: [Option<RuntimeFault>; MAX_RUNTIME_FAULTS],
    lost: usize,
}

impl State {
    fn top(&mut self) -> Option<&mut Frame> {
        let d = self.depth.checked_sub(1)?;
        self.frames[d].as_mut()
    }

    fn in_service(&mut self) -> bool {
        let depth = self.service_depth;
        self.top().is_some_and(|t| depth > t.service_base)
    }

    fn service_name(&self) -> &'static str {
        match self.service_depth.checked_sub(1) {
            Some(d) if d < MAX_SERVICES => self.services[d],
            _ => "a kernel service",
        }
    }
}

/// Each CPU's guard state, made by [`install`] for every CPU the kernel
/// brought up: a guarded call, and the exceptions, ticks and services that
/// interrupt it, all run on one CPU, so each CPU keeps its own frames (and
/// [`switch`] its own saved contexts). Allocated rather than static so
/// that CPUs that do not exist cost nothing.
static STATE: spin::Once<&'static [Shared<State>]> = spin::Once::new();

static RUNTIME: spin::Mutex<RuntimeLog> = spin::Mutex::new(RuntimeLog {
    faults: [None; MAX_RUNTIME_FAULTS],
    lost: 0,
});

/// Runs `f` on the calling CPU's guard state with interrupts off. `None` if
/// it is already in use (an exception inside the guard itself).
fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    STATE.get()?.get(crate::arch::percpu::index())?.with(f)
}

/// Runs `f` on the runtime-fault log with interrupts off (so an interrupt
/// on this CPU cannot find it locked).
fn with_runtime<R>(f: impl FnOnce(&mut RuntimeLog) -> R) -> R {
    crate::arch::without_interrupts(|| f(&mut RUNTIME.lock()))
}

/// Whether the frame of `depth` is live (its call has not returned).
fn frame_live(depth: usize) -> bool {
    with_state(|s| depth < s.depth && s.frames[depth].is_some()).unwrap_or(false)
}

/// How a guarded call ended.
pub enum Outcome {
    /// The module's function returned this value.
    Returned(i32),
    /// It was cut short.
    Aborted(Abort),
}

/// Installs the hooks; called once before the first module runs.
pub fn install() {
    let cpus = crate::arch::percpu::all()
        .map(|c| c.index + 1)
        .max()
        .unwrap_or(1);
    STATE.call_once(|| {
        let states: alloc::vec::Vec<Shared<State>> = (0..cpus)
            .map(|_| {
                Shared::new(State {
                    frames: [None; MAX_DEPTH],
                    depth: 0,
                    services: [""; MAX_SERVICES],
                    service_depth: 0,
                    last_failure: None,
                })
            })
            .collect();
        states.leak()
    });
    crate::arch::idt::set_exception_hook(Some(on_exception));
    crate::arch::irq::set_tick_hook(Some(on_tick));
    crate::arch::nmi::set_hook(Some(on_nmi));
}

/// The TSC value `ms` milliseconds after `start`.
fn deadline_after(start: u64, ms: u64) -> u64 {
    let ticks = crate::arch::tsc::frequency_hz().saturating_mul(ms) / 1000;
    start.saturating_add(ticks)
}

/// Runs `call` (which jumps into module code, see [`switch`]) as `module`
/// under a new frame of `kind` with a budget; `call` gets the frame's depth
/// and returns `None` if the module code was left by an escape.
fn guarded(
    module: usize,
    kind: Kind,
    budget_ms: u64,
    call: impl FnOnce(usize) -> Option<i64>,
) -> Outcome {
    let were_on = x86_64::instructions::interrupts::are_enabled();
    x86_64::instructions::interrupts::disable();
    let start = crate::arch::tsc::read();
    let watchdog_deadline = deadline_after(start, WATCHDOG_MS);
    let depth = with_state(|s| {
        let d = s.depth;
        if d >= MAX_DEPTH {
            return None;
        }
        s.frames[d] = Some(Frame {
            module,
            kind,
            deadline: deadline_after(start, budget_ms),
            budget_ms,
            watchdog_deadline,
            service_base: s.service_depth,
            pending: None,
            abort: None,
            failure: None,
        });
        s.depth = d + 1;
        Some(d)
    })
    .flatten();
    let Some(d) = depth else {
        if were_on {
            x86_64::instructions::interrupts::enable();
        }
        return Outcome::Aborted(Abort::violation(format_args!(
            "module calls nested more than {MAX_DEPTH} deep"
        )));
    };
    // When the watchdog is due to look at this call (callbacks only, as
    // [`on_nmi`]): CPU 0 forwards its NMI to a CPU past the eighth only
    // then.
    let cpu = crate::arch::percpu::current();
    let due = if matches!(kind, Kind::Callback(_)) {
        watchdog_deadline
    } else {
        0
    };
    let due_before = cpu.map(|c| c.watch_due.swap(due, Ordering::Relaxed));
    let prev = crate::kapi::set_owner(module);
    let code = call(d);
    // Interrupts are off again here (the jump in and the escape see to it).
    crate::kapi::set_owner(prev);
    if let (Some(c), Some(before)) = (cpu, due_before) {
        c.watch_due.store(before, Ordering::Relaxed);
    }
    let frame = with_state(|s| {
        let f = s.frames[d].take();
        s.depth = d;
        if let Some(f) = &f {
            // An escape out of module code leaves the service depth as it
            // was; reset it anyway, it is the frame's by construction.
            s.service_depth = f.service_base;
            if f.kind == Kind::Probe {
                s.last_failure = f.failure;
            }
        }
        f
    })
    .flatten();
    if were_on {
        x86_64::instructions::interrupts::enable();
    }
    let Some(frame) = frame else {
        return Outcome::Aborted(Abort::violation(format_args!("guard state lost")));
    };
    match (code, frame.pending) {
        (None, _) => Outcome::Aborted(
            frame
                .abort
                .unwrap_or(Abort::violation(format_args!("escaped without a reason"))),
        ),
        // A fault of the module's own callback while its code ran.
        (Some(_), Some(pending)) => Outcome::Aborted(pending),
        (Some(code), None) => Outcome::Returned(code as i32),
    }
}

/// Calls IRQ handler `f(data)` of `module` for line `line`; `Some` if it
/// was cut short.
pub fn call_handler(
    module: usize,
    line: u8,
    f: extern "C" fn(usize),
    data: usize,
) -> Option<Abort> {
    let kind = Kind::Callback(Place::Irq(line));
    match guarded(module, kind, CALLBACK_BUDGET_MS, |d| {
        switch::call_handler(d, f, data)
    }) {
        Outcome::Returned(_) => None,
        Outcome::Aborted(a) => Some(a),
    }
}

/// Calls console write function `f(bytes)` of `module`; `Some` if it was
/// cut short.
pub fn call_writer(
    module: usize,
    f: extern "C" fn(*const u8, usize),
    bytes: &[u8],
) -> Option<Abort> {
    let kind = Kind::Callback(Place::Console);
    match guarded(module, kind, CALLBACK_BUDGET_MS, |d| {
        switch::call_writer(d, f, bytes)
    }) {
        Outcome::Returned(_) => None,
        Outcome::Aborted(a) => Some(a),
    }
}

/// Guarded calls in progress on the calling CPU (0 outside module code).
pub fn depth() -> usize {
    with_state(|s| s.depth).unwrap_or(0)
}

/// The failure the last probe or self-test reported through
/// `kapi_probe_fail`, if any.
pub fn take_failure() -> Option<(i32, Msg)> {
    with_state(|s| s.last_failure.take()).flatten()
}

/// Records that a callback of `module` ended with `a` (called by the kapi
/// once it has disabled the callback). If the module is the one whose probe
/// or self-test is running, that call ends with it too; otherwise the loader
/// collects it with [`take_runtime_faults`].
pub fn runtime_fault(module: usize, place: Place, a: Abort) {
    // A probe or self-test this callback interrupted runs on this CPU.
    let during = with_state(|s| {
        let outer = s
            .frames
            .iter_mut()
            .take(s.depth)
            .flatten()
            .rfind(|f| f.kind == Kind::Probe);
        let during = outer.as_ref().map(|f| f.module);
        if let Some(f) = outer
            && f.module == module
        {
            f.pending.get_or_insert(Abort::Callback(
                place,
                a.kind(),
                Msg::from_fmt(format_args!("{a}")),
            ));
        }
        during
    })
    .flatten();
    let fault = RuntimeFault {
        module,
        place,
        abort: a,
        during,
        cpu: crate::arch::percpu::index(),
    };
    with_runtime(|r| match r.faults.iter_mut().find(|f| f.is_none()) {
        Some(slot) => *slot = Some(fault),
        None => r.lost += 1,
    });
}

/// The runtime faults recorded since the last call, oldest first, and how
/// many did not fit.
pub fn take_runtime_faults() -> ([Option<RuntimeFault>; MAX_RUNTIME_FAULTS], usize) {
    with_runtime(|r| {
        (
            core::mem::replace(&mut r.faults, [None; MAX_RUNTIME_FAULTS]),
            core::mem::take(&mut r.lost),
        )
    })
}

fn on_exception(frame: &mut TrapFrame) -> bool {
    super::stale::explain(frame);
    // NMI, double fault and machine check are never a module's doing.
    if matches!(frame.vector, 2 | 8 | 18) {
        return false;
    }
    // A bad module buffer in a service's checked copy: the copy fails.
    if crate::arch::checked_copy::fixup(frame) {
        return true;
    }
    let cr2 = if frame.vector == 14 {
        x86_64::registers::control::Cr2::read_raw()
    } else {
        0
    };
    let fault = Abort::Fault {
        vector: frame.vector,
        rip: frame.rip,
        cr2,
        error: frame.error_code,
    };
    let target = with_state(|s| {
        let in_service = s.in_service();
        let service = s.service_name();
        let d = s.depth.checked_sub(1)?;
        let top = s.frames[d].as_mut()?;
        if in_service {
            return Some(Err((top.module, service)));
        }
        top.abort = Some(fault);
        Some(Ok(d))
    })
    .flatten();
    match target {
        Some(Ok(d)) => {
            switch::escape_via_frame(frame, d);
            true
        }
        Some(Err((module, service))) => {
            // No allocation: the kernel is about to report and stop.
            let _ = writeln!(
                crate::console::EmergencyWriter,
                "FAULT in kernel service {service} called by module {}: {fault}",
                super::name_of(module)
            );
            false
        }
        None => false,
    }
}

fn on_tick(frame: &mut TrapFrame) {
    let now = crate::arch::tsc::read();
    let escape_to = with_state(|s| {
        let in_service = s.in_service();
        // A call past its deadline inside a service is waiting there (the
        // service's own deadline check and this tick race to say so).
        let service = in_service.then(|| s.service_name());
        let d = s.depth.checked_sub(1)?;
        let top = s.frames[d].as_mut()?;
        if top.kind != Kind::Probe || now < top.deadline {
            return None;
        }
        let hung = Abort::Hung {
            budget_ms: top.budget_ms,
            service,
            nmi: false,
        };
        if in_service {
            top.pending.get_or_insert(hung);
            return None;
        }
        top.abort = Some(hung);
        Some(d)
    })
    .flatten();
    if let Some(d) = escape_to {
        switch::escape_via_frame(frame, d);
    }
}

/// Callbacks the NMI watchdog cut off.
static NMI_CUT_OFFS: AtomicU64 = AtomicU64::new(0);

/// Callbacks the NMI watchdog has cut off since boot.
pub fn watchdog_cut_offs() -> u64 {
    NMI_CUT_OFFS.load(Ordering::Relaxed)
}

/// The watchdog's NMI ([`crate::watchdog`]), on every CPU it reaches. A
/// callback (IRQ handler, console write: interrupts off, so no tick)
/// running for [`WATCHDOG_MS`] is cut off here: at once if the NMI
/// interrupted module code itself, or when the service it is in returns.
/// An NMI that lands in any other kernel code (the guard's own set-up, an
/// interrupt entry) leaves it to the next one, a millisecond later: only
/// module frames may be skipped. Probes are the tick's ([`on_tick`]).
/// Lock-free: the guard state is per CPU and [`with_state`] refuses to
/// nest.
fn on_nmi(frame: &mut TrapFrame) {
    let in_kernel_text = crate::layout::text().contains(frame.rip);
    let now = crate::arch::tsc::read();
    let escape_to = with_state(|s| {
        let in_service = s.in_service();
        let service = s.service_name();
        let d = s.depth.checked_sub(1)?;
        let top = s.frames[d].as_mut()?;
        if !matches!(top.kind, Kind::Callback(_)) || now < top.watchdog_deadline {
            return None;
        }
        if top.abort.is_some() || (in_service && top.pending.is_some()) {
            return None;
        }
        let hung = |service| Abort::Hung {
            budget_ms: WATCHDOG_MS,
            service,
            nmi: true,
        };
        if in_service {
            // Counted when it takes effect ([`leave_service`]): a waiting
            // service may notice the deadline first.
            top.pending = Some(hung(Some(service)));
            return None;
        }
        if in_kernel_text {
            return None;
        }
        top.abort = Some(hung(None));
        NMI_CUT_OFFS.fetch_add(1, Ordering::Relaxed);
        Some(d)
    })
    .flatten();
    if let Some(d) = escape_to {
        switch::escape_via_frame(frame, d);
    }
}

/// Ends the innermost guarded call with `a`. Called only by
/// [`crate::kapi::service`] (for every service, `kapi_panic` included)
/// after the service body returned: nothing of the kernel's is left on the
/// stack above the saved context but frames without destructors.
pub fn escape(a: Abort) -> ! {
    x86_64::instructions::interrupts::disable();
    let d = with_state(|s| {
        let d = s.depth.checked_sub(1)?;
        s.frames[d].as_mut()?.abort = Some(a);
        s.service_depth = s.frames[d].as_ref()?.service_base;
        Some(d)
    })
    .flatten();
    match d {
        Some(d) => switch::escape(d),
        None => panic!(
            "module {}: {a} (outside any guarded call)",
            super::name_of(crate::kapi::owner())
        ),
    }
}

/// Marks entry into kernel service `name`.
pub fn enter_service(name: &'static str) {
    with_state(|s| {
        if let Some(slot) = s.services.get_mut(s.service_depth) {
            *slot = name;
        }
        s.service_depth += 1;
    });
}

/// Marks the end of a kernel service; returns the abort that fell due
/// inside it (a time-out, a fault of the module's own callback), if any.
pub fn leave_service() -> Option<Abort> {
    with_state(|s| {
        s.service_depth = s.service_depth.saturating_sub(1);
        let depth = s.service_depth;
        let top = s.top()?;
        if depth != top.service_base {
            return None;
        }
        let due = top.pending.take();
        if matches!(due, Some(Abort::Hung { nmi: true, .. })) {
            NMI_CUT_OFFS.fetch_add(1, Ordering::Relaxed);
        }
        due
    })
    .flatten()
}

/// `Err(hung)` once the running call's time budget is spent; waiting
/// services (`kapi_delay_us`) call this as they wait.
#[allow(clippy::result_large_err)] // see `crate::kapi`
pub fn check_deadline(service: &'static str) -> Result<(), Abort> {
    let now = crate::arch::tsc::read();
    let over = with_state(|s| {
        let top = s.top()?;
        (now >= top.deadline).then_some(top.budget_ms)
    })
    .flatten();
    match over {
        Some(budget_ms) => Err(Abort::Hung {
            budget_ms,
            service: Some(service),
            nmi: false,
        }),
        None => Ok(()),
    }
}

/// Records the running probe's or self-test's reason for failing
/// (`kapi_probe_fail`).
pub fn set_failure(kind: i32, msg: Msg) {
    with_state(|s| {
        if let Some(top) = s.top()
            && top.kind == Kind::Probe
        {
            top.failure = Some((kind, msg));
        }
    });
}
