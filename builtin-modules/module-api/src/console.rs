//! Becoming the kernel's console.

use crate::error::{ProbeError, status};
use crate::sys;

/// Something that can print console output; no state is passed, so keep the
/// device handle in a `static` (see [`crate::sync::OnceCell`]).
pub trait ConsoleWriter: 'static {
    /// Writes `bytes` (UTF-8 text, `\n` line ends) to the device.
    fn write(bytes: &[u8]);
}

extern "C" fn shim<W: ConsoleWriter>(ptr: *const u8, len: usize) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: the kernel passes a pointer to `len` readable bytes valid for
    // the duration of the call.
    let bytes = unsafe { core::slice::from_raw_parts(ptr, len) };
    W::write(bytes);
}

/// Registers `W` as a console.
pub fn register<W: ConsoleWriter>() -> Result<(), ProbeError> {
    // SAFETY: the shim only reads the buffer the kernel hands it.
    let raw = unsafe { sys::kapi_console_register(shim::<W>) };
    status(raw)
        .map_err(|s| ProbeError::from_status(s, format_args!("cannot register console: {s:?}")))
}
