//! `kapi_log`: module log lines, prefixed with the module's name.

use super::{module_bytes, owner, service};

/// Logs `msg` at `level` (1 error .. 5 trace) on behalf of the running module.
///
/// # Safety
/// `msg` must be valid for `len` bytes.
pub unsafe extern "C" fn kapi_log(level: u32, msg: *const u8, len: usize) {
    service(|| {
        // SAFETY: forwarded from this function's contract.
        let bytes = unsafe { module_bytes(msg, len) };
        let text = core::str::from_utf8(bytes).unwrap_or("<invalid UTF-8>");
        let level = match level {
            1 => ::log::Level::Error,
            2 => ::log::Level::Warn,
            3 => ::log::Level::Info,
            4 => ::log::Level::Debug,
            _ => ::log::Level::Trace,
        };
        ::log::log!(level, "[{}] {}", crate::modules::name_of(owner()), text);
    })
}
crate::export_symbol!(kapi_log);
