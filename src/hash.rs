//! The new AN a fix writes, and the MFS stamp.

use md5::{Digest, Md5};
use sha2::Sha256;

use crate::protocol::{Coin, AN_BYTES};

/// The AN a fix derives for `coin` on server `raida_no` from the owner's proposed
/// generator `pg`: the first 16 bytes of H(raida_no, den, sn big-endian, pg), H being MD5
/// for encryption types below 4 and SHA-256 from 4 on.
pub fn derive_an(
    raida_no: u8,
    coin: Coin,
    pg: &[u8; AN_BYTES],
    encryption_type: i32,
) -> [u8; AN_BYTES] {
    let mut input = [0u8; 22];
    input[0] = raida_no;
    input[1..6].copy_from_slice(&coin.to_wire());
    input[6..].copy_from_slice(pg);
    let mut an = [0u8; AN_BYTES];
    if encryption_type < 4 {
        an.copy_from_slice(&Md5::digest(input));
    } else {
        an.copy_from_slice(&Sha256::digest(input)[..AN_BYTES]);
    }
    an
}

/// The server's "months from start" stamp for `unix_seconds` (UTC):
/// `(tm_year - 123) * 12 + (tm_mon - 1)`, truncated to 8 bits, exactly as the server's
/// `get_mfs` computes it.
pub(crate) fn mfs_at(unix_seconds: i64) -> u8 {
    let (year, month0) = civil_year_month(unix_seconds.div_euclid(86_400));
    let tm_year = year - 1900;
    ((tm_year - 123) * 12 + (month0 - 1)) as u8
}

/// The MFS stamp for now, used where the server's `get_mfs` is absent.
pub(crate) fn mfs_now() -> u8 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    mfs_at(secs)
}

/// Year and zero-based month of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_year_month(days: i64) -> (i64, i64) {
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month1 = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month1 <= 2);
    (year, month1 - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn vectors_from_the_wire_protocol() {
        let counting: [u8; 16] = core::array::from_fn(|i| i as u8);
        let first = Coin { den: 1, sn: 5000 };
        let last = Coin {
            den: -8,
            sn: 1_048_575,
        };
        // (raida_no, coin, pg, encryption type, expected AN)
        let vectors = [
            (3, first, counting, 0, "feebd91947b11a5441fe8c4916e9904a"),
            (3, first, counting, 2, "feebd91947b11a5441fe8c4916e9904a"),
            (3, first, counting, 4, "c71fea3f4db05ade41d7717dbe347aa8"),
            (24, last, [0xaa; 16], 1, "3e210ccbd05000bf7a744502cf304c20"),
            (24, last, [0xaa; 16], 5, "c69a9e1a2ed39ed9c930a9ec489a0a92"),
        ];
        for (raida_no, coin, pg, encryption_type, an) in vectors {
            assert_eq!(
                hex(&derive_an(raida_no, coin, &pg, encryption_type)),
                an,
                "raida {raida_no}, {coin:?}, encryption type {encryption_type}"
            );
        }
    }

    #[test]
    fn mfs_formula() {
        // 2026-11-24 00:00:00 UTC
        assert_eq!(mfs_at(1_795_478_400), 45);
        // 2023-02-01: tm_year 123, tm_mon 1 -> 0
        assert_eq!(mfs_at(1_675_209_600), 0);
        // 2023-01-31 23:59:59: tm_mon 0 -> -1 -> 255
        assert_eq!(mfs_at(1_675_209_599), 255);
        // 2024-02-29
        assert_eq!(mfs_at(1_709_164_800), 12);
    }
}
