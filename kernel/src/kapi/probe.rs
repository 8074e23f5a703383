//! `kapi_probe_fail` and `kapi_panic`: how a probe (or self-test) reports
//! why it failed, and how module code panics.

use super::{buffer, service};
use crate::modules::guard::{self, Abort, Msg};

/// Longest message either service accepts (the report keeps a prefix).
const MSG_LIMIT: usize = 4096;

/// `kapi_probe_fail`: the running probe's reason for failing (`kind` a
/// `ProbeErrorKind`).
pub extern "C" fn kapi_probe_fail(kind: i32, msg: *const u8, len: usize) {
    service("kapi_probe_fail", || {
        let mut buf = [0u8; Msg::CAPACITY];
        let bytes = buffer::read_into("kapi_probe_fail", msg, len, MSG_LIMIT, &mut buf)?;
        guard::set_failure(kind, Msg::from_bytes(bytes));
        Ok(())
    })
}
crate::export_symbol!(kapi_probe_fail);

/// `kapi_panic`: the running module panicked; its guarded call ends here.
pub extern "C" fn kapi_panic(msg: *const u8, len: usize) -> ! {
    match service("kapi_panic", || {
        let mut buf = [0u8; Msg::CAPACITY];
        let bytes = buffer::read_into("kapi_panic", msg, len, MSG_LIMIT, &mut buf)?;
        Err::<core::convert::Infallible, _>(Abort::Panic(Msg::from_bytes(bytes)))
    }) {}
}
crate::export_symbol!(kapi_panic);
