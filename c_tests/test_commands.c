/*
 * test_commands.c: get_ticket, validate_ticket and find through libraida_healing and its
 * header, called as the legacy server calls them: a conn_info_t whose fields hold
 * garbage except those the server sets, a body framed by encryption type, the output
 * freed with free(). Every call also checks the ABI contract (call_framed): no field
 * but output, output_size and command_status changes, output is NULL exactly when
 * output_size is 0, no page is left locked, the page API is never misused.
 *
 * Each group runs in its own forked process (check.h), so each starts with an empty
 * ticket pool (the pool is process-wide and tickets live 300 s).
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "host.h"
#include "raida_healing.h"
#include "request.h"

#define RAIDA_NO 7
#define COIN_ID 6
#define GARBAGE 0xA5

/* ---- coins and payloads ---- */

/* The AN this test stores for (den, sn), and a proposed AN that differs in every byte. */
static void an_of(int8_t den, uint32_t sn, unsigned char an[16])
{
    for (int i = 0; i < 16; i++)
        an[i] = (unsigned char)(sn * 31u + (uint32_t)(den + 8) * 7u + (uint32_t)i * 13u + 1u);
}

static void pan_of(int8_t den, uint32_t sn, unsigned char an[16])
{
    an_of(den, sn, an);
    for (int i = 0; i < 16; i++)
        an[i] ^= 0x5A;
}

static void wrong_an(unsigned char an[16])
{
    memset(an, 0xEE, 16);
}

static void stock(int8_t den, uint32_t sn)
{
    unsigned char an[16];
    an_of(den, sn, an);
    host_put(den, sn, an, 1);
}

/* A growable byte buffer. */
typedef struct {
    unsigned char *b;
    size_t n, cap;
} buf_t;

static void buf_add(buf_t *buf, const void *bytes, size_t n)
{
    if (buf->n + n > buf->cap) {
        buf->cap = (buf->n + n) * 2 + 64;
        buf->b = realloc(buf->b, buf->cap);
        if (!buf->b)
            abort();
    }
    memcpy(buf->b + buf->n, bytes, n);
    buf->n += n;
}

static void buf_coin(buf_t *buf, int8_t den, uint32_t sn)
{
    unsigned char c[RQ_COIN_BYTES];
    rq_put_coin(c, den, sn);
    buf_add(buf, c, sizeof c);
}

static void buf_free(buf_t *buf)
{
    free(buf->b);
    buf->b = NULL;
    buf->n = buf->cap = 0;
}

/* A get_ticket record: the coin and its stored AN (pass) or a wrong one (fail). */
static void gt_record(buf_t *buf, int8_t den, uint32_t sn, int pass)
{
    unsigned char an[16];
    if (pass)
        an_of(den, sn, an);
    else
        wrong_an(an);
    buf_coin(buf, den, sn);
    buf_add(buf, an, 16);
}

/* A find record: which of AN (1), PAN (2) or neither (0) matches the stored AN. */
static void find_record(buf_t *buf, int8_t den, uint32_t sn, int matches)
{
    unsigned char stored[16], other[16], an[16], pan[16];
    an_of(den, sn, stored);
    wrong_an(other);
    memcpy(an, matches == 1 ? stored : other, 16);
    if (matches == 2)
        memcpy(pan, stored, 16);
    else
        pan_of(den, sn, pan);
    buf_coin(buf, den, sn);
    buf_add(buf, an, 16);
    buf_add(buf, pan, 16);
}

/* ---- calling a handler as the server does ---- */

/* Set by groups whose threads run commands at once: pages locked by another thread are
 * then no sign of a leak. */
static int concurrent_mode;

/* Runs handler on a conn_info_t full of garbage except the fields the server sets (the
 * client's address left unsaid), then checks the contract that every call must keep. */
