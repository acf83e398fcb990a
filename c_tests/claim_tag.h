/*
 * claim_tag.h: the tag of an authenticated claim, made the way docs/wire-protocol.md ("The
 * challenge of an authenticated claim") states it, by C code of the tests' own (SHA-256
 * from FIPS 180-4, HMAC from RFC 2104), so the C tests can make the tags a keyed RAIDA
 * makes without calling the library for them.
 */
#ifndef RAIDA_CLAIM_TAG_H
#define RAIDA_CLAIM_TAG_H

#include <stddef.h>
#include <stdint.h>

/* HMAC-SHA-256 of msg under key (any length up to 64 bytes) into out. */
void ct_hmac_sha256(const unsigned char *key, size_t key_len, const unsigned char *msg,
                    size_t msg_len, unsigned char out[32]);

/* The 12 challenge bytes of a claim by RAIDA `claimer` sent to RAIDA `peer` for `ticket`
 * with coin id `coin_id`, tagged with the 32-byte `key` at Unix time `unix_seconds`: key
 * id (2), window byte (1), the first 9 bytes of the claim's MAC. */
void ct_claim_tag(const unsigned char key[32], uint8_t claimer, uint8_t peer, uint8_t coin_id,
                  uint32_t ticket, uint64_t unix_seconds, unsigned char out[12]);

#endif
