//! HMAC-SHA-256 (RFC 2104) over sha2's `Sha256`, with the key's two padded blocks hashed
//! once: a tag then costs two SHA-256 compressions (one for a message of up to 55 bytes,
//! one for the outer hash), not four.
//!
//! Written here rather than taken from the `hmac` crate: it is the textbook construction
//! in a dozen lines over the `sha2` the library already uses, checked below against the
//! RFC 4231 vectors, and it keeps the dependency list as it is.

use sha2::{Digest, Sha256};

/// SHA-256's block size, the HMAC pad length.
const BLOCK_BYTES: usize = 64;
/// SHA-256's output size.
pub(crate) const OUTPUT_BYTES: usize = 32;

/// An HMAC-SHA-256 key, ready to tag: the hash states after the inner and outer pads.
#[derive(Clone)]
pub(crate) struct HmacSha256 {
    inner: Sha256,
    outer: Sha256,
}

impl HmacSha256 {
    /// The key `key` (any length; a key longer than a block is hashed first, per RFC 2104).
    pub(crate) fn new(key: &[u8]) -> HmacSha256 {
        let mut block = [0u8; BLOCK_BYTES];
        if key.len() > BLOCK_BYTES {
            block[..OUTPUT_BYTES].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let pad = |byte: u8| {
            let mut padded = block;
            padded.iter_mut().for_each(|b| *b ^= byte);
            Sha256::new_with_prefix(padded)
        };
        HmacSha256 {
            inner: pad(0x36),
            outer: pad(0x5c),
        }
    }

    /// HMAC-SHA-256 of the concatenation of `parts`.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; OUTPUT_BYTES] {
        let mut inner = self.inner.clone();
        for part in parts {
            inner.update(part);
        }
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        outer.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 4231, test cases 1, 2, 3, 4, 6 and 7 (HMAC-SHA-256); 6 and 7 have a key longer
    /// than a block.
    #[test]
    fn rfc_4231_vectors() {
        let cases: [(Vec<u8>, Vec<u8>, &str); 6] = [
            (
                vec![0x0b; 20],
                b"Hi There".to_vec(),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 20],
                vec![0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                hex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
                vec![0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                vec![0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than \
                  block-size data. The key needs to be hashed before being used by the \
                  HMAC algorithm."
                    .to_vec(),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (key, data, expected) in cases {
            let mac = HmacSha256::new(&key);
            assert_eq!(mac.mac(&[&data]).to_vec(), hex(expected));
            // The same message in pieces gives the same tag.
            let (a, b) = data.split_at(data.len() / 3);
            assert_eq!(mac.mac(&[a, b]).to_vec(), hex(expected));
        }
    }
}