static rq_result_t call_framed(rq_handler_fn handler, int encryption_type, unsigned char *body,
                               int body_size)
{
    conn_info_t ci;
    memset(&ci, GARBAGE, sizeof ci);
    /* Who the client is, which validate_ticket reads: not given here, as by a caller that
     * cannot tell (test_claims.c gives it). */
    ci.sa = NULL;
    ci.sk = -1;
    ci.ip[0] = '\0';
    ci.body = body;
    ci.body_size = body_size;
    ci.encryption_type = encryption_type;
    ci.coin_id = COIN_ID;
    ci.output = NULL;
    ci.output_size = 0;
    unsigned char before[sizeof ci];
    memcpy(before, &ci, sizeof ci);

    handler(&ci);

    const unsigned char *after = (const unsigned char *)&ci;
    size_t changed = sizeof ci;
    for (size_t i = 0; i < sizeof ci && changed == sizeof ci; i++) {
        int written = (i >= offsetof(conn_info_t, output_size) &&
                       i < offsetof(conn_info_t, output_size) + sizeof ci.output_size) ||
                      (i >= offsetof(conn_info_t, output) &&
                       i < offsetof(conn_info_t, output) + sizeof ci.output) ||
                      i == offsetof(conn_info_t, command_status);
        if (!written && before[i] != after[i])
            changed = i;
    }
    CHECK(changed == sizeof ci, "the handler changed conn_info_t byte %zu", changed);
    CHECK((ci.output == NULL) == (ci.output_size == 0), "output %p with output_size %d",
          (void *)ci.output, ci.output_size);
    CHECK(ci.output_size >= 0, "output_size %d", ci.output_size);
    if (ci.output)
        CHECK(malloc_usable_size(ci.output) >= (size_t)ci.output_size,
              "output is not a malloc block of %d bytes", ci.output_size);
    if (!concurrent_mode)
        CHECK_INT(host_locked_pages(), 0);
    CHECK_INT(host_misuse_count(), 0);
    return (rq_result_t){ .status = ci.command_status, .output_size = ci.output_size,
                          .output = ci.output };
}

/* Frames payload for encryption_type and calls handler. */
static rq_result_t call(rq_handler_fn handler, int encryption_type, const buf_t *payload)
{
    rq_body_t body = rq_body_for(encryption_type, payload->b, payload->n);
    rq_result_t r = call_framed(handler, encryption_type, body.data, body.size);
    rq_body_free(&body);
    return r;
}

/* Expects status and exactly the bytes want[0 .. want_n), then frees the output. */
static void expect(rq_result_t r, int status, const void *want, size_t want_n, const char *what)
{
    CHECK(r.status == status, "%s: status %d, want %d", what, r.status, status);
    CHECK(r.output_size == (int)want_n && (want_n == 0 || memcmp(r.output, want, want_n) == 0),
          "%s: output differs", what);
    if (r.output_size != (int)want_n || (want_n && memcmp(r.output, want, want_n) != 0))
        CHECK_BYTES(r.output, r.output_size, want, want_n);
    rq_result_free(&r);
}

static void expect_status(rq_result_t r, int status, const char *what)
{
    expect(r, status, NULL, 0, what);
}

/* Ticket id of a get_ticket that must pass every coin. */
static uint32_t all_pass_ticket(int encryption_type, const buf_t *payload, const char *what)
{
    rq_result_t r = call(cmd_get_ticket, encryption_type, payload);
    uint32_t id = 0;
    CHECK(r.status == RAIDA_STATUS_ALL_PASS && r.output_size == 4, "%s: status %d, %d bytes",
          what, r.status, r.output_size);
    if (r.output_size == 4)
        id = rq_get_u32be(r.output);
    CHECK(id != 0, "%s: ticket id 0", what);
    rq_result_free(&r);
    return id;
}

static rq_result_t claim(int encryption_type, uint8_t claimer, uint32_t id)
{
    unsigned char p[5];
    p[0] = claimer;
    rq_put_u32be(p + 1, id);
    buf_t payload = { 0 };
    buf_add(&payload, p, sizeof p);
    rq_result_t r = call(cmd_validate_ticket, encryption_type, &payload);
    buf_free(&payload);
    return r;
}

/* A legacy body of exactly body_size bytes (challenge, zero payload, trailer). */
static void sized_legacy_call(rq_handler_fn handler, int body_size, int status, const char *what)
{
    size_t n = body_size > 18 ? (size_t)body_size - 18 : 0;
    unsigned char *zeros = calloc(1, n + 1);
    rq_body_t body = rq_legacy_body(NULL, zeros, n);
    expect_status(call_framed(handler, 0, body.data, body_size), status, what);
    rq_body_free(&body);
    free(zeros);
}

static void sized_modern_call(rq_handler_fn handler, int encryption_type, size_t payload_n,
                              int status, const char *what)
{
    unsigned char *zeros = calloc(1, payload_n + 1);
    rq_body_t body = rq_modern_body(NULL, zeros, payload_n);
    expect_status(call_framed(handler, encryption_type, body.data, body.size), status, what);
    rq_body_free(&body);
    free(zeros);
}

/* ---- get_ticket ---- */

