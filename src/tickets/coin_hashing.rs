//! Hashing for coin keys, shared by the pool's coin index, its ticket table and the
//! per-request counts of coins taken.

use std::hash::{BuildHasher, Hasher};

/// Hashing for coin keys: a seeded splitmix64 finaliser, a few cycles a coin where std's
/// SipHash costs several times the rest of get_ticket's work on the coin. The seed is
/// per pool and unpredictable (std's own random keys), so chosen coins cannot be made to
/// collide.
#[derive(Clone)]
pub(super) struct CoinHashing {
    seed: u64,
}

impl Default for CoinHashing {
    fn default() -> Self {
        CoinHashing {
            seed: std::collections::hash_map::RandomState::new().hash_one(0u64),
        }
    }
}

impl BuildHasher for CoinHashing {
    type Hasher = CoinHasher;

    fn build_hasher(&self) -> CoinHasher {
        CoinHasher(self.seed)
    }
}

impl CoinHashing {
    /// The hash of one coin key.
    #[inline]
    pub(super) fn hash_key(&self, key: u64) -> u64 {
        let mut hasher = self.build_hasher();
        hasher.write_u64(key);
        hasher.finish()
    }
}

pub(super) struct CoinHasher(u64);

impl Hasher for CoinHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        let mut z = self.0 ^ value;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        self.0 = z ^ (z >> 31);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
