/*
 * test_claims.c: who may claim a ticket, through the header as the legacy server calls
 * cmd_validate_ticket. Runs with RAIDA_HEALING_CLAIM_POLICY=listed (set before the first
 * call; one group sets `any` in its own child before its first call); the client's
 * address is given the ways the server gives it: ci->ip (the dotted string), ci->sk (a
 * real loopback TCP connection from 127.0.0.x, read with getpeername) and, for UDP,
 * ci->sa (the datagram's source, a sockaddr_in) or a UDP socket in ci->sk. A UDP source
 * can be forged: forged failures must not cut off the peer's TCP claims, and `listed`
 * refuses UDP claims. A conn_info_t with no address keeps the behaviour without a policy.
 * One group runs `authenticated` with a claim key file: only claims whose challenge is a
 * valid tag (made here by claim_tag.c, as docs/wire-protocol.md says) are served, by TCP,
 * by UDP or with no address, and everything else is 43 from any source.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "claim_tag.h"
#include "host.h"
#include "raida_healing.h"
#include "request.h"

#define RAIDA_NO 3
#define COIN_ID 6
#define PEER 12
#define PEER_IP "127.0.0.12"
#define OTHER_PEER 14
#define OTHER_PEER_IP "127.0.0.14"
#define STRANGER_IP "127.0.0.13"
/* tickets::GUESS_BURST: failed claims a source may make at once */
#define GUESS_BURST 60

static void an_of(uint32_t sn, unsigned char an[16])
{
    for (int i = 0; i < 16; i++)
        an[i] = (unsigned char)(sn * 7u + (unsigned)i + 1u);
}

/* A live ticket listing coin (1, sn); the coin is stocked first. */
static uint32_t ticket_for(uint32_t sn)
{
    unsigned char an[16], payload[21];
    an_of(sn, an);
    host_put(1, sn, an, 1);
    size_t n = rq_put_coin(payload, 1, sn);
    memcpy(payload + n, an, 16);
    rq_result_t r = rq_call(cmd_get_ticket, 0, COIN_ID, payload, sizeof payload);
    CHECK(r.status == RAIDA_STATUS_ALL_PASS && r.output_size == 4, "get_ticket: %d", r.status);
    uint32_t id = r.output_size == 4 ? rq_get_u32be(r.output) : 0;
    rq_result_free(&r);
    return id;
}

/* A claim of ticket id for RAIDA claimer; the client is ip (dotted, may be NULL) and/or
 * the socket sk (-1: none; 0 is what a zeroed conn_info_t holds) and/or the UDP source sa
 * (NULL: not UDP); its 12 challenge bytes are challenge12 (NULL: random ones). */
static rq_result_t claim_via(uint8_t claimer, uint32_t id, const char *ip, int sk,
                             struct sockaddr_in *sa, const unsigned char *challenge12)
{
    unsigned char payload[5];
    payload[0] = claimer;
    rq_put_u32be(payload + 1, id);
    rq_body_t body = rq_legacy_body(challenge12, payload, sizeof payload);
    conn_info_t ci;
    rq_ci_fill(&ci, &body, 0, COIN_ID);
    if (ip)
        snprintf(ci.ip, sizeof ci.ip, "%s", ip);
    if (sk >= 0)
        ci.sk = sk;
    ci.sa = (struct sockaddr *)sa;
    cmd_validate_ticket(&ci);
    rq_result_t r = { ci.command_status, ci.output_size, ci.output };
    rq_body_free(&body);
    return r;
}

/* The status of a claim (as claim_via); the coin it lists must be (1, sn) when it
 * succeeds, and a refusal has no body. */
static int claim_status_via(uint8_t claimer, uint32_t id, const char *ip, int sk,
                            struct sockaddr_in *sa, const unsigned char *challenge12,
                            uint32_t sn)
{
    rq_result_t r = claim_via(claimer, id, ip, sk, sa, challenge12);
    unsigned char coin[5];
    rq_put_coin(coin, 1, sn);
    if (r.status == RAIDA_STATUS_SUCCESS)
        CHECK(r.output_size == 5 && memcmp(r.output, coin, 5) == 0, "claim answered %d bytes",
              r.output_size);
    else
        CHECK_INT(r.output_size, 0);
    int status = r.status;
    rq_result_free(&r);
    return status;
}