static void group_get_ticket(void)
{
    host_init(RAIDA_NO, COIN_ID);
    for (uint32_t sn = 0; sn < 20; sn++)
        stock(1, sn);
    stock(-8, 1000);
    stock(6, 1023999);

    buf_t p = { 0 };
    /* All pass: 241 and a ticket that lists the coins in request order. */
    gt_record(&p, 1, 5, 1);
    gt_record(&p, -8, 1000, 1);
    gt_record(&p, 6, 1023999, 1);
    uint32_t id = all_pass_ticket(0, &p, "all pass");
    const unsigned char all_coins[] = { 0x01, 0, 0, 0, 5, 0xF8, 0, 0, 0x03, 0xE8, 0x06, 0, 0x0F, 0x9F, 0xFF };
    expect(claim(0, 2, id), RAIDA_STATUS_SUCCESS, all_coins, sizeof all_coins, "claim of all-pass ticket");
    buf_free(&p);

    /* None pass: 242, no body, no ticket. */
    gt_record(&p, 1, 1, 0);
    gt_record(&p, 1, 2, 0);
    expect_status(call(cmd_get_ticket, 0, &p), RAIDA_STATUS_ALL_FAIL, "none pass");
    buf_free(&p);

    /* Some pass: 243, bitfield (coin i = bit i % 8 of byte i / 8), then the ticket. */
    for (uint32_t i = 0; i < 10; i++)
        gt_record(&p, 1, i, i == 0 || i == 2 || i == 3 || i == 9);
    rq_result_t r = call(cmd_get_ticket, 0, &p);
    CHECK_INT(r.status, RAIDA_STATUS_MIXED);
    CHECK_INT(r.output_size, 6);
    if (r.output_size == 6) {
        const unsigned char bits[] = { 0x0D, 0x02 };
        CHECK_BYTES(r.output, 2, bits, 2);
        id = rq_get_u32be(r.output + 2);
        CHECK(id != 0, "ticket id 0");
        const unsigned char passed[] = { 1, 0, 0, 0, 0, 1, 0, 0, 0, 2, 1, 0, 0, 0, 3, 1, 0, 0, 0, 9 };
        expect(claim(0, 4, id), RAIDA_STATUS_SUCCESS, passed, sizeof passed, "claim of mixed ticket");
    }
    rq_result_free(&r);
    buf_free(&p);

    /* Exactly 8 coins: a 1-byte bitfield; 9 coins: 2 bytes. */
    for (uint32_t i = 0; i < 8; i++)
        gt_record(&p, 1, i, i == 0 || i == 7);
    r = call(cmd_get_ticket, 0, &p);
    CHECK(r.status == RAIDA_STATUS_MIXED && r.output_size == 5 && r.output[0] == 0x81,
          "8 coins: status %d size %d", r.status, r.output_size);
    rq_result_free(&r);
    buf_free(&p);
    for (uint32_t i = 0; i < 9; i++)
        gt_record(&p, 1, i + 10, i != 8);
    r = call(cmd_get_ticket, 0, &p);
    CHECK(r.status == RAIDA_STATUS_MIXED && r.output_size == 6 && r.output[0] == 0xFF &&
              r.output[1] == 0x00,
          "9 coins: status %d size %d", r.status, r.output_size);
    rq_result_free(&r);
    buf_free(&p);

    /* Encryption types 1 and 2 are framed like 0; 4 and 5 are modern. A modern body
     * read the legacy way would miscount (55 - 18 = 37 is no multiple of 21). */
    gt_record(&p, 1, 3, 1);
    for (int type = 1; type <= 5; type++) {
        if (type == 3)
            continue;
        id = all_pass_ticket(type, &p, "one coin, encryption types 1, 2, 4, 5");
        const unsigned char coin13[] = { 1, 0, 0, 0, 3 };
        expect(claim(type, 5, id), RAIDA_STATUS_SUCCESS, coin13, 5, "claim of 1-coin ticket");
    }
    gt_record(&p, 1, 4, 0);
    gt_record(&p, 1, 6, 1);
    for (int type = 4; type <= 5; type++) {
        r = call(cmd_get_ticket, type, &p);
        CHECK(r.status == RAIDA_STATUS_MIXED && r.output_size == 5 && r.output[0] == 0x05,
              "modern mixed: status %d size %d", r.status, r.output_size);
        rq_result_free(&r);
    }
    buf_free(&p);

    /* Sizes (legacy framing counts body_size; modern counts the payload P). */
    unsigned char junk[64] = { 0 };
    expect_status(call_framed(cmd_get_ticket, 0, NULL, 39), RAIDA_STATUS_EMPTY_REQUEST, "NULL body");
    expect_status(call_framed(cmd_get_ticket, 4, NULL, 55), RAIDA_STATUS_EMPTY_REQUEST, "NULL body, type 4");
    sized_legacy_call(cmd_get_ticket, 38, RAIDA_STATUS_INVALID_PACKET_LENGTH, "body_size 38");
    sized_legacy_call(cmd_get_ticket, 18, RAIDA_STATUS_INVALID_PACKET_LENGTH, "body_size 18");
    sized_legacy_call(cmd_get_ticket, 40, RAIDA_STATUS_COINS_NOT_DIV, "body_size 40");
    sized_legacy_call(cmd_get_ticket, 59, RAIDA_STATUS_COINS_NOT_DIV, "body_size 59");
    sized_legacy_call(cmd_get_ticket, 61, RAIDA_STATUS_COINS_NOT_DIV, "body_size 61");
    expect_status(call_framed(cmd_get_ticket, 0, junk, 17), RAIDA_STATUS_INVALID_PACKET_LENGTH, "body_size 17");
    expect_status(call_framed(cmd_get_ticket, 0, junk, 0), RAIDA_STATUS_INVALID_PACKET_LENGTH, "body_size 0");
    expect_status(call_framed(cmd_get_ticket, 0, junk, -5), RAIDA_STATUS_INVALID_PACKET_LENGTH, "body_size -5");
    expect_status(call_framed(cmd_get_ticket, 4, junk, 33), RAIDA_STATUS_INVALID_PACKET_LENGTH, "modern body 33");
    sized_modern_call(cmd_get_ticket, 4, 20, RAIDA_STATUS_INVALID_PACKET_LENGTH, "modern P 20");
    sized_modern_call(cmd_get_ticket, 5, 22, RAIDA_STATUS_COINS_NOT_DIV, "modern P 22");
    sized_modern_call(cmd_get_ticket, 4, 0, RAIDA_STATUS_INVALID_PACKET_LENGTH, "modern P 0");
    /* Zero-filled coins are den 0, sn 0, whose page does not exist: 40, not a size status. */
    sized_legacy_call(cmd_get_ticket, 39, RAIDA_STATUS_INVALID_SN_OR_DENOMINATION, "body_size 39");

    /* A coin no page holds rejects the whole request, passing coins included. */
    const struct { int8_t den; uint32_t sn; const char *what; } bad[] = {
        { 1, 500 * 1024, "missing page" }, { 7, 1, "den 7" }, { -9, 1, "den -9" },
        { 1, 1000 * 1024, "sn 1024000" }, { 1, 0xFFFFFFFFu, "sn 2^32-1" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gt_record(&p, 1, 5, 1);
        gt_record(&p, bad[i].den, bad[i].sn, 1);
        gt_record(&p, 1, 6, 1);
        expect_status(call(cmd_get_ticket, 0, &p), RAIDA_STATUS_INVALID_SN_OR_DENOMINATION, bad[i].what);
        buf_free(&p);
    }

    /* At most 4096 coins on a ticket (only a modern body can carry that many). */
    for (uint32_t sn = 0; sn < 4097; sn++)
        stock(2, sn);
    buf_t coins = { 0 };
    for (uint32_t sn = 0; sn < 4096; sn++) {
        gt_record(&p, 2, sn, 1);
        buf_coin(&coins, 2, sn);
    }
    id = all_pass_ticket(4, &p, "4096 coins");
    expect(claim(0, 1, id), RAIDA_STATUS_SUCCESS, coins.b, coins.n, "claim of 4096 coins");
    gt_record(&p, 2, 4096, 1);
    expect_status(call(cmd_get_ticket, 4, &p), RAIDA_STATUS_INVALID_PACKET_LENGTH, "4097 coins, modern");
    expect_status(call(cmd_get_ticket, 0, &p), RAIDA_STATUS_INVALID_PACKET_LENGTH, "4097 coins, legacy");
    buf_free(&p);
    buf_free(&coins);

    /* get_ticket only reads: no dirty page, no bitmap call, records unchanged. */
    CHECK_INT(host_page_dirty(1, 5), 0);
    CHECK_INT(host_page_dirty(2, 0), 0);
    CHECK_INT(host_bitmap_used_calls(1, 5), 0);
    unsigned char an[16], want[16];
    uint8_t mfs = 0;
    CHECK_INT(host_get(1, 5, an, &mfs), 0);
    an_of(1, 5, want);
    CHECK_BYTES(an, 16, want, 16);
    CHECK_INT(mfs, 1);
}

/* ---- validate_ticket ---- */

static void group_validate_ticket(void)
{
    host_init(RAIDA_NO, COIN_ID);
    stock(-8, 5);
    stock(6, 1023999);
    stock(0, 1024);
    buf_t p = { 0 };
    gt_record(&p, -8, 5, 1);
    gt_record(&p, 6, 1023999, 1);
    gt_record(&p, 0, 1024, 1);
    uint32_t id = all_pass_ticket(0, &p, "3 coins");
    uint32_t other = all_pass_ticket(0, &p, "3 coins again");
    CHECK(other != id, "two live tickets share id %08x", id);
    buf_free(&p);
    const unsigned char coins[] = { 0xF8, 0, 0, 0, 5, 0x06, 0, 0x0F, 0x9F, 0xFF, 0x00, 0, 0, 0x04, 0x00 };

    expect(claim(0, 3, id), RAIDA_STATUS_SUCCESS, coins, sizeof coins, "first claim by 3");
    expect_status(claim(0, 3, id), RAIDA_STATUS_TICKET_CLAIMED_ALREADY, "second claim by 3");
    expect(claim(0, 24, id), RAIDA_STATUS_SUCCESS, coins, sizeof coins, "claim by 24");
    expect(claim(0, 0, id), RAIDA_STATUS_SUCCESS, coins, sizeof coins, "claim by 0");
    expect_status(claim(0, 25, id), RAIDA_STATUS_WRONG_RAIDA, "claim by 25");
    expect_status(claim(0, 255, id), RAIDA_STATUS_WRONG_RAIDA, "claim by 255");
    expect_status(claim(0, 25, 0), RAIDA_STATUS_WRONG_RAIDA, "index checked before the ticket");
    expect_status(claim(0, 3, 0), RAIDA_STATUS_NO_TICKET_FOUND, "ticket 0");
    uint32_t unknown = id + 1;
    while (unknown == 0 || unknown == other)
        unknown++;
    expect_status(claim(0, 3, unknown), RAIDA_STATUS_NO_TICKET_FOUND, "unknown ticket");
    /* The other ticket is independent. */
    expect(claim(0, 3, other), RAIDA_STATUS_SUCCESS, coins, sizeof coins, "claim of the other ticket");

    /* Modern framing: payload exactly 5 bytes. */
    expect(claim(4, 7, id), RAIDA_STATUS_SUCCESS, coins, sizeof coins, "modern claim by 7");
    expect_status(claim(5, 7, id), RAIDA_STATUS_TICKET_CLAIMED_ALREADY, "modern second claim by 7");

    /* Sizes: legacy body exactly 23, modern payload exactly 5. */
    expect_status(call_framed(cmd_validate_ticket, 0, NULL, 23), RAIDA_STATUS_EMPTY_REQUEST, "NULL body");
    sized_legacy_call(cmd_validate_ticket, 22, RAIDA_STATUS_INVALID_PACKET_LENGTH, "body_size 22");
    sized_legacy_call(cmd_validate_ticket, 24, RAIDA_STATUS_INVALID_PACKET_LENGTH, "body_size 24");
    sized_legacy_call(cmd_validate_ticket, 17, RAIDA_STATUS_INVALID_PACKET_LENGTH, "body_size 17");
    unsigned char junk[8] = { 0 };
    expect_status(call_framed(cmd_validate_ticket, 0, junk, -1), RAIDA_STATUS_INVALID_PACKET_LENGTH, "body_size -1");
    sized_modern_call(cmd_validate_ticket, 4, 4, RAIDA_STATUS_INVALID_PACKET_LENGTH, "modern P 4");
    sized_modern_call(cmd_validate_ticket, 5, 6, RAIDA_STATUS_INVALID_PACKET_LENGTH, "modern P 6");
    /* A legacy-sized body (23) read with modern framing is too short. */
    unsigned char p23[23] = { 0 };
    expect_status(call_framed(cmd_validate_ticket, 4, p23, 23), RAIDA_STATUS_INVALID_PACKET_LENGTH, "23 bytes, type 4");
}

/* ---- find ---- */

static void group_find(void)
{
    host_init(RAIDA_NO, COIN_ID);
    for (uint32_t sn = 100; sn < 104; sn++)
        stock(3, sn);
    stock(-2, 2048);
    buf_t p = { 0 };

    find_record(&p, 3, 100, 1);
    find_record(&p, -2, 2048, 1);
    find_record(&p, 3, 103, 1);
    expect_status(call(cmd_find, 0, &p), RAIDA_STATUS_FIND_ALL_AN, "all AN");
    buf_free(&p);
    find_record(&p, 3, 100, 2);
    find_record(&p, -2, 2048, 2);
    expect_status(call(cmd_find, 0, &p), RAIDA_STATUS_FIND_ALL_PAN, "all PAN");
    buf_free(&p);
    find_record(&p, 3, 101, 0);
    find_record(&p, 3, 102, 0);
    expect_status(call(cmd_find, 0, &p), RAIDA_STATUS_FIND_NEITHER, "neither");
    buf_free(&p);

    find_record(&p, 3, 100, 1);
    find_record(&p, 3, 101, 2);
    find_record(&p, -2, 2048, 0);
    find_record(&p, 3, 103, 1);
    const unsigned char mixed[] = { 1, 2, 0, 1 };
    expect(call(cmd_find, 0, &p), RAIDA_STATUS_FIND_MIXED, mixed, 4, "mixed");
    for (int type = 4; type <= 5; type++)
        expect(call(cmd_find, type, &p), RAIDA_STATUS_FIND_MIXED, mixed, 4, "mixed, modern");
    buf_free(&p);

    /* PAN and neither only: still mixed. The AN is compared first: AN == PAN == stored is 1. */
    find_record(&p, 3, 100, 2);
    find_record(&p, 3, 101, 0);
    unsigned char stored[16];
    an_of(3, 102, stored);
    buf_coin(&p, 3, 102);
    buf_add(&p, stored, 16);
    buf_add(&p, stored, 16);
    const unsigned char pan_neither_an[] = { 2, 0, 1 };
    expect(call(cmd_find, 0, &p), RAIDA_STATUS_FIND_MIXED, pan_neither_an, 3, "PAN, neither, AN=PAN");
    buf_free(&p);

    /* Sizes. */
    expect_status(call_framed(cmd_find, 0, NULL, 55), RAIDA_STATUS_EMPTY_REQUEST, "NULL body");
    sized_legacy_call(cmd_find, 54, RAIDA_STATUS_INVALID_PACKET_LENGTH, "body_size 54");
    sized_legacy_call(cmd_find, 56, RAIDA_STATUS_COINS_NOT_DIV, "body_size 56");
    sized_legacy_call(cmd_find, 91, RAIDA_STATUS_COINS_NOT_DIV, "body_size 91");
    sized_modern_call(cmd_find, 4, 36, RAIDA_STATUS_INVALID_PACKET_LENGTH, "modern P 36");
    sized_modern_call(cmd_find, 5, 38, RAIDA_STATUS_COINS_NOT_DIV, "modern P 38");

    /* A coin no page holds rejects the whole request. */
    find_record(&p, 3, 100, 1);
    find_record(&p, 3, 9 * 1024, 1);
    expect_status(call(cmd_find, 0, &p), RAIDA_STATUS_INVALID_SN_OR_DENOMINATION, "missing page");
    buf_free(&p);
    find_record(&p, 7, 100, 1);
    expect_status(call(cmd_find, 0, &p), RAIDA_STATUS_INVALID_SN_OR_DENOMINATION, "den 7");
    buf_free(&p);

    /* find only reads. */
    CHECK_INT(host_page_dirty(3, 100), 0);
    CHECK_INT(host_bitmap_used_calls(3, 100), 0);
}

/* ---- page locking ---- */

static void group_locking(void)
{
    host_init(RAIDA_NO, COIN_ID);
    const int8_t dens[3] = { 1, 1, -8 };
    const uint32_t firsts[3] = { 0, 3 * 1024, 999 * 1024 };
    for (int page = 0; page < 3; page++)
        for (uint32_t k = 0; k < 4; k++)
            stock(dens[page], firsts[page] + k * 100);

    /* 12 coins interleaved over 3 pages, one of them listed twice: 3 locks. */
    buf_t gt = { 0 }, fd = { 0 };
    for (uint32_t k = 0; k < 4; k++)
        for (int page = 0; page < 3; page++) {
            gt_record(&gt, dens[page], firsts[page] + k * 100, 1);
            find_record(&fd, dens[page], firsts[page] + k * 100, 1);
        }
    gt_record(&gt, 1, 0, 1);
    unsigned long before = host_page_lock_count();
    all_pass_ticket(0, &gt, "12 coins on 3 pages");
    CHECK_INT(host_page_lock_count() - before, 3);
    before = host_page_lock_count();
    expect_status(call(cmd_find, 0, &fd), RAIDA_STATUS_FIND_ALL_AN, "find over 3 pages");
    CHECK_INT(host_page_lock_count() - before, 3);
    buf_free(&gt);
    buf_free(&fd);

    /* 100 coins of one page (den 4, page 3): 1 lock. */
    for (uint32_t sn = 3 * 1024; sn < 3 * 1024 + 100; sn++) {
        stock(4, sn);
        gt_record(&gt, 4, sn, sn % 3 != 0);
    }
    before = host_page_lock_count();
    rq_result_t r = call(cmd_get_ticket, 0, &gt);
    CHECK_INT(r.status, RAIDA_STATUS_MIXED);
    rq_result_free(&r);
    CHECK_INT(host_page_lock_count() - before, 1);
    buf_free(&gt);
}

/* ---- the contract at the boundary ---- */

static void group_contract(void)
{
    host_init(RAIDA_NO, COIN_ID);
    /* A NULL ci, as the very first call of the process: ignored and logged. */
    rq_handler_fn handlers[] = { cmd_get_ticket, cmd_validate_ticket, cmd_find, cmd_fix };
    for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++) {
        int logged = host_log_count("NULL conn_info_t");
        handlers[i](NULL);
        CHECK_INT(host_log_count("NULL conn_info_t") - logged, 1);
        CHECK_INT(host_locked_pages(), 0);
    }
    /* The library is still fine afterwards. */
    stock(1, 1);
    buf_t p = { 0 };
    gt_record(&p, 1, 1, 1);
    uint32_t id = all_pass_ticket(0, &p, "after NULL ci");
    const unsigned char coin[] = { 1, 0, 0, 0, 1 };
    expect(claim(0, 1, id), RAIDA_STATUS_SUCCESS, coin, 5, "claim after NULL ci");
    buf_free(&p);

    /* The server's config is read-only to the handlers. */
    struct config_s snapshot;
    memcpy(&snapshot, &config, sizeof config);
    gt_record(&p, 1, 1, 1);
    rq_result_t r = call(cmd_get_ticket, 0, &p);
    rq_result_free(&r);
    CHECK(memcmp(&snapshot, &config, sizeof config) == 0, "config changed");
    buf_free(&p);
}

