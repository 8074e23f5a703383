//! `inspect`: reads the module table of a prelinked image and reports the
//! layout (the same numbers as the link plan).

use crate::err;
use crate::error::Result;
use crate::kernel::Kernel;
use crate::plan::Plan;
use modtable::table::Table;

/// Reads the plan back from a prelinked image.
pub fn inspect(file: &str, image: &[u8]) -> Result<Plan> {
    let a = Kernel::modtable_area(file, image)?;
    let area = &image[a.file_off as usize..(a.file_off + a.size) as usize];
    let t = Table::parse(area).map_err(|e| err!(Kernel, "{file}: {e}"))?;
    let mut plan = Plan::from_table(&t);
    plan.kernel_end = Some(Kernel::parse(file, image)?.kernel_end);
    Ok(plan)
}