/* The status of a claim over TCP (or with no sign of UDP): sa NULL. */
static int claim_status(uint8_t claimer, uint32_t id, const char *ip, int sk, uint32_t sn)
{
    return claim_status_via(claimer, id, ip, sk, NULL, NULL, sn);
}

/* As claim_status_udp, with the 12 challenge bytes challenge12 (NULL: random ones). */
static int claim_status_tagged_udp(uint8_t claimer, uint32_t id, const char *from,
                                   const unsigned char *challenge12, uint32_t sn)
{
    struct sockaddr_in source = { .sin_family = AF_INET, .sin_port = htons(18012) };
    inet_pton(AF_INET, from, &source.sin_addr);
    return claim_status_via(claimer, id, from, -1, &source, challenge12, sn);
}

/* The status of a claim by UDP whose datagram says it comes from `from` (port 18012): the
 * server sets sa to the source and ip to the same address, as it does per datagram. */
static int claim_status_udp(uint8_t claimer, uint32_t id, const char *from, uint32_t sn)
{
    return claim_status_tagged_udp(claimer, id, from, NULL, sn);
}

/* A TCP connection from `from` (a 127.0.0.x address) to a listener on 127.0.0.1; returns
 * the accepted socket, the server's side, as a server would hold it in ci->sk. */
static int accepted_from(const char *from, int *client_out)
{
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in at = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &at.sin_addr);
    socklen_t len = sizeof at;
    if (listener < 0 || bind(listener, (struct sockaddr *)&at, sizeof at) != 0 ||
        listen(listener, 1) != 0 || getsockname(listener, (struct sockaddr *)&at, &len) != 0) {
        perror("listener");
        exit(2);
    }
    int client = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in local = { .sin_family = AF_INET };
    inet_pton(AF_INET, from, &local.sin_addr);
    if (client < 0 || bind(client, (struct sockaddr *)&local, sizeof local) != 0 ||
        connect(client, (struct sockaddr *)&at, sizeof at) != 0) {
        perror("client from 127.0.0.x");
        exit(2);
    }
    int accepted = accept(listener, NULL, NULL);
    if (accepted < 0) {
        perror("accept");
        exit(2);
    }
    close(listener);
    *client_out = client;
    return accepted;
}

static void setup(void)
{
    host_init(RAIDA_NO, COIN_ID);
    host_set_peer(PEER, PEER_IP, 18012);
    host_set_peer(OTHER_PEER, OTHER_PEER_IP, 18014);
}

static void group_listed_by_ip_field(void)
{
    setup();
    uint32_t id = ticket_for(100);
    /* a live ticket, claimed for RAIDA 12 from elsewhere: 43, as if it did not exist */
    CHECK_INT(claim_status(PEER, id, STRANGER_IP, -1, 100), RAIDA_STATUS_NO_TICKET_FOUND);
    CHECK_INT(claim_status(PEER, id, STRANGER_IP, -1, 100), RAIDA_STATUS_NO_TICKET_FOUND);
    CHECK_INT(claim_status(PEER, id + 1, STRANGER_IP, -1, 100), RAIDA_STATUS_NO_TICKET_FOUND);
    /* from RAIDA 14's address, naming 12: refused too */
    CHECK_INT(claim_status(PEER, id, OTHER_PEER_IP, -1, 100), RAIDA_STATUS_NO_TICKET_FOUND);
    /* the configured address succeeds (the refusals claimed nothing), once per index */
    CHECK_INT(claim_status(PEER, id, PEER_IP, -1, 100), RAIDA_STATUS_SUCCESS);
    CHECK_INT(claim_status(PEER, id, PEER_IP, -1, 100), RAIDA_STATUS_TICKET_CLAIMED_ALREADY);
    CHECK_INT(claim_status(OTHER_PEER, id, OTHER_PEER_IP, -1, 100), RAIDA_STATUS_SUCCESS);
    /* an index with no configured address: nobody can claim for it */
    CHECK_INT(claim_status(20, id, PEER_IP, -1, 100), RAIDA_STATUS_NO_TICKET_FOUND);
    /* the index is still checked first */
    CHECK_INT(claim_status(25, id, STRANGER_IP, -1, 100), RAIDA_STATUS_WRONG_RAIDA);
    /* logged, once a minute per source: the stranger's three refusals give one line */
    CHECK_INT(host_log_count("from " STRANGER_IP " by TCP refused (43) by RAIDA_HEALING_CLAIM_POLICY=listed"), 1);
    CHECK_INT(host_log_count("from " OTHER_PEER_IP " by TCP refused (43)"), 1);
}

