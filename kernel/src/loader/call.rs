//! The loader's calls into module code: a loaded module's probe and
//! self-test, each under the probe guard, as the running module.

use crate::modules::guard::{self, Outcome};

/// Calls module function `entry` as module `index` under the probe guard,
/// with a budget of `budget_ms`. The loader calls it only for the probe or
/// self-test entry of a module whose bytes [`super::place`] wrote and
/// relocated for where they are, and mapped executable.
pub(super) fn guarded(index: usize, entry: u64, budget_ms: u64) -> Outcome {
    // SAFETY: `entry` is the probe or self-test of module `index`, whose
    // bytes were written and relocated for where they are, mapped
    // executable, and serialised before this call (see above).
    crate::kapi::run_as(index, || unsafe { guard::run(entry, budget_ms) })
}
