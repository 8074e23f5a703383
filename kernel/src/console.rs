//! The kernel console: where `log` output and [`kprint!`] go.
//!
//! By default everything goes to the built-in COM1 writer ([`crate::serial`]).
//! A driver can take over with [`set_sink`]`(Some(f))`: then every console
//! write calls `f` instead; `set_sink(None)` returns to COM1 (a driver that
//! is being removed must do this first). Panic and exception reports always
//! go to COM1 through [`emergency_write`], which takes no lock, so they get
//! out even if the sink or the console lock is broken.
//!
//! Writes are serialised by a spin lock held with interrupts disabled, so a
//! line from an interrupt handler or from another CPU never interleaves
//! with another line.

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use spin::Mutex;

use crate::arch::fn_cell::AtomicFn;

/// A console sink: receives raw UTF-8 bytes (`\n` line ends).
pub type Sink = fn(&[u8]);

static SINK: AtomicFn<Sink> = AtomicFn::none();
static LOCK: Mutex<()> = Mutex::new(());
/// CPU index + 1 of the CPU holding `LOCK` (0: none).
static HOLDER: AtomicUsize = AtomicUsize::new(0);
/// How long a writer waits for another CPU to release the console before
/// it takes the lock for abandoned (that CPU died holding it, or its write
/// was cut off) and writes to COM1 directly from then on.
const WAIT_LIMIT_MS: u64 = 2000;
/// Set once a writer waited [`WAIT_LIMIT_MS`] in vain.
static ABANDONED: AtomicBool = AtomicBool::new(false);

/// Makes `sink` the console (or COM1 again with `None`).
pub fn set_sink(sink: Option<Sink>) {
    SINK.store(sink);
}

/// Run once the outermost console writer has released the console (see
/// [`after_release`]).
static AFTER_RELEASE: AtomicFn<fn()> = AtomicFn::none();

/// Has `f` run once the console is free again, after the write under way:
/// for a sink that must report its own failure on the console without
/// splitting the line it was writing.
pub fn after_release(f: fn()) {
    AFTER_RELEASE.store(Some(f));
}

/// The current sink, if a driver installed one.
pub fn sink() -> Option<Sink> {
    SINK.load()
}

fn raw_write(bytes: &[u8]) {
    match sink() {
        Some(f) => f(bytes),
        None => crate::serial::write_bytes(bytes),
    }
}

/// Writes `bytes` to the console.
pub fn write(bytes: &[u8]) {
    with_console(|w| w.write_bytes(bytes));
}

/// Runs `f` with exclusive access to the console (interrupts disabled), so a
/// multi-part message comes out in one piece.
///
/// The lock is held only with interrupts off. Finding it held by another
/// CPU, a writer waits for it. Finding it held by its own CPU means this is
/// a nested write (a sink that logs, an exception or NMI inside a write) or
/// a write abandoned by a fault that was recovered from: waiting would
/// deadlock, so such writes go straight to COM1, bypassing the sink. So do
/// all writes once one waited [`WAIT_LIMIT_MS`] for another CPU in vain.
pub fn with_console<R>(f: impl FnOnce(&mut ConsoleWriter) -> R) -> R {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let me = crate::arch::percpu::index() + 1;
        let guard = if HOLDER.load(Ordering::Acquire) == me || ABANDONED.load(Ordering::Relaxed) {
            None
        } else {
            acquire()
        };
        match guard {
            Some(guard) => {
                HOLDER.store(me, Ordering::Release);
                let r = f(&mut ConsoleWriter { com1_only: false });
                HOLDER.store(0, Ordering::Release);
                drop(guard);
                if let Some(after) = AFTER_RELEASE.swap(None) {
                    after();
                }
                r
            }
            None => f(&mut ConsoleWriter { com1_only: true }),
        }
    })
}

/// Takes the lock, waiting for another CPU at most [`WAIT_LIMIT_MS`] (or,
/// before the TSC is calibrated, a fixed number of tries).
fn acquire() -> Option<spin::MutexGuard<'static, ()>> {
    let hz = crate::arch::tsc::frequency_hz();
    let limit = hz.saturating_mul(WAIT_LIMIT_MS) / 1000;
    let t0 = crate::arch::tsc::read();
    let mut tries = 0u64;
    loop {
        if let Some(g) = LOCK.try_lock() {
            return Some(g);
        }
        tries += 1;
        let waited = crate::arch::tsc::read().wrapping_sub(t0);
        if (hz != 0 && waited >= limit) || (hz == 0 && tries >= 10_000_000) {
            ABANDONED.store(true, Ordering::Relaxed);
            return None;
        }
        // Interrupts are off: a TLB shootdown must not wait for this CPU.
        crate::arch::smp::service_shootdown();
        core::hint::spin_loop();
    }
}

/// Writes straight to COM1 without locking: for panic and exception reports.
pub fn emergency_write(bytes: &[u8]) {
    crate::serial::write_bytes(bytes);
}

/// Console writer handed out by [`with_console`].
pub struct ConsoleWriter {
    com1_only: bool,
}

impl ConsoleWriter {
    /// Writes raw bytes.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        if self.com1_only {
            crate::serial::write_bytes(bytes);
        } else {
            raw_write(bytes);
        }
    }
}

impl fmt::Write for ConsoleWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Lock-free COM1 writer for reports written while the system is dying.
pub struct EmergencyWriter;

impl fmt::Write for EmergencyWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        emergency_write(s.as_bytes());
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    use fmt::Write;
    with_console(|w| {
        let _ = w.write_fmt(args);
    });
}

/// Prints to the console (no log prefix).
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::console::_print(format_args!($($arg)*)) };
}

/// Prints a line to the console (no log prefix).
#[macro_export]
macro_rules! kprintln {
    () => { $crate::kprint!("\n") };
    ($($arg:tt)*) => { $crate::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// The `log` backend: `[seconds.micros] LEVEL message` on the console.
struct Logger;

static LOGGER: Logger = Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        use fmt::Write;
        with_console(|w| {
            // Read under the lock, so lines from several CPUs come out in
            // the order of their time stamps.
            let ns = crate::arch::tsc::now_ns();
            let _ = writeln!(
                w,
                "[{:>4}.{:06}] {:<5} {}",
                ns / 1_000_000_000,
                (ns / 1000) % 1_000_000,
                record.level(),
                record.args()
            );
        });
    }

    fn flush(&self) {}
}

/// Installs the `log` backend with the given maximum level.
pub fn init_logger(level: log::LevelFilter) {
    // Only fails if a logger is already set, which is harmless.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