static void group_listed_by_socket(void)
{
    setup();
    uint32_t id = ticket_for(200);
    int stranger_client, stranger = accepted_from(STRANGER_IP, &stranger_client);
    int peer_client, peer = accepted_from(PEER_IP, &peer_client);
    CHECK_INT(claim_status(PEER, id, NULL, stranger, 200), RAIDA_STATUS_NO_TICKET_FOUND);
    CHECK_INT(claim_status(PEER, id, NULL, peer, 200), RAIDA_STATUS_SUCCESS);
    CHECK_INT(claim_status(PEER, id, NULL, peer, 200), RAIDA_STATUS_TICKET_CLAIMED_ALREADY);
    CHECK_INT(host_log_count("from " STRANGER_IP " by TCP refused (43)"), 1);
    close(stranger);
    close(stranger_client);
    close(peer);
    close(peer_client);
}

static void group_no_address_keeps_the_legacy_behaviour(void)
{
    setup();
    uint32_t id = ticket_for(300);
    /* a zeroed conn_info_t (sk 0, ip ""): no address, no policy */
    CHECK_INT(claim_status(20, id, NULL, -1, 300), RAIDA_STATUS_SUCCESS);
    CHECK_INT(claim_status(PEER, id, NULL, -1, 300), RAIDA_STATUS_SUCCESS);
    CHECK_INT(host_log_count("refused (43)"), 0);
}

/* any: a guessing source is cut off and said once in the log; a RAIDA relaying a wallet's
 * made-up tickets (claims as itself from its configured address) never is; an honest peer
 * with a few stale tickets is not affected. */
static void group_guessing_is_throttled(void)
{
    /* In this group's child, before its first library call: the pool reads it once. */
    setenv("RAIDA_HEALING_CLAIM_POLICY", "any", 1);
    setup();
    uint32_t id = ticket_for(400), other = ticket_for(401);
    /* a stranger that guesses: 61 unknown tickets (the 60 allowed at once and one more) */
    for (uint32_t guess = 1; guess <= GUESS_BURST + 1; guess++) {
        uint32_t unknown = id ^ (guess << 8);
        if (unknown == other || unknown == 0)
            unknown ^= 1;
        CHECK_INT(claim_status(PEER, unknown, STRANGER_IP, -1, 400),
                  RAIDA_STATUS_NO_TICKET_FOUND);
    }
    /* now its claim of a live ticket is refused too, and said once in the log */
    CHECK_INT(claim_status(PEER, id, STRANGER_IP, -1, 400), RAIDA_STATUS_NO_TICKET_FOUND);
    CHECK_INT(claim_status(PEER, id, STRANGER_IP, -1, 400), RAIDA_STATUS_NO_TICKET_FOUND);
    CHECK_INT(host_log_count(STRANGER_IP " failed more than 60 claims"), 1);
    /* RAIDA 12 relaying 4 x 60 made-up tickets as itself: never cut off */
    for (uint32_t guess = 1; guess <= 4 * GUESS_BURST; guess++) {
        uint32_t unknown = id ^ (guess << 12);
        if (unknown == other || unknown == 0)
            unknown ^= 1;
        CHECK_INT(claim_status(PEER, unknown, PEER_IP, -1, 400), RAIDA_STATUS_NO_TICKET_FOUND);
    }
    CHECK_INT(claim_status(PEER, id, PEER_IP, -1, 400), RAIDA_STATUS_SUCCESS);
    CHECK_INT(host_log_count(PEER_IP " failed more than 60 claims"), 0);
    /* an honest peer with a few stale tickets, claiming from an address of its own */
    for (uint32_t stale = 1; stale <= 3; stale++)
        CHECK_INT(claim_status(OTHER_PEER, id ^ (stale << 20), "127.0.0.15", -1, 400),
                  RAIDA_STATUS_NO_TICKET_FOUND);
    CHECK_INT(claim_status(OTHER_PEER, id, "127.0.0.15", -1, 400), RAIDA_STATUS_SUCCESS);
    CHECK_INT(claim_status(OTHER_PEER, other, "127.0.0.15", -1, 401), RAIDA_STATUS_SUCCESS);
}

/* listed: a UDP claim naming the listed RAIDA from its listed IP is refused like any
 * other (its source cannot be verified), revealing nothing; the same over TCP succeeds. */
