//! What the entry shims emitted by [`module!`](crate::module) call.

use crate::error::ProbeError;
use crate::sys;

/// Handed to a module's probe. Holding it means "this module is probing": the
/// kernel records everything acquired meanwhile against the module and
/// releases it if the probe fails.
pub struct ProbeContext {
    name: &'static str,
}

impl ProbeContext {
    /// The module's name, as declared in `module!`.
    pub fn module_name(&self) -> &'static str {
        self.name
    }
}

/// Signature of a module's probe.
pub type ProbeFn = fn(&mut ProbeContext) -> Result<(), ProbeError>;
/// Signature of a module's self-test.
pub type SelftestFn = fn() -> Result<(), ProbeError>;

/// Tells the kernel why the running probe or self-test failed.
pub fn report_failure(e: &ProbeError) {
    let msg = e.message().as_bytes();
    // SAFETY: `msg` is a valid byte slice for the duration of the call.
    unsafe { sys::kapi_probe_fail(e.kind() as i32, msg.as_ptr(), msg.len()) }
}

fn finish(r: Result<(), ProbeError>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            report_failure(&e);
            // Nonzero (and distinct per kind) for the kernel.
            -(e.kind() as i32)
        }
    }
}

/// Runs `probe` for the module `name`: 0 on success; otherwise reports the
/// error through `kapi_probe_fail` and returns a negative value.
#[doc(hidden)]
pub fn run_probe(name: &'static str, probe: ProbeFn) -> i32 {
    let mut ctx = ProbeContext { name };
    finish(probe(&mut ctx))
}

/// Runs `selftest` like [`run_probe`].
#[doc(hidden)]
pub fn run_selftest(selftest: SelftestFn) -> i32 {
    finish(selftest())
}
