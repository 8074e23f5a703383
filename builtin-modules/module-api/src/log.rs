//! Logging through `kapi_log`; use the [`info!`](crate::info),
//! [`warn!`](crate::warn), [`error!`](macro@crate::error) and
//! [`debug!`](crate::debug) macros.

use crate::msg::MsgBuf;
use crate::sys;
use core::fmt;
pub use modabi::LogLevel;

/// Longest log line in bytes; longer ones are truncated.
pub const LINE_CAPACITY: usize = 256;

/// Formats `args` into a stack buffer and hands it to the kernel's log.
pub fn log(level: LogLevel, args: fmt::Arguments<'_>) {
    let line = MsgBuf::<LINE_CAPACITY>::format(args);
    let b = line.as_bytes();
    // SAFETY: `b` is a valid byte slice for the duration of the call.
    unsafe { sys::kapi_log(level as u32, b.as_ptr(), b.len()) }
}