static void group_listed_refuses_udp(void)
{
    setup();
    uint32_t id = ticket_for(500), other = ticket_for(501);
    /* a live ticket and an unknown one answer alike: 43, no body */
    CHECK_INT(claim_status_udp(PEER, id, PEER_IP, 500), RAIDA_STATUS_NO_TICKET_FOUND);
    CHECK_INT(claim_status_udp(PEER, id ^ 0x100, PEER_IP, 500), RAIDA_STATUS_NO_TICKET_FOUND);
    CHECK_INT(claim_status_udp(PEER, id, PEER_IP, 500), RAIDA_STATUS_NO_TICKET_FOUND);
    /* a UDP socket in sk with ip set and sa NULL is UDP as well */
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(udp > 0, "udp socket");
    CHECK_INT(claim_status(PEER, id, PEER_IP, udp, 500), RAIDA_STATUS_NO_TICKET_FOUND);
    close(udp);
    /* the refusals claimed nothing: over TCP (ip set, sa NULL) the peer gets the coin */
    CHECK_INT(claim_status(PEER, id, PEER_IP, -1, 500), RAIDA_STATUS_SUCCESS);
    CHECK_INT(claim_status(PEER, id, PEER_IP, -1, 500), RAIDA_STATUS_TICKET_CLAIMED_ALREADY);
    /* and from a real loopback TCP connection from its address, after more UDP refusals
     * than the guess throttle allows (they are refused before it, and counted nowhere) */
    for (uint32_t guess = 1; guess <= GUESS_BURST + 1; guess++)
        CHECK_INT(claim_status_udp(PEER, other ^ (guess << 8), PEER_IP, 501),
                  RAIDA_STATUS_NO_TICKET_FOUND);
    int peer_client, peer = accepted_from(PEER_IP, &peer_client);
    CHECK_INT(claim_status(PEER, other, NULL, peer, 501), RAIDA_STATUS_SUCCESS);
    close(peer);
    close(peer_client);
    /* logged once (once a minute per source and transport), saying why */
    CHECK_INT(host_log_count("claim for RAIDA 12 from " PEER_IP " by UDP refused (43) by "
                             "RAIDA_HEALING_CLAIM_POLICY=listed: it came by UDP"), 1);
    CHECK_INT(host_log_count("refused (43)"), 1);
    CHECK_INT(host_log_count("failed more than 60 claims"), 0);
}

/* any: an outsider forges RAIDA 12's address on 61 failing UDP claims. UDP claims "from"
 * it are cut off; its TCP claims (ip with sa NULL, or a real loopback TCP socket in sk)
 * still get their ticket's coins. */
static void group_forged_udp_failures_spare_tcp_claims(void)
{
    /* In this group's child, before its first library call: the pool reads it once. */
    setenv("RAIDA_HEALING_CLAIM_POLICY", "any", 1);
    setup();
    uint32_t id = ticket_for(600), other = ticket_for(601), third = ticket_for(602);
    for (uint32_t guess = 1; guess <= GUESS_BURST + 1; guess++) {
        uint32_t unknown = id ^ (guess << 8);
        CHECK(unknown != other && unknown != third && unknown != 0, "guess %u is live", guess);
        CHECK_INT(claim_status_udp(PEER, unknown, PEER_IP, 600), RAIDA_STATUS_NO_TICKET_FOUND);
    }
    CHECK_INT(host_log_count(PEER_IP " (UDP: the source address is unproven) failed more "
                             "than 60 claims"), 1);
    CHECK_INT(host_log_count("its TCP claims are not affected"), 1);
    /* UDP claims from that address: refused, live ticket or not */
    CHECK_INT(claim_status_udp(PEER, id, PEER_IP, 600), RAIDA_STATUS_NO_TICKET_FOUND);
    /* under `any` UDP claims from elsewhere are accepted, in their own allowance */
    CHECK_INT(claim_status_udp(OTHER_PEER, id, STRANGER_IP, 600), RAIDA_STATUS_SUCCESS);
    /* the honest peer over TCP: ip set, sa NULL */
    CHECK_INT(claim_status(PEER, id, PEER_IP, -1, 600), RAIDA_STATUS_SUCCESS);
    /* the honest peer on a real loopback TCP connection: sk alone, then sk with ip */
    int peer_client, peer = accepted_from(PEER_IP, &peer_client);
    CHECK_INT(claim_status(PEER, other, NULL, peer, 601), RAIDA_STATUS_SUCCESS);
    CHECK_INT(claim_status(PEER, third, PEER_IP, peer, 602), RAIDA_STATUS_SUCCESS);
    close(peer);
    close(peer_client);
    CHECK_INT(host_log_count("failed more than 60 claims"), 1);
}

