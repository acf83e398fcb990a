//! Server folders on disk for the standalone exports (`raida_healing_open`).

use std::path::PathBuf;

use raida_healing::pagefile::page_path;
use raida_healing::protocol::Coin;
use raida_healing::store::{PageKey, PAGE_DATA_BYTES, RECORD_BYTES};

/// A server folder: a valid config.toml for RAIDA `raida_id` (25 loopback servers) and an
/// empty Data/, removed on drop.
pub struct Folder(pub PathBuf);

impl Folder {
    pub fn new(tag: &str, raida_id: u8) -> Folder {
        let dir = std::env::temp_dir().join(format!(
            "raida_kit_{tag}_{}_{}",
            std::process::id(),
            raida_healing::random::u32_from_os().expect("OS randomness")
        ));
        std::fs::create_dir_all(dir.join("Data")).unwrap();
        let servers: Vec<String> = (0..25)
            .map(|i| format!("\"127.0.0.1:{}\"", 1 + i))
            .collect();
        std::fs::write(
            dir.join("config.toml"),
            format!(
                "raida_id = {raida_id}\nraida_servers = [{}]\n",
                servers.join(", ")
            ),
        )
        .unwrap();
        Folder(dir)
    }

    pub fn config(&self) -> PathBuf {
        self.0.join("config.toml")
    }

    /// The path of page (`den`, `page`), its directory created.
    pub fn page(&self, den: i8, page: u32) -> PathBuf {
        let path = page_path(&self.0.join("Data"), PageKey { den, page });
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        path
    }

    /// Writes `coin`'s page holding only `coin`'s record (`an`, `mfs`).
    pub fn put(&self, coin: Coin, an: [u8; 16], mfs: u8) {
        let key = PageKey::of(coin).unwrap();
        let mut page = vec![0u8; PAGE_DATA_BYTES];
        let at = (coin.sn % 1024) as usize * RECORD_BYTES;
        page[at..at + 16].copy_from_slice(&an);
        page[at + 16] = mfs;
        std::fs::write(self.page(key.den, key.page), page).unwrap();
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
