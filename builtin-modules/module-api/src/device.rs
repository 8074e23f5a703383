//! Announcing the devices a module drives.

use crate::error::{ProbeError, status};
use crate::sys;

/// Tells the kernel this module drives a device called `name` (shown in the
/// report, for example `"com1"` or `"eth0 52:54:00:12:34:56"`).
pub fn register(name: &str) -> Result<(), ProbeError> {
    // SAFETY: `name` is a valid byte slice for the duration of the call.
    let raw = unsafe { sys::kapi_device_register(name.as_ptr(), name.len()) };
    status(raw).map_err(|s| {
        ProbeError::from_status(s, format_args!("cannot register device {name}: {s:?}"))
    })
}
