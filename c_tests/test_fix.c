/*
 * test_fix.c: cmd_fix and send_validate_ticket_job through the C ABI, against scripted
 * loopback peers run by threads of this test, inside the host harness (host.h) that plays
 * the legacy server.
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

#define ME 7
#define COIN_ID 6
#define MFS 77
#define OLD_MFS 3
#define MAX_HELD 8
#define MAX_REQUESTS 8
#define MAX_LIST 64

/* ---- scripted peers ---- */

enum script {
    HONEST,         /* 250 + its list to the first request, 44 to later ones */
    SLOW_ACCEPT,    /* leaves the first connection unanswered until a second arrives */
    STALLED,        /* reads the request, never answers */
    LYING_SIZE,     /* announces 2 + 5 * 4097 bytes */
    TRUNCATED,      /* announces 17 body bytes, sends 7, closes */
    BAD_TRAILER,    /* body ends 3E 3F */
    WRONG_ECHO,     /* one challenge byte flipped */
    WRONG_INDEX,    /* byte 0 says RAIDA 99 */
    DECLINED,       /* status 43, no body */
};

struct peer {
    int raida;
    enum script script;
    int listen_fd;
    uint16_t port;
    int wake[2];
    pthread_t thread;
    unsigned char list[MAX_LIST * RQ_COIN_BYTES];
    size_t list_len; /* bytes */
    pthread_mutex_t mtx;
    int requests;
    unsigned char request[MAX_REQUESTS][55];
    int answered;
    int held_fd; /* SLOW_ACCEPT: the first connection, -1 when none */
    unsigned char held_request[55];
    int stalled_fds[MAX_HELD];
    int nstalled;
};

static int listen_loopback(uint16_t *port, int backlog)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sin;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        (backlog >= 0 && listen(fd, backlog) != 0) ||
        getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
        perror("listen_loopback");
        exit(2);
    }
    *port = ntohs(sin.sin_port);
    return fd;
}

