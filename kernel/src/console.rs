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
//! line from an interrupt handler never interleaves with another line.

use core::fmt;

use spin::Mutex;

use crate::arch::fn_cell::AtomicFn;

/// A console sink: receives raw UTF-8 bytes (`\n` line ends).
pub type Sink = fn(&[u8]);

static SINK: AtomicFn<Sink> = AtomicFn::none();
static LOCK: Mutex<()> = Mutex::new(());

/// Makes `sink` the console (or COM1 again with `None`).
pub fn set_sink(sink: Option<Sink>) {
    SINK.store(sink);
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
/// The kernel runs on one CPU and holds the lock only with interrupts off,
/// so finding it taken means this is a nested write (a sink that logs, an
/// exception or NMI inside a write) or a write abandoned by a fault that was
/// recovered from. Waiting would deadlock; such writes go straight to COM1
/// instead, bypassing the sink.
pub fn with_console<R>(f: impl FnOnce(&mut ConsoleWriter) -> R) -> R {
    x86_64::instructions::interrupts::without_interrupts(|| match LOCK.try_lock() {
        Some(_guard) => f(&mut ConsoleWriter { com1_only: false }),
        None => f(&mut ConsoleWriter { com1_only: true }),
    })
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
        let ns = crate::arch::tsc::now_ns();
        with_console(|w| {
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
