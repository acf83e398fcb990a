/*
 * request.h: request bodies and conn_info_t set-up, as the legacy server prepares them
 * before it calls a healing handler.
 *
 * Legacy framing (encryption types 0, 1, 2): 12 challenge bytes, their CRC-32
 * (IEEE/zlib) big-endian, the payload, 3E 3E. Modern framing (types 4, 5): the payload,
 * 32 HMAC bytes, 3E 3E. Every buffer handed out here comes from malloc.
 */
#ifndef RAIDA_REQUEST_H
#define RAIDA_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "raida_healing.h"

#define RQ_CHALLENGE_BYTES 16
#define RQ_HMAC_BYTES 32
#define RQ_TRAILER_BYTES 2
#define RQ_COIN_BYTES 5
#define RQ_AN_BYTES 16

/* CRC-32 (IEEE 802.3, the zlib one) of n bytes. */
uint32_t rq_crc32(const unsigned char *bytes, size_t n);

/* A request body as the server hands it to a handler. */
typedef struct rq_body_t {
    unsigned char *data; /* malloc'ed; free with rq_body_free */
    int size;
} rq_body_t;

/* Legacy body; challenge12 NULL draws 12 random bytes. */
rq_body_t rq_legacy_body(const unsigned char *challenge12, const void *payload, size_t n);
/* Modern body; hmac32 NULL uses a fixed non-zero pattern (the module does not check it). */
rq_body_t rq_modern_body(const unsigned char *hmac32, const void *payload, size_t n);
/* The body framed as the encryption type asks (4 and 5 modern, others legacy). */
rq_body_t rq_body_for(int encryption_type, const void *payload, size_t n);
void rq_body_free(rq_body_t *body);

/* Zeroes ci, then sets body, body_size, encryption_type and coin_id (body NULL: no body). */
void rq_ci_fill(conn_info_t *ci, const rq_body_t *body, int encryption_type, uint8_t coin_id);
/* Frees ci->output with free() and clears output and output_size. */
void rq_ci_release(conn_info_t *ci);

typedef void (*rq_handler_fn)(conn_info_t *ci);

/* What a handler answered. */
typedef struct rq_result_t {
    unsigned char status;
    int output_size;
    unsigned char *output; /* the handler's malloc'ed buffer; free with rq_result_free */
} rq_result_t;

/* Frames payload for encryption_type, runs handler on a freshly filled ci (as the server
 * does) and returns its answer; the body is freed afterwards. */
rq_result_t rq_call(rq_handler_fn handler, int encryption_type, uint8_t coin_id,
                    const void *payload, size_t n);
void rq_result_free(rq_result_t *result);

/* Payload writers: big-endian as on the wire. Each returns the bytes written. */
size_t rq_put_coin(unsigned char *at, int8_t den, uint32_t sn);
size_t rq_put_u32be(unsigned char *at, uint32_t value);
uint32_t rq_get_u32be(const unsigned char *at);

#endif /* RAIDA_REQUEST_H */
