/* request.c: see request.h. */
#define _GNU_SOURCE
#include "request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

uint32_t rq_crc32(const unsigned char *bytes, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= bytes[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static unsigned char *alloc_or_die(size_t n)
{
    unsigned char *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "request: out of memory\n");
        abort();
    }
    return p;
}

rq_body_t rq_legacy_body(const unsigned char *challenge12, const void *payload, size_t n)
{
    size_t size = RQ_CHALLENGE_BYTES + n + RQ_TRAILER_BYTES;
    unsigned char *data = alloc_or_die(size);
    if (challenge12) {
        memcpy(data, challenge12, 12);
    } else if (getrandom(data, 12, 0) != 12) {
        fprintf(stderr, "request: getrandom failed\n");
        abort();
    }
    rq_put_u32be(data + 12, rq_crc32(data, 12));
    if (n)
        memcpy(data + RQ_CHALLENGE_BYTES, payload, n);
    data[size - 2] = 0x3E;
    data[size - 1] = 0x3E;
    return (rq_body_t){ .data = data, .size = (int)size };
}

rq_body_t rq_modern_body(const unsigned char *hmac32, const void *payload, size_t n)
{
    size_t size = n + RQ_HMAC_BYTES + RQ_TRAILER_BYTES;
    unsigned char *data = alloc_or_die(size);
    if (n)
        memcpy(data, payload, n);
    for (int i = 0; i < RQ_HMAC_BYTES; i++)
        data[n + i] = hmac32 ? hmac32[i] : (unsigned char)(0xC0 + i);
    data[size - 2] = 0x3E;
    data[size - 1] = 0x3E;
    return (rq_body_t){ .data = data, .size = (int)size };
}

rq_body_t rq_body_for(int encryption_type, const void *payload, size_t n)
{
    if (encryption_type == 4 || encryption_type == 5)
        return rq_modern_body(NULL, payload, n);
    return rq_legacy_body(NULL, payload, n);
}

void rq_body_free(rq_body_t *body)
{
    free(body->data);
    body->data = NULL;
    body->size = 0;
}

void rq_ci_fill(conn_info_t *ci, const rq_body_t *body, int encryption_type, uint8_t coin_id)
{
    memset(ci, 0, sizeof *ci);
    ci->body = body ? body->data : NULL;
    ci->body_size = body ? body->size : 0;
    ci->encryption_type = encryption_type;
    ci->coin_id = coin_id;
}

void rq_ci_release(conn_info_t *ci)
{
    free(ci->output);
    ci->output = NULL;
    ci->output_size = 0;
}

rq_result_t rq_call(rq_handler_fn handler, int encryption_type, uint8_t coin_id,
                    const void *payload, size_t n)
{
    rq_body_t body = rq_body_for(encryption_type, payload, n);
    conn_info_t ci;
    rq_ci_fill(&ci, &body, encryption_type, coin_id);
    handler(&ci);
    rq_body_free(&body);
    return (rq_result_t){ .status = ci.command_status, .output_size = ci.output_size,
                          .output = ci.output };
}

void rq_result_free(rq_result_t *result)
{
    free(result->output);
    result->output = NULL;
    result->output_size = 0;
}

size_t rq_put_coin(unsigned char *at, int8_t den, uint32_t sn)
{
    at[0] = (unsigned char)den;
    rq_put_u32be(at + 1, sn);
    return RQ_COIN_BYTES;
}

size_t rq_put_u32be(unsigned char *at, uint32_t value)
{
    at[0] = (unsigned char)(value >> 24);
    at[1] = (unsigned char)(value >> 16);
    at[2] = (unsigned char)(value >> 8);
    at[3] = (unsigned char)value;
    return 4;
}

uint32_t rq_get_u32be(const unsigned char *at)
{
    return (uint32_t)at[0] << 24 | (uint32_t)at[1] << 16 | (uint32_t)at[2] << 8 | at[3];
}