/* The claim key of group_authenticated, and one nobody configured. */
static const unsigned char NETWORK_KEY[32] = {
    0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f,
    0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
};
static const unsigned char STRANGER_KEY[32] = { [0 ... 31] = 0x77 };

/* Writes a key file holding `key` as `current` (docs/tickets.md's format), mode 0600, in a
 * fresh private folder; returns its path (static storage). */
static const char *write_key_file(const unsigned char key[32])
{
    static char dir[] = "/tmp/raida_claim_key_XXXXXX";
    static char path[sizeof dir + 16];
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(path, sizeof path, "%s/claim.key", dir);
    char text[128];
    int n = snprintf(text, sizeof text, "# raida-healing claim key\ncurrent = ");
    for (int i = 0; i < 32; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, "%02x", key[i]);
    n += snprintf(text + n, sizeof text - (size_t)n, "\n");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || write(fd, text, (size_t)n) != n || close(fd) != 0) {
        perror("key file");
        exit(2);
    }
    return path;
}

static void remove_key_file(const char *path)
{
    char dir[64];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    unlink(path);
    rmdir(dir);
}

/* One sample of the library's metrics text: the value of the line starting with `series`
 * followed by a space, or -1 when there is none. */
static long metric(const char *series)
{
    static char text[1 << 17];
    size_t n = raida_healing_metrics_text(text, sizeof text);
    CHECK(n > 0 && n < sizeof text, "metrics text of %zu bytes", n);
    size_t len = strlen(series);
    for (const char *line = text; *line;) {
        if (strncmp(line, series, len) == 0 && line[len] == ' ')
            return strtol(line + len + 1, NULL, 10);
        const char *end = strchr(line, '\n');
        if (!end)
            break;
        line = end + 1;
    }
    return -1;
}

/* authenticated, with the network's claim key: claims of a live ticket without a valid tag
 * (none, tampered, for another peer, claimer or ticket, a window 3 minutes old, another
 * key) get 43 by TCP from the listed address, by UDP and with no address, and reach
 * nothing; 200 guesses reach nothing and write one line; a tagged claim is served by UDP
 * from an address nobody listed, its replay by TCP gets 44, and a tagged claim with no
 * address is served too. */
