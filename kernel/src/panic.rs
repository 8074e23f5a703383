//! The panic handler: print where and why, then exit QEMU with failure.
//!
//! [`set_panic_hook`] installs a function that runs first (for example to
//! recover from a panic inside a module probe by switching to a saved
//! context). If the hook returns, the kernel dies as usual.

use core::fmt::Write;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::fn_cell::AtomicFn;
use crate::console::EmergencyWriter;

/// Called with the panic information before the kernel dies.
pub type PanicHook = fn(&PanicInfo<'_>);

static HOOK: AtomicFn<PanicHook> = AtomicFn::none();
static PANICKING: AtomicBool = AtomicBool::new(false);

/// Installs (or with `None` removes) the panic hook.
pub fn set_panic_hook(hook: Option<PanicHook>) {
    HOOK.store(hook);
}

fn hook() -> Option<PanicHook> {
    HOOK.load()
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    x86_64::instructions::interrupts::disable();
    if let Some(h) = hook() {
        h(info);
    }
    let mut w = EmergencyWriter;
    if PANICKING.swap(true, Ordering::SeqCst) {
        let _ = writeln!(w, "\nKERNEL PANIC (nested): {}", info.message());
        crate::exit::failure();
    }
    let _ = write!(w, "\nKERNEL PANIC");
    if let Some(loc) = info.location() {
        let _ = write!(w, " at {}:{}:{}", loc.file(), loc.line(), loc.column());
    }
    let _ = writeln!(w, ": {}", info.message());
    if let Some(cpu) = crate::arch::percpu::current() {
        let _ = writeln!(w, "  on CPU {} (APIC id {})", cpu.index, cpu.apic_id);
    }
    crate::exit::failure()
}
