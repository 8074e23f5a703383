//! `kapi_device_register`: a module announces a device it drives.

use super::{module_bytes, owner, resources, service};
use alloc::string::String;
use modtable::abi::Status;

/// Records device `name` for the running module.
///
/// # Safety
/// `name` must be valid for `len` bytes.
pub unsafe extern "C" fn kapi_device_register(name: *const u8, len: usize) -> i32 {
    service(|| {
        // SAFETY: forwarded from this function's contract.
        let bytes = unsafe { module_bytes(name, len) };
        let Ok(s) = core::str::from_utf8(bytes) else {
            return Status::Invalid as i32;
        };
        if s.is_empty() {
            return Status::Invalid as i32;
        }
        let me = owner();
        resources::with(me, |r| r.devices.push(String::from(s)));
        Status::Ok as i32
    })
}
crate::export_symbol!(kapi_device_register);