/* ---- concurrency ---- */

#define CLAIM_ROUNDS 200

struct claim_race {
    pthread_barrier_t start, done;
    uint32_t id;
    int stop;
    rq_result_t result[2];
};

static void *claim_racer(void *arg)
{
    struct claim_race *race = arg;
    static atomic_int next_slot;
    int slot = atomic_fetch_add(&next_slot, 1);
    for (;;) {
        pthread_barrier_wait(&race->start);
        if (race->stop)
            return NULL;
        race->result[slot] = claim(0, 9, race->id);
        pthread_barrier_wait(&race->done);
    }
}

/* Two threads claim one ticket for the same RAIDA index at once: one 250, one 44. */
static void group_concurrent_claims(void)
{
    host_init(RAIDA_NO, COIN_ID);
    concurrent_mode = 1;
    stock(5, 777);
    buf_t p = { 0 };
    gt_record(&p, 5, 777, 1);
    const unsigned char coin[] = { 5, 0, 0, 0x03, 0x09 };

    struct claim_race race = { 0 };
    pthread_barrier_init(&race.start, NULL, 3);
    pthread_barrier_init(&race.done, NULL, 3);
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&threads[i], NULL, claim_racer, &race);
    int good_rounds = 0;
    for (int round = 0; round < CLAIM_ROUNDS; round++) {
        race.id = all_pass_ticket(0, &p, "race ticket");
        pthread_barrier_wait(&race.start);
        pthread_barrier_wait(&race.done);
        int wins = 0, already = 0, exact = 1;
        for (int i = 0; i < 2; i++) {
            rq_result_t *r = &race.result[i];
            if (r->status == RAIDA_STATUS_SUCCESS) {
                wins++;
                exact &= r->output_size == 5 && memcmp(r->output, coin, 5) == 0;
            } else if (r->status == RAIDA_STATUS_TICKET_CLAIMED_ALREADY) {
                already++;
                exact &= r->output_size == 0;
            }
            rq_result_free(r);
        }
        if (wins == 1 && already == 1 && exact)
            good_rounds++;
        else
            fprintf(stderr, "round %d: %d x 250, %d x 44, exact %d\n", round, wins, already, exact);
    }
    race.stop = 1;
    pthread_barrier_wait(&race.start);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&race.start);
    pthread_barrier_destroy(&race.done);
    CHECK_INT(good_rounds, CLAIM_ROUNDS);
    CHECK_INT(host_locked_pages(), 0);
    buf_free(&p);
    concurrent_mode = 0;
}

