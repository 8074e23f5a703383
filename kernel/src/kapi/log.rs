//! `kapi_log`: module log lines, prefixed with the module's name.

use super::{buffer, owner, service};

/// Longest log line a module may pass (module-api's lines are 256 bytes).
pub const LOG_LIMIT: usize = 4096;

/// Logs `msg` at `level` (1 error .. 5 trace) on behalf of the running
/// module; a line longer than [`LOG_LIMIT`] or outside the module's memory
/// is a violation.
pub extern "C" fn kapi_log(level: u32, msg: *const u8, len: usize) {
    service("kapi_log", || {
        let bytes = buffer::read_vec("kapi_log", msg, len, LOG_LIMIT)?;
        let text = core::str::from_utf8(&bytes).unwrap_or("<invalid UTF-8>");
        let level = match level {
            1 => ::log::Level::Error,
            2 => ::log::Level::Warn,
            3 => ::log::Level::Info,
            4 => ::log::Level::Debug,
            _ => ::log::Level::Trace,
        };
        ::log::log!(level, "[{}] {}", crate::modules::name_of(owner()), text);
        Ok(())
    })
}
crate::export_symbol!(kapi_log);
