//! Hardware access on behalf of the module API: who holds which I/O ports
//! and which device memory ([`ports`], [`mmio`]), firmware tables
//! ([`firmware`]), and the accesses themselves.
//!
//! Each file keeps its claim registry and its one access together: the
//! access is made only after the same file checked the claim, so the
//! safety argument of every `unsafe` block here is local. The module API
//! services ([`crate::kapi`]) decide what a module may ask for and turn
//! refusals into its errors; they need no unsafe code.

pub mod firmware;
pub mod mmio;
pub mod ports;

/// Owner value meaning "the kernel itself" (no module is running).
pub const KERNEL: usize = usize::MAX;
