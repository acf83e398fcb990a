//! Fixed points inside the library where a test can act, so a race the tests must show
//! (another account renaming folders while a fix writes) happens at one known moment
//! instead of by luck. Process-wide; only with the `testing` feature.

use std::path::Path;

use parking_lot::Mutex;

type PageReplaceHook = Box<dyn Fn(&Path) + Send + Sync>;

static BEFORE_PAGE_REPLACE: Mutex<Option<PageReplaceHook>> = Mutex::new(None);

/// Runs `hook` (with the page's path relative to `Data/`) every time the page-file store
/// is about to replace a page, before it opens the page's folder; `None` removes it.
pub fn set_before_page_replace(hook: Option<PageReplaceHook>) {
    *BEFORE_PAGE_REPLACE.lock() = hook;
}

/// Called by the store (src/data_dir.rs) at that point.
pub(crate) fn before_page_replace(relative: &Path) {
    if let Some(hook) = BEFORE_PAGE_REPLACE.lock().as_ref() {
        hook(relative);
    }
}
