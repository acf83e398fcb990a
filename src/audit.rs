//! The pages a full server folder has, in one numbering, for an audit of a stopped
//! server's `Data/` tree (`raida-healing audit`). Whether a page file is valid is decided
//! by [`DataDir::check_page`], the store's own rule; this module only enumerates the pages
//! and names each problem with a stable number for C callers.

use std::path::PathBuf;

use crate::data_dir::{page_relative_path, DataDir, PageProblem};
use crate::store::{PageKey, DENOMINATIONS, TOTAL_PAGES};

/// Pages of a full server: 15 denominations x 1000 pages.
pub(crate) const PAGE_COUNT: usize = (*DENOMINATIONS.end() as i32 - *DENOMINATIONS.start() as i32 + 1)
    as usize
    * TOTAL_PAGES as usize;

/// Page number `index` (0..[`PAGE_COUNT`]) in (denomination, page) order.
pub(crate) fn page_at(index: usize) -> Option<PageKey> {
    (index < PAGE_COUNT).then(|| PageKey {
        den: (i32::from(*DENOMINATIONS.start()) + (index / TOTAL_PAGES as usize) as i32) as i8,
        page: (index % TOTAL_PAGES as usize) as u32,
    })
}

/// Checks page `index` in `data`: its path relative to `Data/` and what is wrong with it.
pub(crate) fn check_page(data: &DataDir, index: usize) -> Option<(PathBuf, Result<(), PageProblem>)> {
    let key = page_at(index)?;
    Some((page_relative_path(key), data.check_page(key)))
}

/// A stable number per problem kind (1..=6), for C callers and scripts.
pub(crate) fn problem_number(problem: &PageProblem) -> u8 {
    match problem {
        PageProblem::Missing => 1,
        PageProblem::Truncated { .. } => 2,
        PageProblem::Oversized { .. } => 3,
        PageProblem::NotRegular { .. } => 4,
        PageProblem::Symlink => 5,
        PageProblem::Unreadable(_) => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_numbered_in_denomination_then_page_order() {
        assert_eq!(PAGE_COUNT, 15_000);
        assert_eq!(page_at(0), Some(PageKey { den: -8, page: 0 }));
        assert_eq!(page_at(999), Some(PageKey { den: -8, page: 999 }));
        assert_eq!(page_at(8300), Some(PageKey { den: 0, page: 300 }));
        assert_eq!(page_at(14_999), Some(PageKey { den: 6, page: 999 }));
        assert_eq!(page_at(15_000), None);
        assert_eq!(
            page_relative_path(page_at(9300).unwrap()),
            PathBuf::from("01/01/012c.bin")
        );
    }
}
