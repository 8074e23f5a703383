//! `kapi_port_*`: I/O ports, only on ranges the module claimed.

use super::{owner, resources, service};
use crate::hw::ports::{self, Refused};
use crate::modules::guard::Abort;
use modabi::Status;

/// A port access of the running module, if it holds the port.
fn module_io(service_name: &str, port: u16, width: u32, value: Option<u32>) -> Result<u32, Abort> {
    ports::io(owner(), port, width, value).map_err(|r| match r {
        Refused::Width => {
            Abort::violation(format_args!("{service_name}: port access of width {width}"))
        }
        Refused::Unclaimed => Abort::violation(format_args!("access to unclaimed port {port:#x}")),
    })
}

/// A port access by the kernel to one of its own ports (PCI configuration).
pub(super) fn kernel_io(port: u16, width: u32, value: Option<u32>) -> u32 {
    ports::io(crate::hw::KERNEL, port, width, value)
        .unwrap_or_else(|r| panic!("kernel access to port {port:#x} refused: {r:?}"))
}

/// Claims `count` ports from `base` for the running module.
pub extern "C" fn kapi_port_claim(base: u16, count: u16) -> i32 {
    service("kapi_port_claim", || {
        if count == 0 || base as u32 + count as u32 > 0x1_0000 {
            return Ok(Status::Invalid as i32);
        }
        let me = owner();
        if !ports::claim(base, count, me) {
            return Ok(Status::Busy as i32);
        }
        resources::with(me, |r| r.ports.push((base, count)));
        Ok(Status::Ok as i32)
    })
}
crate::export_symbol!(kapi_port_claim);

/// Reads a claimed port.
pub extern "C" fn kapi_port_in(port: u16, width: u32) -> u32 {
    service("kapi_port_in", || {
        module_io("kapi_port_in", port, width, None)
    })
}
crate::export_symbol!(kapi_port_in);

/// Writes a claimed port.
pub extern "C" fn kapi_port_out(port: u16, width: u32, value: u32) {
    service("kapi_port_out", || {
        module_io("kapi_port_out", port, width, Some(value)).map(|_| ())
    })
}
crate::export_symbol!(kapi_port_out);
