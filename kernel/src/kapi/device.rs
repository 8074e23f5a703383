//! `kapi_device_register`: a module announces a device it drives.

use super::{buffer, owner, resources, service};
use alloc::string::String;
use modabi::Status;

/// Longest device name.
const NAME_LIMIT: usize = 256;

/// Records device `name` for the running module.
pub extern "C" fn kapi_device_register(name: *const u8, len: usize) -> i32 {
    service("kapi_device_register", || {
        let bytes = buffer::read_vec("kapi_device_register", name, len, NAME_LIMIT)?;
        let Ok(s) = core::str::from_utf8(&bytes) else {
            return Ok(Status::Invalid as i32);
        };
        if s.is_empty() {
            return Ok(Status::Invalid as i32);
        }
        let me = owner();
        resources::with(me, |r| r.devices.push(String::from(s)));
        Ok(Status::Ok as i32)
    })
}
crate::export_symbol!(kapi_device_register);
