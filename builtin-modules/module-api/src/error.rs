//! Why a probe failed: a [`ProbeErrorKind`] and a precise message.

use crate::msg::MsgBuf;
use core::fmt;
pub use modabi::{ProbeErrorKind, Status};

/// Capacity of a probe error message in bytes.
pub const MESSAGE_CAPACITY: usize = 112;

/// The reason a probe (or self-test) failed, as the report will show it.
#[derive(Clone, Copy)]
pub struct ProbeError {
    kind: ProbeErrorKind,
    message: MsgBuf<MESSAGE_CAPACITY>,
}

impl ProbeError {
    /// An error of `kind` with `message` formatted into a fixed buffer.
    pub fn new(kind: ProbeErrorKind, message: fmt::Arguments<'_>) -> Self {
        ProbeError {
            kind,
            message: MsgBuf::format(message),
        }
    }

    /// The hardware is not there.
    pub fn no_device(message: fmt::Arguments<'_>) -> Self {
        Self::new(ProbeErrorKind::NoDevice, message)
    }

    /// The hardware is there but this driver cannot drive it.
    pub fn unsupported(message: fmt::Arguments<'_>) -> Self {
        Self::new(ProbeErrorKind::Unsupported, message)
    }

    /// The hardware misbehaved (failed self-test, bad reply).
    pub fn io(message: fmt::Arguments<'_>) -> Self {
        Self::new(ProbeErrorKind::Io, message)
    }

    /// The hardware did not answer in time.
    pub fn timeout(message: fmt::Arguments<'_>) -> Self {
        Self::new(ProbeErrorKind::Timeout, message)
    }

    /// A resource the driver needs is taken.
    pub fn busy(message: fmt::Arguments<'_>) -> Self {
        Self::new(ProbeErrorKind::Busy, message)
    }

    /// Out of memory.
    pub fn no_memory(message: fmt::Arguments<'_>) -> Self {
        Self::new(ProbeErrorKind::NoMemory, message)
    }

    /// Maps a failed service `status` to an error kind, with `message`.
    pub fn from_status(status: Status, message: fmt::Arguments<'_>) -> Self {
        let kind = match status {
            Status::Busy => ProbeErrorKind::Busy,
            Status::NoMemory => ProbeErrorKind::NoMemory,
            Status::NotFound => ProbeErrorKind::NoDevice,
            Status::Ok | Status::Invalid | Status::NotProbing => ProbeErrorKind::Unsupported,
        };
        Self::new(kind, message)
    }

    /// The kind of failure.
    pub fn kind(&self) -> ProbeErrorKind {
        self.kind
    }

    /// The human-readable reason.
    pub fn message(&self) -> &str {
        self.message.as_str()
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

impl fmt::Debug for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ProbeError({:?}, {:?})",
            self.kind,
            self.message.as_str()
        )
    }
}

/// Decodes a raw service return value (0 or a negative [`Status`]).
pub fn status(raw: i32) -> Result<(), Status> {
    match Status::from_i32(raw) {
        Some(Status::Ok) => Ok(()),
        Some(s) => Err(s),
        None => Err(Status::Invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_keep_kind_and_message() {
        let e = ProbeError::no_device(format_args!("no PCI device {:04x}:{:04x}", 0x8086, 0x100e));
        assert_eq!(e.kind(), ProbeErrorKind::NoDevice);
        assert_eq!(e.message(), "no PCI device 8086:100e");
        assert_eq!(format!("{e}"), "no-device: no PCI device 8086:100e");
        let e = ProbeError::from_status(Status::Busy, format_args!("ports 0x3f8+8"));
        assert_eq!(e.kind(), ProbeErrorKind::Busy);
    }

    #[test]
    fn decodes_status() {
        assert_eq!(status(0), Ok(()));
        assert_eq!(status(-1), Err(Status::Busy));
        assert_eq!(status(-99), Err(Status::Invalid));
    }
}
