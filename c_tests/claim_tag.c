/*
 * claim_tag.c: SHA-256 (FIPS 180-4), HMAC-SHA-256 (RFC 2104) and the claim tag of
 * docs/wire-protocol.md, for the C tests only. Small and slow on purpose: a few hundred
 * tags a run.
 */
#include "claim_tag.h"

#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
};

static uint32_t rotr(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static void sha256_block(uint32_t h[8], const unsigned char block[64])
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 |
               (uint32_t)block[4 * i + 2] << 8 | (uint32_t)block[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) +
                      K[i] + w[i];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
}

/* SHA-256 of the concatenation of two parts (HMAC hashes a pad, then a message). */
static void sha256_two(const unsigned char *a, size_t a_len, const unsigned char *b,
                       size_t b_len, unsigned char out[32])
{
    uint32_t h[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    unsigned char block[64];
    size_t filled = 0;
    uint64_t total = 0;
    const unsigned char *parts[2] = { a, b };
    size_t lens[2] = { a_len, b_len };
    for (int p = 0; p < 2; p++) {
        for (size_t i = 0; i < lens[p]; i++) {
            block[filled++] = parts[p][i];
            total++;
            if (filled == 64) {
                sha256_block(h, block);
                filled = 0;
            }
        }
    }
    block[filled++] = 0x80;
    if (filled > 56) {
        memset(block + filled, 0, 64 - filled);
        sha256_block(h, block);
        filled = 0;
    }
    memset(block + filled, 0, 56 - filled);
    uint64_t bits = total * 8;
    for (int i = 0; i < 8; i++)
        block[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
    sha256_block(h, block);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(h[i] >> 8);
        out[4 * i + 3] = (unsigned char)h[i];
    }
}

void ct_hmac_sha256(const unsigned char *key, size_t key_len, const unsigned char *msg,
                    size_t msg_len, unsigned char out[32])
{
    unsigned char ipad[64] = { 0 }, opad[64] = { 0 }, inner[32];
    memcpy(ipad, key, key_len);
    memcpy(opad, key, key_len);
    for (int i = 0; i < 64; i++) {
        ipad[i] ^= 0x36;
        opad[i] ^= 0x5c;
    }
    sha256_two(ipad, sizeof ipad, msg, msg_len, inner);
    sha256_two(opad, sizeof opad, inner, sizeof inner, out);
}

void ct_claim_tag(const unsigned char key[32], uint8_t claimer, uint8_t peer, uint8_t coin_id,
                  uint32_t ticket, uint64_t unix_seconds, unsigned char out[12])
{
    static const char id_label[] = "raida-healing claim key id v1";
    static const char claim_label[] = "raida-healing claim v1";
    unsigned char mac[32], m[37];
    uint64_t window = unix_seconds / 60;
    ct_hmac_sha256(key, 32, (const unsigned char *)id_label, sizeof id_label - 1, mac);
    out[0] = mac[0];
    out[1] = mac[1];
    out[2] = (unsigned char)window;
    size_t n = sizeof claim_label - 1;
    memcpy(m, claim_label, n);
    m[n++] = claimer;
    m[n++] = peer;
    m[n++] = coin_id;
    for (int i = 3; i >= 0; i--)
        m[n++] = (unsigned char)(ticket >> (8 * i));
    for (int i = 7; i >= 0; i--)
        m[n++] = (unsigned char)(window >> (8 * i));
    ct_hmac_sha256(key, 32, m, n, mac);
    memcpy(out + 3, mac, 9);
}
