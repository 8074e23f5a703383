//! The panic handler of module code: report the message to the kernel,
//! which expunges the module (or, after boot, stops).

use crate::msg::MsgBuf;
use crate::sys;
use core::fmt::Write;
use core::panic::PanicInfo;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let mut buf = MsgBuf::<256>::new();
    if let Some(loc) = info.location() {
        let _ = write!(buf, "{}:{}: ", loc.file(), loc.line());
    }
    let _ = write!(buf, "{}", info.message());
    let b = buf.as_bytes();
    // SAFETY: `b` is a valid byte slice; the kernel does not return.
    unsafe { sys::kapi_panic(b.as_ptr(), b.len()) }
}
