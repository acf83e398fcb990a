/*
 * test_fix.c: cmd_fix and send_validate_ticket_job through the C ABI, against scripted
 * loopback peers (fake_peer.h, each served by a thread of this test), inside the host
 * harness (host.h) that plays the legacy server.
 *
 * Each group runs in a forked child (check.h) and sets the peer client's settings in the
 * environment before its first call into the library, which reads them once per process:
 * RAIDA_HEALING_HEDGE_MS=100 and a long RAIDA_HEALING_PEER_DEADLINE_MS (a safety net),
 * except the group about the deadline, and the job group, which has no hedge at all. No
 * check depends on how fast the machine is: where a peer may or may not have been hedged
 * (it answered, but perhaps later than the 100 ms), the check follows what the library
 * logged about that peer instead of assuming it answered in time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "raida_healing.h"
#include "check.h"
#include "host.h"
#include "request.h"
#include "fake_peer.h"

#define ME 7
#define COIN_ID 6
#define MFS 77
#define OLD_MFS 3
#define MAX_LIST 64

/* A fake peer (fake_peer.h) that this server knows at its address. */
static void peer_start(struct fake_peer *p, int raida, enum fake_peer_script script,
                       const unsigned char *list, size_t ncoins)
{
    fake_peer_start(p, raida, script, list, ncoins);
    host_set_peer(raida, "127.0.0.1", p->port);
}

static uint32_t ticket_of(int raida)
{
    return 0x50000000u + (uint32_t)raida;
}

/* Checks a request a peer received: the exact 55-byte legacy frame. */
static void check_frame(const unsigned char *request, int peer, int me)
{
    unsigned char header[32] = { 1, 0, (unsigned char)peer, 0, 2, 50, 0, COIN_ID, 1 };
    header[23] = 23;
    CHECK_BYTES(request, 32, header, 32);
    unsigned char crc[4];
    rq_put_u32be(crc, rq_crc32(request + 32, 12));
    CHECK_BYTES(request + 44, 4, crc, 4);
    CHECK_INT(request[48], me);
    CHECK_INT(rq_get_u32be(request + 49), ticket_of(peer));
    CHECK(request[53] == 0x3e && request[54] == 0x3e, "trailer of request to %d", peer);
}

/* Checks request `q` that fake peer `p` received (there must be one). */
static void check_request(struct fake_peer *p, int q, int me)
{
    unsigned char request[FAKE_PEER_REQUEST_BYTES];
    CHECK(fake_peer_request(p, q, request) == 0, "peer %d has no request %d", p->raida, q);
    check_frame(request, p->raida, me);
}