#define STRESS_THREADS 4
#define STRESS_ROUNDS 50

/* Threads mix get_ticket, find and claims on their own pages and on one shared page;
 * every answer must still be exact. */
static void *stress_worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    uint32_t own = (uint32_t)(t + 1) * 1024 * 10;
    for (int round = 0; round < STRESS_ROUNDS; round++) {
        buf_t gt = { 0 }, fd = { 0 };
        gt_record(&gt, 1, own + (uint32_t)round, 1);
        gt_record(&gt, 1, (uint32_t)round, 1); /* the shared page */
        gt_record(&gt, 1, own + (uint32_t)round + 1, 0);
        rq_result_t r = call(cmd_get_ticket, 0, &gt);
        uint32_t id = 0;
        CHECK(r.status == RAIDA_STATUS_MIXED && r.output_size == 5 && r.output[0] == 0x03,
              "thread %d round %d: get_ticket %d", t, round, r.status);
        if (r.output_size == 5)
            id = rq_get_u32be(r.output + 1);
        rq_result_free(&r);
        unsigned char coins[10];
        rq_put_coin(coins, 1, own + (uint32_t)round);
        rq_put_coin(coins + 5, 1, (uint32_t)round);
        expect(claim(0, (uint8_t)t, id), RAIDA_STATUS_SUCCESS, coins, 10, "stress claim");

        find_record(&fd, 1, (uint32_t)round, 1);
        find_record(&fd, 1, own + (uint32_t)round, 2);
        const unsigned char mixed[] = { 1, 2 };
        expect(call(cmd_find, 0, &fd), RAIDA_STATUS_FIND_MIXED, mixed, 2, "stress find");
        buf_free(&gt);
        buf_free(&fd);
    }
    return NULL;
}