static ssize_t read_full(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static void send_all(int fd, const unsigned char *buf, size_t n)
{
    size_t sent = 0;
    while (sent < n) {
        ssize_t w = send(fd, buf + sent, n - sent, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        sent += (size_t)w;
    }
}

/* A legacy response: 32-byte header, then body (trailer included). */
static void reply(int fd, int raida, int status, const unsigned char *challenge,
                  const unsigned char *body, size_t body_len, size_t announced, size_t send_len)
{
    unsigned char out[32 + MAX_LIST * RQ_COIN_BYTES + 2];
    memset(out, 0, 32);
    out[0] = (unsigned char)raida;
    out[2] = (unsigned char)status;
    out[3] = 2;
    out[5] = 1;
    out[9] = (unsigned char)(announced >> 16);
    out[10] = (unsigned char)(announced >> 8);
    out[11] = (unsigned char)announced;
    memcpy(out + 16, challenge, 16);
    memcpy(out + 32, body, body_len);
    send_all(fd, out, 32 + (send_len < body_len ? send_len : body_len));
}

/* The body of a 250 answer listing this peer's coins. */
static size_t listing(const struct peer *p, unsigned char *body)
{
    memcpy(body, p->list, p->list_len);
    body[p->list_len] = 0x3e;
    body[p->list_len + 1] = 0x3e;
    return p->list_len + 2;
}

static void serve(struct peer *p, int fd, const unsigned char *request)
{
    unsigned char body[MAX_LIST * RQ_COIN_BYTES + 2];
    unsigned char challenge[16];
    memcpy(challenge, request + 32, 16);
    size_t n = listing(p, body);
    switch (p->script) {
    case HONEST: {
        pthread_mutex_lock(&p->mtx);
        int first = p->answered++ == 0;
        pthread_mutex_unlock(&p->mtx);
        if (first)
            reply(fd, p->raida, 250, challenge, body, n, n, n);
        else
            reply(fd, p->raida, 44, challenge, body, 0, 0, 0);
        close(fd);
        return;
    }
    case SLOW_ACCEPT: {
        pthread_mutex_lock(&p->mtx);
        if (p->held_fd < 0) {
            p->held_fd = fd;
            memcpy(p->held_request, request, 55);
            pthread_mutex_unlock(&p->mtx);
            return;
        }
        int first = p->held_fd;
        p->held_fd = -1;
        pthread_mutex_unlock(&p->mtx);
        reply(first, p->raida, 250, p->held_request + 32, body, n, n, n);
        close(first);
        reply(fd, p->raida, 44, challenge, body, 0, 0, 0);
        close(fd);
        return;
    }
    case STALLED:
        pthread_mutex_lock(&p->mtx);
        if (p->nstalled < MAX_HELD)
            p->stalled_fds[p->nstalled++] = fd;
        else
            close(fd);
        pthread_mutex_unlock(&p->mtx);
        return;
    case LYING_SIZE:
        reply(fd, p->raida, 250, challenge, body, n, 2 + 5 * 4097, n);
        break;
    case TRUNCATED:
        reply(fd, p->raida, 250, challenge, body, n < 17 ? n : 17, 17, 7);
        break;
    case BAD_TRAILER:
        body[n - 1] = 0x3f;
        reply(fd, p->raida, 250, challenge, body, n, n, n);
        break;
    case WRONG_ECHO:
        challenge[3] ^= 0x80;
        reply(fd, p->raida, 250, challenge, body, n, n, n);
        break;
    case WRONG_INDEX:
        reply(fd, 99, 250, challenge, body, n, n, n);
        break;
    case DECLINED:
        reply(fd, p->raida, 43, challenge, body, 0, 0, 0);
        break;
    }
    close(fd);
}

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    for (;;) {
        struct pollfd fds[2] = { { p->listen_fd, POLLIN, 0 }, { p->wake[0], POLLIN, 0 } };
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds[1].revents)
            break;
        int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        struct timeval safety = { 20, 0 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &safety, sizeof safety);
        unsigned char request[55];
        /* Only a validate_ticket request for this peer counts; anything else (a stray
         * connection from another process, a connection closed unused) is dropped. */
        if (read_full(fd, request, 55) != 55 || request[0] != 1 || request[2] != p->raida ||
            request[5] != 50) {
            close(fd);
            continue;
        }
        pthread_mutex_lock(&p->mtx);
        if (p->requests < MAX_REQUESTS)
            memcpy(p->request[p->requests], request, 55);
        p->requests++;
        pthread_mutex_unlock(&p->mtx);
        serve(p, fd, request);
    }
    return NULL;
}

static void peer_start(struct peer *p, int raida, enum script script, const unsigned char *list,
                       size_t ncoins)
{
    memset(p, 0, sizeof *p);
    p->raida = raida;
    p->script = script;
    p->held_fd = -1;
    memcpy(p->list, list, ncoins * RQ_COIN_BYTES);
    p->list_len = ncoins * RQ_COIN_BYTES;
    pthread_mutex_init(&p->mtx, NULL);
    p->listen_fd = listen_loopback(&p->port, 64);
    if (pipe2(p->wake, O_CLOEXEC) != 0) {
        perror("pipe2");
        exit(2);
    }
    if (pthread_create(&p->thread, NULL, peer_main, p) != 0) {
        perror("pthread_create");
        exit(2);
    }
    host_set_peer(raida, "127.0.0.1", p->port);
}

static void peer_stop(struct peer *p)
{
    if (write(p->wake[1], "x", 1) != 1)
        perror("wake");
    pthread_join(p->thread, NULL);
    close(p->wake[0]);
    close(p->wake[1]);
    close(p->listen_fd);
    if (p->held_fd >= 0)
        close(p->held_fd);
    for (int i = 0; i < p->nstalled; i++)
        close(p->stalled_fds[i]);
    pthread_mutex_destroy(&p->mtx);
}

/* 1 when every connection a stalled peer holds has been closed by the client (waits up
 * to a safety timeout per connection for the close to show). */
static int stalled_all_closed(struct peer *p)
{
    pthread_mutex_lock(&p->mtx);
    int n = p->nstalled, closed = 0;
    for (int i = 0; i < n; i++) {
        struct pollfd pfd = { p->stalled_fds[i], POLLIN, 0 };
        char byte;
        if (poll(&pfd, 1, 20000) == 1 && recv(p->stalled_fds[i], &byte, 1, MSG_DONTWAIT) <= 0)
            closed++;
    }
    pthread_mutex_unlock(&p->mtx);
    return closed == n;
}

