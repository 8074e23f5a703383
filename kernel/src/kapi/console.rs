//! `kapi_console_register`: a module (the 16550 driver for COM1) becomes the
//! kernel console.
//!
//! Each console write calls the module under guard ([`guard::call_writer`]);
//! if the write faults or breaks a rule, the module stops being the
//! console, the fault is charged to it, and the text goes to COM1 directly.

use super::{owner, resources, service};
use crate::arch::fn_cell::AtomicFn;
use crate::modules::guard::{self, Place};
use core::sync::atomic::{AtomicUsize, Ordering};
use modabi::Status;

/// The module's write function; `remove` clears it (and restores the
/// built-in console) before that module's memory is reused.
static WRITE: AtomicFn<extern "C" fn(*const u8, usize)> = AtomicFn::none();
static OWNER: AtomicUsize = AtomicUsize::new(super::KERNEL);

/// The module that is the console, if any.
pub fn module_console_active() -> Option<usize> {
    WRITE.is_some().then(|| OWNER.load(Ordering::SeqCst))
}

/// Bytes handed to the module's write at a time: each call has the whole
/// callback budget, and 64 bytes take about 5.6 ms at 115200 baud, so a
/// long line (a `REPORT` line is tens of KiB) is not cut off for its
/// length. When a call is cut off, COM1 gets the text from the start of
/// that call on: what came before is out already, and at most one call's
/// bytes can be written twice.
const WRITE_CHUNK: usize = 64;

/// The module whose console write was cut off, and how: reported once the
/// console is free, since an ERROR line written now would land inside the
/// line being written.
static CUT: spin::Mutex<Option<(usize, guard::Abort)>> = spin::Mutex::new(None);

fn report_cut() {
    if let Some((module, a)) = CUT.lock().take() {
        ::log::error!(
            "module {}: console write: {a}; console back on COM1",
            crate::modules::name_of(module)
        );
    }
}

fn sink(bytes: &[u8]) {
    let Some(f) = WRITE.load() else {
        crate::serial::write_bytes(bytes);
        return;
    };
    let module = OWNER.load(Ordering::SeqCst);
    for (i, chunk) in bytes.chunks(WRITE_CHUNK).enumerate() {
        if let Some(a) = guard::call_writer(module, f, chunk) {
            remove(module);
            crate::serial::write_bytes(&bytes[i * WRITE_CHUNK..]);
            *CUT.lock() = Some((module, a));
            crate::console::after_release(report_cut);
            guard::runtime_fault(module, Place::Console, a);
            return;
        }
    }
}

/// Makes the running module's `write` the console.
pub extern "C" fn kapi_console_register(write: extern "C" fn(*const u8, usize)) -> i32 {
    service("kapi_console_register", || {
        let me = owner();
        if WRITE.is_some() {
            return Ok(Status::Busy as i32);
        }
        OWNER.store(me, Ordering::SeqCst);
        WRITE.store(Some(write));
        resources::with(me, |r| r.console = true);
        crate::console::set_sink(Some(sink));
        Ok(Status::Ok as i32)
    })
}
crate::export_symbol!(kapi_console_register);

pub(super) fn remove(module: usize) {
    if OWNER.load(Ordering::SeqCst) == module {
        crate::console::set_sink(None);
        WRITE.store(None);
        OWNER.store(super::KERNEL, Ordering::SeqCst);
    }
}