static void hex16(const char *hex, unsigned char out[16])
{
    for (int i = 0; i < 16; i++) {
        unsigned v = 0;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
}

struct coin {
    int8_t den;
    uint32_t sn;
};

/* payload = coins, PG 00..0f, 25 tickets */
static size_t fix_payload(unsigned char *out, const struct coin *coins, int n,
                          const uint32_t tickets[25])
{
    size_t at = 0;
    for (int i = 0; i < n; i++)
        at += rq_put_coin(out + at, coins[i].den, coins[i].sn);
    for (int i = 0; i < 16; i++)
        out[at++] = (unsigned char)i;
    for (int i = 0; i < 25; i++)
        at += rq_put_u32be(out + at, tickets[i]);
    return at;
}

static size_t wire(unsigned char *out, const struct coin *coins, int n)
{
    size_t at = 0;
    for (int i = 0; i < n; i++)
        at += rq_put_coin(out + at, coins[i].den, coins[i].sn);
    return at;
}

static void settings(const char *deadline_ms)
{
    setenv("RAIDA_HEALING_PEER_DEADLINE_MS", deadline_ms, 1);
    setenv("RAIDA_HEALING_HEDGE_MS", "100", 1);
    setenv("RAIDA_HEALING_HEDGE_START_MS", "100", 1);
}

/* No hedge: the hedge floor (the least silence before any second connection, with or
 * without history) beyond the deadline, so every call opens exactly one connection per
 * peer however long the peer takes to answer. */
static void settings_without_hedge(const char *deadline_ms)
{
    setenv("RAIDA_HEALING_PEER_DEADLINE_MS", deadline_ms, 1);
    setenv("RAIDA_HEALING_HEDGE_MS", "3600000", 1);
    setenv("RAIDA_HEALING_HEDGE_START_MS", "3600000", 1);
}

static const unsigned char OLD_AN[16] = { 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                          0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11 };

static void check_record(struct coin c, const unsigned char *an, uint8_t mfs)
{
    unsigned char got[16];
    uint8_t got_mfs = 0;
    CHECK_INT(host_get(c.den, c.sn, got, &got_mfs), 0);
    CHECK_BYTES(got, 16, an, 16);
    CHECK_INT(got_mfs, mfs);
}

/* ---- groups ---- */

/* 24 peers: 13 honest, one slow to accept, no ticket, a liar, stalled, down, and six
 * broken answers. Every coin ends at >= 14 or <= 12 votes, so the fix is decided once
 * every peer but the stalled one has answered, and each of them is needed for that. */
/* The health figures the 24-peer fix left: bad arguments are refused, and each kind of
 * peer shows up as what it did. */
static void check_health(const struct fake_peer *slow, const struct fake_peer *honest,
                         const struct fake_peer *declined, uint16_t down_port, int down_raida)
{
    size_t count = 99;
    raida_healing_peer_health_t h[64];
    CHECK_INT(raida_healing_peer_health(h, 64, NULL), RAIDA_HEALING_E_ARGUMENT);
    CHECK_INT(raida_healing_peer_health(NULL, 1, &count), RAIDA_HEALING_E_ARGUMENT);
    CHECK_INT((int)count, 99);
    CHECK_INT(raida_healing_peer_health(NULL, 0, &count), RAIDA_HEALING_OK);
    /* 25 RAIDAs minus this server and the one without a ticket */
    CHECK_INT((int)count, 23);
    memset(h, 0xab, sizeof h);
    size_t two = 0;
    CHECK_INT(raida_healing_peer_health(h, 2, &two), RAIDA_HEALING_OK);
    CHECK_INT((int)two, 23);
    CHECK_INT(h[2].raida, 0xab); /* nothing written past capacity */
    CHECK_INT(raida_healing_peer_health(h, 64, &count), RAIDA_HEALING_OK);
    CHECK_INT((int)count, 23);
    int found = 0;
    for (size_t i = 0; i < count; i++) {
        const raida_healing_peer_health_t *p = &h[i];
        CHECK(i == 0 || h[i - 1].raida <= p->raida, "entries in RAIDA order");
        CHECK(p->ejected == 0 && p->next_probe_ms == 0, "peer %d not ejected after one fix",
              p->raida);
        CHECK(p->ipv4[0] == 127 && p->ipv4[1] == 0 && p->ipv4[2] == 0 && p->ipv4[3] == 1,
              "peer %d address", p->raida);
        if (p->raida == slow->raida && p->port == slow->port) {
            /* stranded first connection, answered through its hedge */
            CHECK(p->answers == 1 && p->hedges == 1 && p->failures == 0, "slow peer figures");
            CHECK(p->typical_us > 0 && p->high_us >= p->typical_us, "slow peer latency");
            found++;
        } else if (p->raida == honest->raida && p->port == honest->port) {
            /* It answered at once, but a loaded machine may have kept that answer past
             * the 100 ms hedge; its hedge count is what the fix's log said of it. */
            char line[160];
            snprintf(line, sizeof line, "fix: peer %d at 127.0.0.1:%u: voted (%zu coins listed)",
                     honest->raida, honest->port, honest->ncoins);
            CHECK_INT(host_log_count(line), 1);
            strcat(line, "; hedged");
            const int hedged = host_log_count(line);
            CHECK(p->answers == 1 && p->hedges == (uint64_t)hedged && p->failures == 0 &&
                      p->timeouts == 0,
                  "honest peer figures");
            CHECK(p->typical_us > 0 && p->high_us + 2 >= 3 * p->typical_us &&
                      p->high_us <= 3 * p->typical_us + 2,
                  "one answer: high = 3x typical");
            found++;
        } else if (p->raida == declined->raida && p->port == declined->port) {
            CHECK(p->answers == 1 && p->failures == 0, "a 43 is an answer, not a failure");
            found++;
        } else if (p->raida == down_raida && p->port == down_port) {
            CHECK(p->answers == 0 && p->failures == 1 && p->typical_us == 0, "down peer figures");
            /* one refusal: counted, not yet ejected (that takes 3 in a row by default) */
            CHECK(p->consecutive_failures == 1 && p->ejected == 0 && p->ejections == 0 &&
                      p->probes == 0 && p->next_probe_ms == 0,
                  "down peer ejection figures");
            found++;
        }
    }
    CHECK_INT(found, 4);
}

static void twenty_four_peers(void)
{
    settings("20000");
    host_init(ME, COIN_ID);
    host_set_mfs(MFS);
    const struct coin c[10] = { { 1, 10 },   { 1, 11 }, { 1, 12 }, { 2, 3073 },       { 2, 3074 },
                                { 1, 5127 }, { -8, 1023999 },      { 1, 10 }, { 6, 0 }, { 0, 77 } };
    for (int i = 0; i < 10; i++)
        host_put(c[i].den, c[i].sn, OLD_AN, OLD_MFS);
    int idx[24], k = 0;
    for (int i = 0; i < 25; i++)
        if (i != ME)
            idx[k++] = i;

    static struct fake_peer honest[13], slow, liar, stalled, broken[6];
    unsigned char list[MAX_LIST * RQ_COIN_BYTES];
    for (int h = 0; h < 13; h++) {
        struct coin mine[8] = { c[0], c[5], c[6], c[2] };
        int n = 4;
        if (h < 10)
            mine[n++] = c[1];
        if (h < 11)
            mine[n++] = c[4];
        if (h < 12) {
            mine[n++] = c[8];
            mine[n++] = c[9];
        }
        peer_start(&honest[h], idx[h], FAKE_PEER_HONEST, list, wire(list, mine, n) / RQ_COIN_BYTES);
    }
    const struct coin slow_list[4] = { c[0], c[5], c[6], c[9] };
    peer_start(&slow, idx[16], FAKE_PEER_SLOW_ACCEPT, list, wire(list, slow_list, 4) / RQ_COIN_BYTES);
    uint16_t no_ticket_port, down_port, self_port;
    int no_ticket_fd = fake_peer_listen(&no_ticket_port, 64);
    host_set_peer(idx[14], "127.0.0.1", no_ticket_port);
    struct coin liar_list[40];
    for (int i = 0; i < 20; i++) {
        liar_list[i] = c[1];
        liar_list[20 + i] = c[8];
    }
    peer_start(&liar, idx[15], FAKE_PEER_HONEST, list, wire(list, liar_list, 40) / RQ_COIN_BYTES);
    peer_start(&stalled, idx[13], FAKE_PEER_STALLED, list, wire(list, c, 10) / RQ_COIN_BYTES);
    int down_fd = fake_peer_listen(&down_port, -1); /* bound, never listening: refused */
    host_set_peer(idx[17], "127.0.0.1", down_port);
    const enum fake_peer_script kinds[6] = { FAKE_PEER_LYING_SIZE, FAKE_PEER_TRUNCATED, FAKE_PEER_BAD_TRAILER, FAKE_PEER_WRONG_ECHO, FAKE_PEER_WRONG_INDEX,
                                   FAKE_PEER_DECLINED };
    for (int b = 0; b < 6; b++)
        peer_start(&broken[b], idx[18 + b], kinds[b], list, wire(list, c, 10) / RQ_COIN_BYTES);
    int self_fd = fake_peer_listen(&self_port, 64);
    host_set_peer(ME, "127.0.0.1", self_port);

    uint32_t tickets[25];
    for (int i = 0; i < 25; i++)
        tickets[i] = i == idx[14] ? 0 : ticket_of(i);
    tickets[ME] = 0xdeadbeefu;
    unsigned char payload[10 * 5 + 116];
    size_t n = fix_payload(payload, c, 10, tickets);
    rq_result_t r = rq_call(cmd_fix, 0, COIN_ID, payload, n);

    /* fixed: c0 c2 c5 c6 c7 | c8 c9 */
    CHECK_INT(r.status, RAIDA_STATUS_MIXED);
    const unsigned char bits[2] = { 0xe5, 0x03 };
    CHECK_BYTES(r.output, r.output_size, bits, 2);
    rq_result_free(&r);
    static const struct {
        int i;
        const char *an;
    } fixed[] = { { 0, "22cd62352042936ea13b831139ebffeb" }, { 2, "48c85e02f31aa0c6f89e37012baf43aa" },
                  { 5, "66cccb2d896e35605a939d38f47c5d71" }, { 6, "bda609ea70bbb7f5e0f718dbb80c17f4" },
                  { 8, "1ff61037c28b0e5e6f4730ca4a99a80a" }, { 9, "8162b7dd5d1a9388c5f3064dd5ca0d5e" } };
    for (size_t f = 0; f < sizeof fixed / sizeof fixed[0]; f++) {
        unsigned char an[16];
        hex16(fixed[f].an, an);
        check_record(c[fixed[f].i], an, MFS);
        CHECK_INT(host_page_dirty(c[fixed[f].i].den, c[fixed[f].i].sn), 1);
        /* once per serial number, though c0 is listed twice */
        CHECK_INT(host_bitmap_used_calls(c[fixed[f].i].den, c[fixed[f].i].sn), 1);
    }
    const int not_fixed[3] = { 1, 3, 4 };
    for (int f = 0; f < 3; f++) {
        const int i = not_fixed[f];
        check_record(c[i], OLD_AN, OLD_MFS);
        CHECK_INT(host_bitmap_used_calls(c[i].den, c[i].sn), 0);
    }
    CHECK_INT(host_page_dirty(2, 3073), 0);
    CHECK_INT(host_locked_pages(), 0);
    CHECK_INT(host_misuse_count(), 0);

    /* the summary line and the per-peer reasons */
    CHECK_INT(host_log_count("fix: 10 coins asked, 7 fixed, 3 not fixed; peers: 15 voted, "
                             "1 no ticket, 0 no address, 1 refused, 1 declined, 0 timed out, "
                             "5 invalid answer, 1 unneeded, 0 local error, 0 no connection slot; "),
              1);
    /* ... and names the failed peers: down and the five broken answers */
    CHECK_INT(host_log_count(" ms; failed: 18 19 20 21 22 23; hedged: "), 1);
    CHECK_INT(host_log_count("invalid answer: body size 20487 is not 2 + 5k with k <= 4096"), 1);
    CHECK_INT(host_log_count("invalid answer: connection closed after 7 of 17 body bytes"), 1);
    CHECK_INT(host_log_count("invalid answer: body ends 3E 3F, not 3E 3E"), 1);
    CHECK_INT(host_log_count("invalid answer: challenge not echoed"), 1);
    CHECK_INT(host_log_count("invalid answer: answer is from RAIDA 99, not 23"), 1);
    CHECK_INT(host_log_count("declined: status 43"), 1);
    CHECK_INT(host_log_count("refused: connection refused"), 1);
    CHECK_INT(host_log_count("voted (40 coins listed)"), 1);
    char line[160];
    snprintf(line, sizeof line, "fix: peer %d at 127.0.0.1:%u: unneeded (decided without it); hedged",
             stalled.raida, stalled.port);
    CHECK_INT(host_log_count(line), 1);
    snprintf(line, sizeof line, "fix: peer %d at 127.0.0.1:%u: voted (4 coins listed); hedged",
             slow.raida, slow.port);
    CHECK_INT(host_log_count(line), 1);

    /* never contacted: this server, and the peer without a ticket */
    CHECK(!fake_peer_contacted(self_fd), "this server was asked");
    CHECK(!fake_peer_contacted(no_ticket_fd), "the peer without a ticket was asked");
    /* every request the exact frame, each challenge fresh */
    struct fake_peer *asked[22];
    int na = 0;
    for (int h = 0; h < 13; h++)
        asked[na++] = &honest[h];
    asked[na++] = &slow;
    asked[na++] = &liar;
    asked[na++] = &stalled;
    for (int b = 0; b < 6; b++)
        asked[na++] = &broken[b];
    unsigned char seen[64][12];
    int nseen = 0;
    for (int a = 0; a < na; a++) {
        unsigned char request[FAKE_PEER_REQUEST_BYTES];
        for (int q = 0; fake_peer_request(asked[a], q, request) == 0; q++) {
            check_frame(request, asked[a]->raida, ME);
            for (int s = 0; s < nseen; s++)
                CHECK(memcmp(seen[s], request + 32, 12) != 0, "challenge reused");
            if (nseen < 64)
                memcpy(seen[nseen++], request + 32, 12);
        }
    }
    CHECK_INT(fake_peer_requests(&slow), 2);
    /* the stalled peer's connections were closed, and nothing of the fix runs on */
    CHECK(fake_peer_held_all_closed(&stalled), "a connection to the stalled peer is still open");
    CHECK_INT((int)raida_healing_peer_connections(), 0);
    check_health(&slow, &honest[0], &broken[5], down_port, idx[17]);

    for (int a = 0; a < na; a++)
        fake_peer_stop(asked[a]);
    close(no_ticket_fd);
    close(down_fd);
    close(self_fd);
}

/* A fix of one coin by this server, RAIDA `me`, with the only tickets held by 13 peers
 * from RAIDA `first` on (skipping `me`): twelve honest ones and `last`, each listing the
 * coin. */
static rq_result_t fix_one_coin(int me, struct coin x, int encryption_type, struct fake_peer peers[13],
                                int first, enum fake_peer_script last)
{
    host_init(me, COIN_ID);
    host_set_mfs(MFS);
    host_put(x.den, x.sn, OLD_AN, OLD_MFS);
    unsigned char list[5];
    wire(list, &x, 1);
    uint32_t tickets[25] = { 0 };
    for (int i = 0, raida = first; i < 13; i++, raida++) {
        raida += raida == me;
        peer_start(&peers[i], raida, i < 12 ? FAKE_PEER_HONEST : last, list, 1);
        tickets[raida] = ticket_of(raida);
    }
    unsigned char payload[5 + 116];
    size_t n = fix_payload(payload, &x, 1, tickets);
    return rq_call(cmd_fix, encryption_type, COIN_ID, payload, n);
}

/* The deadline ends a fix that only a silent peer could still decide: 12 listings + this
 * server = 13. */
static void deadline(void)
{
    settings("300");
    const struct coin x = { 1, 1 };
    static struct fake_peer peers[13];
    rq_result_t r = fix_one_coin(ME, x, 0, peers, 0, FAKE_PEER_STALLED);
    CHECK_INT(r.status, RAIDA_STATUS_ALL_FAIL);
    CHECK_INT(r.output_size, 0);
    CHECK(r.output == NULL, "242 has no body");
    rq_result_free(&r);
    check_record(x, OLD_AN, OLD_MFS);
    CHECK_INT(host_page_dirty(x.den, x.sn), 0);
    CHECK_INT(host_log_count("fix: 1 coins asked, 0 fixed, 1 not fixed;"), 1);
    char line[160];
    /* (Hedged too, after 100 ms of its 300, unless the machine kept the fix from running
     * that long; hedging is checked in twenty_four_peers.) */
    snprintf(line, sizeof line, "fix: peer %d at 127.0.0.1:%u: timed out", peers[12].raida,
             peers[12].port);
    CHECK_INT(host_log_count(line), 1);
    CHECK(fake_peer_held_all_closed(&peers[12]), "a connection to the stalled peer is still open");
    CHECK_INT((int)raida_healing_peer_connections(), 0);
    for (int i = 0; i < 13; i++)
        fake_peer_stop(&peers[i]);
}

/* Type 4: modern framing, and SHA-256 for the new AN (the docs/wire-protocol.md vector: raida 3,
 * den 1, sn 5000, PG 00..0f). */
static void type_4(void)
{
    settings("20000");
    const struct coin x = { 1, 5000 };
    static struct fake_peer peers[13];
    rq_result_t r = fix_one_coin(3, x, 4, peers, 10, FAKE_PEER_HONEST);
    CHECK_INT(r.status, RAIDA_STATUS_ALL_PASS);
    CHECK_INT(r.output_size, 0);
    rq_result_free(&r);
    unsigned char an[16];
    hex16("c71fea3f4db05ade41d7717dbe347aa8", an);
    check_record(x, an, MFS);
    CHECK_INT(host_page_dirty(x.den, x.sn), 1);
    CHECK_INT(host_bitmap_used_calls(x.den, x.sn), 1);
    for (int i = 0; i < 13; i++) {
        CHECK(fake_peer_requests(&peers[i]) >= 1, "peer %d was not asked", peers[i].raida);
        if (fake_peer_requests(&peers[i]) >= 1)
            check_request(&peers[i], 0, 3);
        fake_peer_stop(&peers[i]);
    }
}

/* A coin whose page does not exist: 40 before any peer is contacted. */
static void unknown_coin(void)
{
    settings("20000");
    host_init(ME, COIN_ID);
    const struct coin coins[2] = { { 1, 1 }, { 1, 2048 } };
    host_put(1, 1, OLD_AN, OLD_MFS);
    int fds[25];
    uint32_t tickets[25];
    for (int i = 0; i < 25; i++) {
        uint16_t port;
        fds[i] = fake_peer_listen(&port, 64);
        host_set_peer(i, "127.0.0.1", port);
        tickets[i] = ticket_of(i);
    }
    unsigned char payload[10 + 116];
    size_t n = fix_payload(payload, coins, 2, tickets);
    rq_result_t r = rq_call(cmd_fix, 0, COIN_ID, payload, n);
    CHECK_INT(r.status, RAIDA_STATUS_INVALID_SN_OR_DENOMINATION);
    CHECK_INT(r.output_size, 0);
    rq_result_free(&r);
    for (int i = 0; i < 25; i++) {
        CHECK(!fake_peer_contacted(fds[i]), "peer %d was contacted", i);
        close(fds[i]);
    }
    check_record(coins[0], OLD_AN, OLD_MFS);
    CHECK_INT(host_locked_pages(), 0);
}

struct job_thread {
    validate_ticket_arg_t arg;
    pthread_t thread;
};

static void *run_job(void *p)
{
    struct job_thread *j = p;
    return send_validate_ticket_job(&j->arg);
}

/* send_validate_ticket_job: the same strict client for one peer. Without hedges, so each
 * call is exactly one connection and one request to its peer: the request counts below
 * count calls. (The job's hedge is tested in tests/fix_peers.rs,
 * one_peer_job_is_as_strict_and_hedged.) */
static void job(void)
{
    settings_without_hedge("20000");
    host_init(ME, COIN_ID);
    const struct coin listed[4] = { { 1, 1 }, { 1, 1 }, { 2, 9 }, { 1, 1 } };
    unsigned char list[20];
    wire(list, listed, 4);
    static struct fake_peer honest, echo, stalled_self;
    peer_start(&honest, 3, FAKE_PEER_HONEST, list, 4);
    peer_start(&echo, 4, FAKE_PEER_WRONG_ECHO, list, 4);
    peer_start(&stalled_self, ME, FAKE_PEER_STALLED, list, 4); /* this server's own address */
    conn_info_t ci;
    memset(&ci, 0, sizeof ci);
    ci.coin_id = COIN_ID;

    validate_ticket_arg_t arg = { .raida_idx = 3, .ticket = ticket_of(3), .ci = &ci,
                                  .rv_coins = (coin_t *)&arg, .rv_num_coins = 99 };
    CHECK(send_validate_ticket_job(&arg) == NULL, "returns NULL");
    CHECK_INT(arg.rv_num_coins, 2); /* each coin once */
    CHECK(arg.rv_coins != NULL, "coins");
    if (arg.rv_coins && arg.rv_num_coins == 2) {
        CHECK_INT(arg.rv_coins[0].denomination, 1);
        CHECK_INT(arg.rv_coins[0].sn, 1);
        CHECK_INT(arg.rv_coins[1].denomination, 2);
        CHECK_INT(arg.rv_coins[1].sn, 9);
    }
    free(arg.rv_coins);
    CHECK_INT(fake_peer_requests(&honest), 1);
    check_request(&honest, 0, ME);

    /* asked again, a legacy peer answers 44: no coins */
    arg = (validate_ticket_arg_t){ .raida_idx = 3, .ticket = ticket_of(3), .ci = &ci };
    CHECK(send_validate_ticket_job(&arg) == NULL, "returns NULL");
    CHECK(arg.rv_coins == NULL && arg.rv_num_coins == 0, "no coins after 44");
    CHECK_INT(host_log_count("send_validate_ticket_job: peer 3 at 127.0.0.1:"), 2);
    CHECK_INT(host_log_count("declined: status 44"), 1);

    arg = (validate_ticket_arg_t){ .raida_idx = 4, .ticket = ticket_of(4), .ci = &ci };
    send_validate_ticket_job(&arg);
    CHECK(arg.rv_coins == NULL && arg.rv_num_coins == 0, "no coins from a wrong echo");
    CHECK_INT(host_log_count("invalid answer: challenge not echoed"), 1);

    /* never this server, never ticket 0, never an index outside 0..24, never without ci */
    const validate_ticket_arg_t refused[] = {
        { .raida_idx = ME, .ticket = ticket_of(ME), .ci = &ci },
        { .raida_idx = 3, .ticket = 0, .ci = &ci },
        { .raida_idx = 25, .ticket = 1, .ci = &ci },
        { .raida_idx = -1, .ticket = 1, .ci = &ci },
        { .raida_idx = 3, .ticket = ticket_of(3), .ci = NULL },
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        arg = refused[i];
        arg.rv_coins = (coin_t *)&arg;
        arg.rv_num_coins = 7;
        CHECK(send_validate_ticket_job(&arg) == NULL, "returns NULL");
        CHECK(arg.rv_coins == NULL && arg.rv_num_coins == 0, "refused case %zu", i);
    }
    CHECK_INT(fake_peer_requests(&honest), 2);
    check_request(&honest, 1, ME);
    CHECK_INT(fake_peer_requests(&echo), 1);
    check_request(&echo, 0, ME);
    CHECK_INT(fake_peer_requests(&stalled_self), 0);
    CHECK_INT(host_log_count("no peer asked"), 5);
    CHECK(send_validate_ticket_job(NULL) == NULL, "NULL argument");

    /* as the legacy fix ran it: one thread per peer, all at once */
    static struct fake_peer many[13];
    static struct job_thread jobs[13];
    for (int i = 0; i < 13; i++) {
        int raida = 10 + i;
        peer_start(&many[i], raida, FAKE_PEER_HONEST, list, 4);
        jobs[i].arg = (validate_ticket_arg_t){ .raida_idx = (int8_t)raida,
                                               .ticket = ticket_of(raida), .ci = &ci };
        pthread_create(&jobs[i].thread, NULL, run_job, &jobs[i]);
    }
    for (int i = 0; i < 13; i++) {
        void *ret = &ret;
        pthread_join(jobs[i].thread, &ret);
        CHECK(ret == NULL, "job %d returned non-NULL", i);
        CHECK_INT(jobs[i].arg.rv_num_coins, 2);
        free(jobs[i].arg.rv_coins);
        fake_peer_stop(&many[i]);
    }
    CHECK_INT((int)raida_healing_peer_connections(), 0);
    CHECK_INT(host_log_count("hedged"), 0); /* the settings did what they say */
    fake_peer_stop(&honest);
    fake_peer_stop(&echo);
    fake_peer_stop(&stalled_self);
}

/* A client whose fixes keep naming tickets the peers do not know (24 peers answer 43)
 * is answered 160 at once once it has had its 5 strikes, with one line saying so; the
 * address comes from ci->ip, as the server fills it. Another client is not affected. */
static rq_result_t fix_from(const char *ip, const unsigned char *payload, size_t n)
{
    rq_body_t body = rq_body_for(0, payload, n);
    conn_info_t ci;
    rq_ci_fill(&ci, &body, 0, COIN_ID);
    snprintf(ci.ip, sizeof ci.ip, "%s", ip);
    cmd_fix(&ci);
    rq_body_free(&body);
    return (rq_result_t){ .status = ci.command_status, .output_size = ci.output_size,
                          .output = ci.output };
}

static void refused_client(void)
{
    settings("20000");
    const struct coin x = { 1, 7 };
    host_init(ME, COIN_ID);
    host_put(x.den, x.sn, OLD_AN, OLD_MFS);
    unsigned char list[5];
    wire(list, &x, 1);
    static struct fake_peer peers[24];
    uint32_t tickets[25] = { 0 };
    for (int i = 0, raida = 0; i < 24; i++, raida++) {
        raida += raida == ME;
        peer_start(&peers[i], raida, FAKE_PEER_DECLINED, list, 1);
        tickets[raida] = ticket_of(raida);
    }
    unsigned char payload[5 + 116];
    size_t n = fix_payload(payload, &x, 1, tickets);
    for (int i = 0; i < 6; i++) {
        rq_result_t r = fix_from("192.0.2.9", payload, n);
        CHECK_INT(r.status, RAIDA_STATUS_ALL_FAIL);
        rq_result_free(&r);
    }
    CHECK_INT(host_log_count("fix: client 192.0.2.9 sent more than 5 fixes whose tickets were "
                             "unknown at the peers"), 1);
    /* Refused at admission, before any peer is asked (how many requests a peer counts is
     * not asserted: a fix decided by 12 refusals closes the connections it no longer
     * needs, and a peer may or may not have read the request by then). */
    rq_result_t r = fix_from("192.0.2.9", payload, n);
    CHECK_INT(r.status, RAIDA_STATUS_REQUEST_RATE);
    CHECK_INT(r.output_size, 0);
    rq_result_free(&r);
    CHECK_INT(host_log_count("fix: refused (160) from 192.0.2.9"), 1);
    /* Four more refusals within the minute. The kind "fix_refused" has written two lines
     * (the client's cut-off and its first refusal) of its 3 a minute: one more line, three
     * held back, and the metrics count the three. */
    for (int i = 0; i < 4; i++) {
        r = fix_from("192.0.2.9", payload, n);
        CHECK_INT(r.status, RAIDA_STATUS_REQUEST_RATE);
        rq_result_free(&r);
    }
    CHECK_INT(host_log_count("fix: refused (160) from 192.0.2.9"), 2);
    static char metrics[1 << 17];
    size_t length = raida_healing_metrics_text(metrics, sizeof metrics);
    CHECK(length > 0 && length < sizeof metrics, "metrics text of %zu bytes", length);
    CHECK(strstr(metrics, "\nraida_healing_log_lines_suppressed_total{raida=\"7\",kind=\"fix_refused\"} 3\n")
          != NULL, "no suppressed fix_refused count of 3 in:\n%s", metrics);
    /* Another client is not refused: its fix asks the peers, which decline (242). */
    r = fix_from("192.0.2.10", payload, n);
    CHECK_INT(r.status, RAIDA_STATUS_ALL_FAIL);
    rq_result_free(&r);
    check_record(x, OLD_AN, OLD_MFS);
    for (int i = 0; i < 24; i++)
        fake_peer_stop(&peers[i]);
}

int main(void)
{
    run_group("twenty_four_peers", twenty_four_peers);
    run_group("deadline", deadline);
    run_group("type_4", type_4);
    run_group("unknown_coin", unknown_coin);
    run_group("job", job);
    run_group("refused_client", refused_client);
    return check_summary();
}