/* A listener nobody serves: was a validate_ticket request sent to it? */
static int contacted(int listen_fd)
{
    fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            return 0;
        struct timeval safety = { 5, 0 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &safety, sizeof safety);
        unsigned char head[6];
        int is_request = read_full(fd, head, 6) == 6 && head[0] == 1 && head[4] == 2 &&
                         head[5] == 50;
        close(fd);
        if (is_request)
            return 1;
    }
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
static void check_health(const struct peer *slow, const struct peer *honest,
                         const struct peer *declined, uint16_t down_port, int down_raida)
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
                     honest->raida, honest->port, honest->list_len / RQ_COIN_BYTES);
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

    static struct peer honest[13], slow, liar, stalled, broken[6];
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
        peer_start(&honest[h], idx[h], HONEST, list, wire(list, mine, n) / RQ_COIN_BYTES);
    }
    const struct coin slow_list[4] = { c[0], c[5], c[6], c[9] };
    peer_start(&slow, idx[13], SLOW_ACCEPT, list, wire(list, slow_list, 4) / RQ_COIN_BYTES);
    uint16_t no_ticket_port, down_port, self_port;
    int no_ticket_fd = listen_loopback(&no_ticket_port, 64);
    host_set_peer(idx[14], "127.0.0.1", no_ticket_port);
    struct coin liar_list[40];
    for (int i = 0; i < 20; i++) {
        liar_list[i] = c[1];
        liar_list[20 + i] = c[8];
    }
    peer_start(&liar, idx[15], HONEST, list, wire(list, liar_list, 40) / RQ_COIN_BYTES);
    peer_start(&stalled, idx[16], STALLED, list, wire(list, c, 10) / RQ_COIN_BYTES);
    int down_fd = listen_loopback(&down_port, -1); /* bound, never listening: refused */
    host_set_peer(idx[17], "127.0.0.1", down_port);
    const enum script kinds[6] = { LYING_SIZE, TRUNCATED, BAD_TRAILER, WRONG_ECHO, WRONG_INDEX,
                                   DECLINED };
    for (int b = 0; b < 6; b++)
        peer_start(&broken[b], idx[18 + b], kinds[b], list, wire(list, c, 10) / RQ_COIN_BYTES);
    int self_fd = listen_loopback(&self_port, 64);
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
    CHECK(!contacted(self_fd), "this server was asked");
    CHECK(!contacted(no_ticket_fd), "the peer without a ticket was asked");
    /* every request the exact frame, each challenge fresh */
    struct peer *asked[22];
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
        pthread_mutex_lock(&asked[a]->mtx);
        for (int q = 0; q < asked[a]->requests && q < MAX_REQUESTS; q++) {
            check_frame(asked[a]->request[q], asked[a]->raida, ME);
            for (int s = 0; s < nseen; s++)
                CHECK(memcmp(seen[s], asked[a]->request[q] + 32, 12) != 0, "challenge reused");
            if (nseen < 64)
                memcpy(seen[nseen++], asked[a]->request[q] + 32, 12);
        }
        pthread_mutex_unlock(&asked[a]->mtx);
    }
    CHECK_INT(slow.requests, 2);
    /* the stalled peer's connections were closed, and nothing of the fix runs on */
    CHECK(stalled_all_closed(&stalled), "a connection to the stalled peer is still open");
    CHECK_INT((int)raida_healing_peer_connections(), 0);
    check_health(&slow, &honest[0], &broken[5], down_port, idx[17]);

    for (int a = 0; a < na; a++)
        peer_stop(asked[a]);
    close(no_ticket_fd);
    close(down_fd);
    close(self_fd);
}

/* The deadline ends a fix that only a silent peer could still decide: 12 listings + this
 * server = 13. */