static void group_authenticated(void)
{
    /* In this group's child, before its first library call: the owner reads them once. */
    const char *key_file = write_key_file(NETWORK_KEY);
    setenv("RAIDA_HEALING_CLAIM_POLICY", "authenticated", 1);
    setenv("RAIDA_HEALING_CLAIM_KEY_FILE", key_file, 1);
    setup();
    /* claim_tag.c against docs/wire-protocol.md's vector first */
    unsigned char vector_key[32], vector_tag[12];
    static const unsigned char vector_expected[12] = { 0x83, 0x32, 0x80, 0xd0, 0x1f, 0x4d,
                                                       0x80, 0xbb, 0xeb, 0x87, 0xcc, 0xba };
    for (int i = 0; i < 32; i++)
        vector_key[i] = (unsigned char)i;
    ct_claim_tag(vector_key, 3, 12, 6, 0x01020304, 1800000000u, vector_tag);
    CHECK(memcmp(vector_tag, vector_expected, 12) == 0, "claim_tag.c misses the docs' vector");
    uint32_t id = ticket_for(700), other = ticket_for(701);
    uint64_t now = (uint64_t)time(NULL);
    unsigned char good[12], tampered[12], for_peer_4[12], for_claimer_14[12], for_ticket[12],
        old_window[12], stranger_key[12];
    ct_claim_tag(NETWORK_KEY, PEER, RAIDA_NO, COIN_ID, id, now, good);
    memcpy(tampered, good, 12);
    tampered[11] ^= 0x01;
    ct_claim_tag(NETWORK_KEY, PEER, 4, COIN_ID, id, now, for_peer_4);
    ct_claim_tag(NETWORK_KEY, OTHER_PEER, RAIDA_NO, COIN_ID, id, now, for_claimer_14);
    ct_claim_tag(NETWORK_KEY, PEER, RAIDA_NO, COIN_ID, id ^ 1, now, for_ticket);
    ct_claim_tag(NETWORK_KEY, PEER, RAIDA_NO, COIN_ID, id, now - 180, old_window);
    ct_claim_tag(STRANGER_KEY, PEER, RAIDA_NO, COIN_ID, id, now, stranger_key);
    const unsigned char *refused[] = { NULL, tampered, for_peer_4, for_claimer_14, for_ticket,
                                       old_window, stranger_key };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        /* TCP from RAIDA 12's own listed address, UDP from it, and no address at all */
        CHECK_INT(claim_status_via(PEER, id, PEER_IP, -1, NULL, refused[i], 700),
                  RAIDA_STATUS_NO_TICKET_FOUND);
        CHECK_INT(claim_status_tagged_udp(PEER, id, PEER_IP, refused[i], 700),
                  RAIDA_STATUS_NO_TICKET_FOUND);
        CHECK_INT(claim_status_via(PEER, id, NULL, -1, NULL, refused[i], 700),
                  RAIDA_STATUS_NO_TICKET_FOUND);
    }
    /* a stranger's 200 untagged guesses, by TCP and UDP: none reaches the pool or the
     * throttle (the live ticket is served below, and no source is said to be guessing) */
    for (uint32_t guess = 1; guess <= 200; guess++) {
        uint32_t unknown = id ^ (guess << 8);
        CHECK(unknown != other && unknown != 0, "guess %u is live", guess);
        if (guess % 2)
            CHECK_INT(claim_status(PEER, unknown, STRANGER_IP, -1, 700),
                      RAIDA_STATUS_NO_TICKET_FOUND);
        else
            CHECK_INT(claim_status_udp(PEER, unknown, STRANGER_IP, 700),
                      RAIDA_STATUS_NO_TICKET_FOUND);
    }
    /* one line for the 221 refusals (a second only if this group outlived a minute) */
    CHECK_INT(host_log_count("validate_ticket: claim for RAIDA 12 from " PEER_IP " by TCP "
                             "refused (43) by RAIDA_HEALING_CLAIM_POLICY=authenticated: it "
                             "carries no tag of this server's claim key (0 more claims "
                             "refused so since the last line)"), 1);
    CHECK(host_log_count("=authenticated:") <= 2, "%d refusal lines",
          host_log_count("=authenticated:"));
    CHECK_INT(host_log_count("failed more than 60 claims"), 0);
    /* the valid tag: served by UDP from an address nobody listed; replayed by TCP: 44 */
    CHECK_INT(claim_status_tagged_udp(PEER, id, STRANGER_IP, good, 700), RAIDA_STATUS_SUCCESS);
    CHECK_INT(claim_status_via(PEER, id, PEER_IP, -1, NULL, good, 700),
              RAIDA_STATUS_TICKET_CLAIMED_ALREADY);
    /* a tagged claim with no address */
    unsigned char other_tag[12];
    ct_claim_tag(NETWORK_KEY, OTHER_PEER, RAIDA_NO, COIN_ID, other, now, other_tag);
    CHECK_INT(claim_status_via(OTHER_PEER, other, NULL, -1, NULL, other_tag, 701),
              RAIDA_STATUS_SUCCESS);
    /* the metrics count what the tags proved: the served UDP claim and its TCP replay verified */
#define VERIFIED_CLAIMS(transport) \
    "raida_healing_claim_tags_total{raida=\"3\",tag=\"verified\",transport=\"" transport "\"}"
    CHECK_INT(metric(VERIFIED_CLAIMS("udp")), 1);
    CHECK_INT(metric(VERIFIED_CLAIMS("tcp")), 1);
    remove_key_file(key_file);
}

int main(void)
{
    /* Before the library's first call: the pool reads it once. */
    setenv("RAIDA_HEALING_CLAIM_POLICY", "listed", 1);
    run_group("listed_by_ip_field", group_listed_by_ip_field);
    run_group("listed_by_socket", group_listed_by_socket);
    run_group("no_address", group_no_address_keeps_the_legacy_behaviour);
    run_group("guessing_is_throttled", group_guessing_is_throttled);
    run_group("listed_refuses_udp", group_listed_refuses_udp);
    run_group("forged_udp_spares_tcp", group_forged_udp_failures_spare_tcp_claims);
    run_group("authenticated", group_authenticated);
    return check_summary();
}