static void group_stress(void)
{
    host_init(RAIDA_NO, COIN_ID);
    concurrent_mode = 1;
    for (uint32_t sn = 0; sn < STRESS_ROUNDS + 1; sn++) {
        stock(1, sn);
        for (int t = 0; t < STRESS_THREADS; t++)
            stock(1, (uint32_t)(t + 1) * 1024 * 10 + sn);
    }
    pthread_t threads[STRESS_THREADS];
    for (int t = 0; t < STRESS_THREADS; t++)
        pthread_create(&threads[t], NULL, stress_worker, (void *)(intptr_t)t);
    for (int t = 0; t < STRESS_THREADS; t++)
        pthread_join(threads[t], NULL);
    concurrent_mode = 0;
    CHECK_INT(host_locked_pages(), 0);
}

/* ---- the ticket pool ---- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The pool is held by coins, not by requests: a coin sits on at most four live
 * tickets and a newer ticket takes it from the oldest, so the owner of one coin cannot fill
 * the pool (the legacy module answered 42 to everyone after 512 get_tickets for one coin).
 * A rejected request takes nothing. The 42 path needs the pool's MAX_COINS_HELD coins held;
 * tests/commands.rs shows it on a small pool. */
#define ONE_COIN_TICKETS 600
static void group_ticket_pool(void)
{
    host_init(RAIDA_NO, COIN_ID);
    stock(1, 1);
    stock(1, 2);
    buf_t one = { 0 }, rejected = { 0 }, none = { 0 }, other = { 0 };
    gt_record(&one, 1, 1, 1);
    static uint32_t ids[ONE_COIN_TICKETS], sorted[ONE_COIN_TICKETS];
    for (int i = 0; i < ONE_COIN_TICKETS; i++)
        ids[i] = all_pass_ticket(0, &one, "one coin, again and again");

    const struct { int8_t den; uint32_t sn; } bad[] = { { 1, 300 * 1024 }, { 7, 1 }, { 1, 1024000 } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gt_record(&rejected, 1, 1, 1);
        gt_record(&rejected, 1, 2, 1);
        gt_record(&rejected, bad[i].den, bad[i].sn, 1);
        expect_status(call(cmd_get_ticket, 0, &rejected), RAIDA_STATUS_INVALID_SN_OR_DENOMINATION,
                      "rejected request");
        buf_free(&rejected);
    }
    gt_record(&none, 1, 1, 0);
    expect_status(call(cmd_get_ticket, 0, &none), RAIDA_STATUS_ALL_FAIL, "none pass");

    /* Another wallet still gets tickets, legacy and modern. */
    gt_record(&other, 1, 2, 1);
    uint32_t theirs = all_pass_ticket(0, &other, "another coin after 600 tickets for one");
    CHECK(all_pass_ticket(4, &other, "another coin, modern") != 0, "modern ticket");

    /* Every id is non-zero and distinct; only the newest four still list the coin. */
    memcpy(sorted, ids, sizeof ids);
    qsort(sorted, ONE_COIN_TICKETS, sizeof sorted[0], cmp_u32);
    int distinct = sorted[0] != 0;
    for (int i = 1; i < ONE_COIN_TICKETS; i++)
        distinct &= sorted[i] != sorted[i - 1];
    CHECK(distinct, "ticket ids are not all distinct and non-zero");
    const unsigned char coin[] = { 1, 0, 0, 0, 1 }, their_coin[] = { 1, 0, 0, 0, 2 };
    int claimed = 0, gone = 0;
    for (int i = 0; i < ONE_COIN_TICKETS; i++) {
        rq_result_t r = claim(0, 11, ids[i]);
        claimed += r.status == RAIDA_STATUS_SUCCESS && r.output_size == 5 &&
                   memcmp(r.output, coin, 5) == 0 && i >= ONE_COIN_TICKETS - 4;
        gone += r.status == RAIDA_STATUS_NO_TICKET_FOUND && r.output_size == 0 &&
                i < ONE_COIN_TICKETS - 4;
        rq_result_free(&r);
    }
    CHECK_INT(claimed, 4);
    CHECK_INT(gone, ONE_COIN_TICKETS - 4);
    rq_result_t r = claim(0, 11, theirs);
    CHECK(r.status == RAIDA_STATUS_SUCCESS && r.output_size == 5 &&
              memcmp(r.output, their_coin, 5) == 0,
          "the other wallet's ticket: status %d, %d bytes", r.status, r.output_size);
    rq_result_free(&r);
    buf_free(&one);
    buf_free(&none);
    buf_free(&other);
}

int main(void)
{
    run_group("contract", group_contract);
    run_group("get_ticket", group_get_ticket);
    run_group("validate_ticket", group_validate_ticket);
    run_group("find", group_find);
    run_group("locking", group_locking);
    run_group("ticket_pool", group_ticket_pool);
    run_group("concurrent_claims", group_concurrent_claims);
    run_group("stress", group_stress);
    return check_summary();
}