static void deadline(void)
{
    settings("300");
    host_init(ME, COIN_ID);
    host_set_mfs(MFS);
    const struct coin x = { 1, 1 };
    host_put(x.den, x.sn, OLD_AN, OLD_MFS);
    static struct peer peers[13];
    unsigned char list[5];
    wire(list, &x, 1);
    uint32_t tickets[25] = { 0 };
    for (int i = 0; i < 13; i++) {
        int raida = i < ME ? i : i + 1;
        peer_start(&peers[i], raida, i < 12 ? HONEST : STALLED, list, 1);
        tickets[raida] = ticket_of(raida);
    }
    unsigned char payload[5 + 116];
    size_t n = fix_payload(payload, &x, 1, tickets);
    rq_result_t r = rq_call(cmd_fix, 0, COIN_ID, payload, n);
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
    CHECK(stalled_all_closed(&peers[12]), "a connection to the stalled peer is still open");
    CHECK_INT((int)raida_healing_peer_connections(), 0);
    for (int i = 0; i < 13; i++)
        peer_stop(&peers[i]);
}

/* Type 4: modern framing, and SHA-256 for the new AN (the docs/wire-protocol.md vector: raida 3,
 * den 1, sn 5000, PG 00..0f). */
static void type_4(void)
{
    settings("20000");
    host_init(3, COIN_ID);
    host_set_mfs(MFS);
    const struct coin x = { 1, 5000 };
    host_put(x.den, x.sn, OLD_AN, OLD_MFS);
    static struct peer peers[13];
    unsigned char list[5];
    wire(list, &x, 1);
    uint32_t tickets[25] = { 0 };
    for (int i = 0; i < 13; i++) {
        peer_start(&peers[i], 10 + i, HONEST, list, 1);
        tickets[10 + i] = ticket_of(10 + i);
    }
    unsigned char payload[5 + 116];
    size_t n = fix_payload(payload, &x, 1, tickets);
    rq_result_t r = rq_call(cmd_fix, 4, COIN_ID, payload, n);
    CHECK_INT(r.status, RAIDA_STATUS_ALL_PASS);
    CHECK_INT(r.output_size, 0);
    rq_result_free(&r);
    unsigned char an[16];
    hex16("c71fea3f4db05ade41d7717dbe347aa8", an);
    check_record(x, an, MFS);
    CHECK_INT(host_page_dirty(x.den, x.sn), 1);
    CHECK_INT(host_bitmap_used_calls(x.den, x.sn), 1);
    for (int i = 0; i < 13; i++) {
        CHECK(peers[i].requests >= 1, "peer %d was not asked", peers[i].raida);
        if (peers[i].requests >= 1)
            check_frame(peers[i].request[0], peers[i].raida, 3);
        peer_stop(&peers[i]);
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
        fds[i] = listen_loopback(&port, 64);
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
        CHECK(!contacted(fds[i]), "peer %d was contacted", i);
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
    static struct peer honest, echo, stalled_self;
    peer_start(&honest, 3, HONEST, list, 4);
    peer_start(&echo, 4, WRONG_ECHO, list, 4);
    peer_start(&stalled_self, ME, STALLED, list, 4); /* this server's own address */
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
    CHECK_INT(honest.requests, 1);
    check_frame(honest.request[0], 3, ME);

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
    CHECK_INT(honest.requests, 2);
    check_frame(honest.request[1], 3, ME);
    CHECK_INT(echo.requests, 1);
    check_frame(echo.request[0], 4, ME);
    CHECK_INT(stalled_self.requests, 0);
    CHECK_INT(host_log_count("no peer asked"), 5);
    CHECK(send_validate_ticket_job(NULL) == NULL, "NULL argument");

    /* as the legacy fix ran it: one thread per peer, all at once */
    static struct peer many[13];
    static struct job_thread jobs[13];
    for (int i = 0; i < 13; i++) {
        int raida = 10 + i;
        peer_start(&many[i], raida, HONEST, list, 4);
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
        peer_stop(&many[i]);
    }
    CHECK_INT((int)raida_healing_peer_connections(), 0);
    CHECK_INT(host_log_count("hedged"), 0); /* the settings did what they say */
    peer_stop(&honest);
    peer_stop(&echo);
    peer_stop(&stalled_self);
}

int main(void)
{
    run_group("twenty_four_peers", twenty_four_peers);
    run_group("deadline", deadline);
    run_group("type_4", type_4);
    run_group("unknown_coin", unknown_coin);
    run_group("job", job);
    return check_summary();
}
