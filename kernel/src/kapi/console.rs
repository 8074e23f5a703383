//! `kapi_console_register`: a module (the 16550 driver for COM1) becomes the
//! kernel console.

use super::{owner, resources, run_as, service};
use crate::arch::fn_cell::AtomicFn;
use core::sync::atomic::{AtomicUsize, Ordering};
use modtable::abi::Status;

/// The module's write function; `remove` clears it (and restores the
/// built-in console) before that module's memory is reused.
static WRITE: AtomicFn<extern "C" fn(*const u8, usize)> = AtomicFn::none();
static OWNER: AtomicUsize = AtomicUsize::new(super::KERNEL);

/// The module that is the console, if any.
pub fn module_console_active() -> Option<usize> {
    WRITE.is_some().then(|| OWNER.load(Ordering::SeqCst))
}

fn sink(bytes: &[u8]) {
    let Some(f) = WRITE.load() else {
        crate::serial::write_bytes(bytes);
        return;
    };
    run_as(OWNER.load(Ordering::SeqCst), || {
        f(bytes.as_ptr(), bytes.len())
    });
}

/// Makes the running module's `write` the console.
pub extern "C" fn kapi_console_register(write: extern "C" fn(*const u8, usize)) -> i32 {
    service(|| {
        let me = owner();
        if WRITE.is_some() {
            return Status::Busy as i32;
        }
        OWNER.store(me, Ordering::SeqCst);
        WRITE.store(Some(write));
        resources::with(me, |r| r.console = true);
        crate::console::set_sink(Some(sink));
        Status::Ok as i32
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
