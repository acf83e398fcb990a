/*
 * bench.c: `make bench`. Measures the healing module through its C ABI, with the C host
 * harness (c_tests/host.c) playing the legacy server, and prints one table. Every figure
 * is the median of repeated samples; BENCHMARKS.md says what each row means.
 *
 * Rows:
 *  - get_ticket / find: ns per coin through cmd_get_ticket / cmd_find, next to the floor:
 *    the same page lookups and AN compares done here directly, with one
 *    get_page_by_sn_lock / unlock_page per coin, measured in the same sample.
 *  - validate_ticket: claims per second through cmd_validate_ticket, 1 and 2 threads.
 *  - fix: wall time of cmd_fix against 24 loopback peers (c_tests/fake_peer.c).
 *  - memory: resident size and heap of the ticket pool, idle and full.
 *  - metrics: get_ticket x1 and fix x1 with RAIDA_HEALING_METRICS_FILE set (its writer
 *    thread rewriting the file every 100 ms) against without, and one write of the file.
 *    BENCH_ONLY=metrics runs only these rows; BENCH_METRICS_INTERVAL_MS sets the interval.
 *  - the pool under attack: memory and slowest get_ticket while a pool of one-coin and
 *    one of 3119-coin tickets fills, a coin taken from a 4096-coin ticket, claims/s of
 *    honest peers, of a guessing peer and of an unlisted source (policy `listed`).
 *
 * The ticket pool is process-wide and keeps tickets for 300 s, so every sample that
 * creates tickets runs in a forked child: each starts from the parent's empty pool. The
 * parent itself never creates a ticket. The pool holds at most POOL_COINS coins, and a
 * coin sits on at most 4 live tickets (a newer one takes it from the oldest): a sample
 * that needs many live tickets gives each its own coins.
 *
 * Exit status: 0 when every command answered what it should (a wrong answer makes the
 * figures meaningless), 1 otherwise. A missed speed target is reported, not an error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fake_peer.h"
#include "host.h"
#include "raida_healing.h"
#include "request.h"

#define SELF 0                 /* this server's RAIDA index */
#define COIN_ID 0
#define GET_TICKET_MAX 3119    /* (65535 - 18) / 21: the largest legacy get_ticket */
#define FIND_MAX 1770          /* (65535 - 18) / 37: the largest legacy find */
#define FIX_MAX 3000
#define POOL_TICKETS 512
#define TICKET_COINS_MAX 4096
/* tickets::MAX_COINS_HELD: 256 full tickets */
#define POOL_COINS (256 * TICKET_COINS_MAX)
/* Claim-bench tickets list coins of their own, of this denomination (the lookup rows use
 * 1, 3 and the scattered pages). */
#define CLAIM_DEN 6
#define LOOKUP_SAMPLES 21
#define CLAIM_SAMPLES 11
#define FIX_SAMPLES 21
/* A fix scenario stops taking samples after this long (a broken fix waits deadlines). */
#define FIX_BUDGET_NS 20000000000.0
/* Unless the caller set one: bounds a fix that fails to decide early; a fix that meets
 * its targets answers long before it. */
#define DEFAULT_BENCH_DEADLINE_MS "5000"

static int failures;

static void report(const char *fmt, va_list ap)
{
    fprintf(stderr, "bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
}

/* A failed expectation: reported, counted, and the run goes on. */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(fmt, ap);
    va_end(ap);
    failures++;
}

/* A run that cannot go on. */
static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(fmt, ap);
    va_end(ap);
    exit(1);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

/* ---- coins ---- */

struct coin {
    int8_t den;
    uint32_t sn;
};

/* A deterministic generator: the same coins on every run. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* The AN stored for a coin (any fixed function of the coin will do). */
static void an_of(struct coin c, unsigned char an[16])
{
    uint64_t x = ((uint64_t)(uint8_t)c.den << 32 | c.sn) * 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 16; i++) {
        x ^= x >> 29;
        x *= 0xBF58476D1CE4E5B9ull;
        an[i] = (unsigned char)(x >> 56);
    }
}

/* How a batch's coins fall on pages. */
enum layout { DENSE, RANDOM, SCATTERED, LAYOUTS };
static const char *layout_name[LAYOUTS] = { "dense", "random", "scattered" };
static const char *layout_help[LAYOUTS] = {
    "consecutive sns of one denomination",
    "random sns of one denomination (1000 pages)",
    "each coin on a page of its own",
};

/* n distinct random serial numbers of `den`, in random order. */
static void random_coins(struct coin *out, int n, int8_t den)
{
    static unsigned char used[HOST_TOTAL_PAGES * HOST_RECORDS_PER_PAGE];
    memset(used, 0, sizeof used);
    for (int i = 0; i < n;) {
        uint32_t sn = (uint32_t)(rng_next() % (HOST_TOTAL_PAGES * HOST_RECORDS_PER_PAGE));
        if (!used[sn]) {
            used[sn] = 1;
            out[i++] = (struct coin){ den, sn };
        }
    }
}

static void make_coins(enum layout layout, struct coin *out, int n)
{
    switch (layout) {
    case DENSE:
        for (int i = 0; i < n; i++)
            out[i] = (struct coin){ 1, (uint32_t)i };
        break;
    case RANDOM:
        random_coins(out, n, 3);
        break;
    case SCATTERED: {
        /* page k of the list is page k % 1000 of denomination -8 + k / 1000, shuffled */
        int *page = xmalloc(sizeof *page * (size_t)n);
        for (int i = 0; i < n; i++)
            page[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(rng_next() % (uint64_t)(i + 1)), t = page[i];
            page[i] = page[j];
            page[j] = t;
        }
        for (int i = 0; i < n; i++)
            out[i] = (struct coin){ (int8_t)(HOST_MIN_DEN + page[i] / HOST_TOTAL_PAGES),
                                    (uint32_t)(page[i] % HOST_TOTAL_PAGES) * HOST_RECORDS_PER_PAGE +
                                        (uint32_t)(rng_next() % HOST_RECORDS_PER_PAGE) };
        free(page);
        break;
    }
    default:
        die("bad layout");
    }
}

static void put_coins(const struct coin *coins, int n)
{
    unsigned char an[16];
    for (int i = 0; i < n; i++) {
        an_of(coins[i], an);
        host_put(coins[i].den, coins[i].sn, an, 45);
    }
}

static int distinct_pages(const struct coin *coins, int n)
{
    static unsigned char seen[HOST_MAX_DEN - HOST_MIN_DEN + 1][HOST_TOTAL_PAGES];
    memset(seen, 0, sizeof seen);
    int pages = 0;
    for (int i = 0; i < n; i++) {
        unsigned char *s = &seen[coins[i].den - HOST_MIN_DEN][coins[i].sn / HOST_RECORDS_PER_PAGE];
        pages += !*s;
        *s = 1;
    }
    return pages;
}

/* ---- samples in child processes ---- */

typedef void (*sample_fn)(void *ctx, double *out, int nout);

static void write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            _exit(3);
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Runs fn in a forked child and returns the nout numbers it reports; dies when the child
 * fails (it reports on stderr why). */
static void in_child(sample_fn fn, void *ctx, double *out, int nout)
{
    int fds[2];
    if (pipe(fds) != 0)
        die("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        fn(ctx, out, nout);
        write_all(fds[1], out, sizeof *out * (size_t)nout);
        fflush(NULL);
        _exit(failures ? 4 : 0);
    }
    close(fds[1]);
    size_t want = sizeof *out * (size_t)nout, got = 0;
    while (got < want) {
        ssize_t r = read(fds[0], (char *)out + got, want - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    if (got != want || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("a sample's child process failed (status %d)", status);
}

/* ---- get_ticket and find against the floor ---- */

enum op { GET_TICKET, FIND };

struct lookup_job {
    enum op op;
    const struct coin *coins;
    int n;
    rq_body_t body;
    unsigned char (*an)[16];   /* what the request says per coin: AN (get_ticket and find) */
    unsigned char (*pan)[16];  /* find's PAN */
    int warm, reps;
    unsigned expect;           /* matches the floor must count per request */
    int module_first;          /* alternated between samples, so drift favours neither */
};

/* The floor: per coin one page lookup (locked), the compares the command needs, unlock.
 * Not inlined, so a profiler can count it apart (--toggle-collect=floor_once). */
__attribute__((noinline)) static unsigned floor_once(const struct lookup_job *job)
{
    unsigned matches = 0;
    for (int i = 0; i < job->n; i++) {
        struct page_s *page = get_page_by_sn_lock(job->coins[i].den, job->coins[i].sn);
        if (!page)
            die("floor: no page for %d/%u", job->coins[i].den, job->coins[i].sn);
        const unsigned char *stored =
            page->data + (job->coins[i].sn % HOST_RECORDS_PER_PAGE) * HOST_RECORD_BYTES;
        if (memcmp(stored, job->an[i], 16) == 0)
            matches++;
        else if (job->op == FIND && memcmp(stored, job->pan[i], 16) == 0)
            matches++;
        unlock_page(page);
    }
    return matches;
}

static void module_once(const struct lookup_job *job)
{
    conn_info_t ci;
    rq_ci_fill(&ci, &job->body, 0, COIN_ID);
    if (job->op == GET_TICKET) {
        cmd_get_ticket(&ci);
        if (ci.command_status != RAIDA_STATUS_ALL_PASS || ci.output_size != 4)
            die("get_ticket x%d answered %u (%d bytes), not 241 with a ticket", job->n,
                ci.command_status, ci.output_size);
    } else {
        cmd_find(&ci);
        unsigned char want = job->n == 1 ? RAIDA_STATUS_FIND_ALL_AN : RAIDA_STATUS_FIND_MIXED;
        if (ci.command_status != want)
            die("find x%d answered %u, not %u", job->n, ci.command_status, want);
    }
    rq_ci_release(&ci);
}

/* out[0] module ns per coin, out[1] floor ns per coin. */
static void lookup_sample(void *ctx, double *out, int nout)
{
    const struct lookup_job *job = ctx;
    (void)nout;
    for (int r = 0; r < job->warm; r++) {
        module_once(job);
        if (floor_once(job) != job->expect)
            die("floor counted the wrong number of matches");
    }
    unsigned matches = 0;
    double module_ns = 0, floor_ns = 0;
    for (int turn = 0; turn < 2; turn++) {
        double t0 = now_ns();
        if ((turn == 0) == (job->module_first != 0)) {
            for (int r = 0; r < job->reps; r++)
                module_once(job);
            module_ns = now_ns() - t0;
        } else {
            for (int r = 0; r < job->reps; r++)
                matches += floor_once(job);
            floor_ns = now_ns() - t0;
        }
    }
    if (matches != job->expect * (unsigned)job->reps)
        die("floor counted the wrong number of matches");
    double coins = (double)job->n * job->reps;
    out[0] = module_ns / coins;
    out[1] = floor_ns / coins;
}

/* Requests per sample: enough work to time, and (get_ticket) below 512 tickets. */
static void reps_for(int n, int *warm, int *reps)
{
    if (n <= 1) {
        *warm = 20;
        *reps = 400;
    } else if (n <= 100) {
        *warm = 5;
        *reps = 200;
    } else {
        *warm = 2;
        *reps = 20;
    }
}

/* The request body and what the floor compares, for the first n coins. */
static void make_lookup_job(struct lookup_job *job_out, enum op op, const struct coin *coins, int n)
{
    struct lookup_job job = { .op = op, .coins = coins, .n = n };
    size_t record = op == GET_TICKET ? 21 : 37;
    unsigned char *payload = xmalloc(record * (size_t)n);
    job.an = xmalloc(sizeof *job.an * (size_t)n);
    job.pan = xmalloc(sizeof *job.pan * (size_t)n);
    for (int i = 0; i < n; i++) {
        unsigned char stored[16];
        an_of(coins[i], stored);
        /* get_ticket: every AN matches. find: even coins match their AN, odd ones their
         * PAN, so the answer is mixed (211) and carries a body. */
        int by_pan = op == FIND && i % 2;
        for (int b = 0; b < 16; b++) {
            job.an[i][b] = by_pan ? (unsigned char)(stored[b] ^ 0x5A) : stored[b];
            job.pan[i][b] = by_pan ? stored[b] : (unsigned char)~stored[b];
        }
        unsigned char *at = payload + record * (size_t)i;
        at += rq_put_coin(at, coins[i].den, coins[i].sn);
        memcpy(at, job.an[i], 16);
        if (op == FIND)
            memcpy(at + 16, job.pan[i], 16);
    }
    job.body = rq_legacy_body(NULL, payload, record * (size_t)n);
    job.expect = (unsigned)n;
    reps_for(n, &job.warm, &job.reps);
    free(payload);
    *job_out = job;
}

static void free_lookup_job(struct lookup_job *job)
{
    free(job->an);
    free(job->pan);
    rq_body_free(&job->body);
}

static void lookup_row(enum op op, const struct coin *coins, int n, const char *layout)
{
    struct lookup_job job;
    make_lookup_job(&job, op, coins, n);

    double module[LOOKUP_SAMPLES], floor_ns[LOOKUP_SAMPLES];
    for (int s = 0; s < LOOKUP_SAMPLES; s++) {
        double out[2];
        job.module_first = s % 2;
        in_child(lookup_sample, &job, out, 2);
        module[s] = out[0];
        floor_ns[s] = out[1];
    }
    double m = median(module, LOOKUP_SAMPLES), f = median(floor_ns, LOOKUP_SAMPLES);
    char what[96];
    snprintf(what, sizeof what, "%s x%d%s%s (%d page%s)", op == GET_TICKET ? "get_ticket" : "find",
             n, layout ? ", " : "", layout ? layout : "", distinct_pages(coins, n),
             distinct_pages(coins, n) == 1 ? "" : "s");
    int largest = n == (op == GET_TICKET ? GET_TICKET_MAX : FIND_MAX);
    const char *verdict = !largest ? "" : m <= f ? "<= 1.0x: met" : "<= 1.0x: MISSED";
    printf("| %-46s | %9.1f ns/coin | %9.1f ns/coin | %6.2fx | %-16s |\n", what, m, f, m / f,
           verdict);
    fflush(stdout);
    free_lookup_job(&job);
}

/* ---- validate_ticket ---- */

struct claim_job {
    const struct coin *coins;
    int coins_per_ticket;
    int threads;
    uint32_t tickets[POOL_TICKETS];
    int ntickets;
};

struct claim_thread {
    const struct claim_job *job;
    int first_claimer, last_claimer;
    double start, end;
    int bad;
};

static void *claim_worker(void *arg)
{
    struct claim_thread *t = arg;
    const struct claim_job *job = t->job;
    size_t expect = (size_t)job->coins_per_ticket * 5;
    t->start = now_ns();
    for (int k = 0; k < job->ntickets; k++)
        for (int claimer = t->first_claimer; claimer <= t->last_claimer; claimer++) {
            unsigned char payload[5] = { (unsigned char)claimer };
            rq_put_u32be(payload + 1, job->tickets[k]);
            unsigned char body[16 + 5 + 2] = { 0 };
            memcpy(body + 16, payload, 5);
            body[21] = body[22] = 0x3E;
            rq_body_t b = { .data = body, .size = sizeof body };
            conn_info_t ci;
            rq_ci_fill(&ci, &b, 0, COIN_ID);
            cmd_validate_ticket(&ci);
            if (ci.command_status != RAIDA_STATUS_SUCCESS || (size_t)ci.output_size != expect)
                t->bad++;
            rq_ci_release(&ci);
        }
    t->end = now_ns();
    return NULL;
}

/* out[0]: claims per second. */
static void claim_sample(void *ctx, double *out, int nout)
{
    struct claim_job *job = ctx;
    (void)nout;
    /* Fill the pool (untimed) with tickets of coins_per_ticket coins each, every ticket
     * with coins of its own (a coin sits on at most 4 live tickets), as many as fit. */
    int per = job->coins_per_ticket;
    job->ntickets = POOL_COINS / per < 500 ? POOL_COINS / per : 500;
    if ((size_t)job->ntickets * (size_t)per > (size_t)HOST_TOTAL_PAGES * HOST_RECORDS_PER_PAGE)
        job->ntickets = HOST_TOTAL_PAGES * HOST_RECORDS_PER_PAGE / per;
    size_t size = 21 * (size_t)per;
    unsigned char *payload = xmalloc(size);
    struct coin *coins = xmalloc(sizeof *coins * (size_t)per);
    for (int k = 0; k < job->ntickets; k++) {
        for (int i = 0; i < per; i++) {
            coins[i] = (struct coin){ CLAIM_DEN, (uint32_t)(k * per + i) };
            unsigned char *at = payload + 21 * (size_t)i;
            at += rq_put_coin(at, coins[i].den, coins[i].sn);
            an_of(coins[i], at);
        }
        put_coins(coins, per);
        rq_body_t body = rq_legacy_body(NULL, payload, size);
        conn_info_t ci;
        rq_ci_fill(&ci, &body, 0, COIN_ID);
        cmd_get_ticket(&ci);
        if (ci.command_status != RAIDA_STATUS_ALL_PASS)
            die("get_ticket for the claim bench answered %u", ci.command_status);
        job->tickets[k] = rq_get_u32be(ci.output);
        rq_ci_release(&ci);
        rq_body_free(&body);
    }
    free(coins);
    free(payload);

    struct claim_thread t[2] = {
        { .job = job, .first_claimer = 0, .last_claimer = job->threads == 1 ? 24 : 12 },
        { .job = job, .first_claimer = 13, .last_claimer = 24 },
    };
    if (job->threads == 1) {
        claim_worker(&t[0]);
    } else {
        pthread_t th;
        if (pthread_create(&th, NULL, claim_worker, &t[1]) != 0)
            die("pthread_create failed");
        claim_worker(&t[0]);
        pthread_join(th, NULL);
    }
    double start = t[0].start, end = t[0].end;
    if (job->threads == 2) {
        start = t[1].start < start ? t[1].start : start;
        end = t[1].end > end ? t[1].end : end;
    }
    if (t[0].bad || t[1].bad)
        die("%d claims did not answer 250 with the ticket's coins", t[0].bad + t[1].bad);
    out[0] = (double)job->ntickets * 25 / ((end - start) / 1e9);
}

static void claim_row(const struct coin *coins, int coins_per_ticket, int threads)
{
    struct claim_job job = { .coins = coins, .coins_per_ticket = coins_per_ticket,
                             .threads = threads };
    double rate[CLAIM_SAMPLES];
    for (int s = 0; s < CLAIM_SAMPLES; s++)
        in_child(claim_sample, &job, &rate[s], 1);
    char what[96];
    snprintf(what, sizeof what, "validate_ticket, %d-coin tickets, %d thread%s", coins_per_ticket,
             threads, threads == 1 ? "" : "s");
    printf("| %-46s | %9.0f claims/s | %17s | %7s | %-16s |\n", what, median(rate, CLAIM_SAMPLES),
           "", "", "");
    fflush(stdout);
}

/* ---- fix against loopback peers ---- */

/* One fix of the first n coins, every peer given `ticket[i]`; its time in ms and, in
 * `*status`, its answer. */
static double fix_answer(const struct coin *coins, int n, const uint32_t ticket[25],
                         unsigned *status)
{
    size_t size = 5 * (size_t)n + 16 + 100;
    unsigned char *payload = xmalloc(size), *at = payload;
    for (int i = 0; i < n; i++)
        at += rq_put_coin(at, coins[i].den, coins[i].sn);
    for (int b = 0; b < 16; b++)
        *at++ = (unsigned char)(0xA0 + b); /* PG */
    for (int i = 0; i < 25; i++)
        at += rq_put_u32be(at, ticket[i]);
    rq_body_t body = rq_legacy_body(NULL, payload, size);
    conn_info_t ci;
    rq_ci_fill(&ci, &body, 0, COIN_ID);
    double t0 = now_ns();
    cmd_fix(&ci);
    double ms = (now_ns() - t0) / 1e6;
    *status = ci.command_status;
    rq_ci_release(&ci);
    rq_body_free(&body);
    free(payload);
    return ms;
}

/* One fix of the first n coins, every peer given `ticket[i]`; returns ms, -1 if wrong. */
static double fix_once(const struct coin *coins, int n, const uint32_t ticket[25])
{
    host_clear_dirty(coins[n - 1].den, coins[n - 1].sn);
    unsigned status;
    double ms = fix_answer(coins, n, ticket, &status);
    int ok = status == RAIDA_STATUS_ALL_PASS;
    if (!ok)
        fail("fix x%d answered %u, not 241 (all fixed)", n, status);
    if (ok && host_page_dirty(coins[n - 1].den, coins[n - 1].sn) != 1) {
        fail("fix x%d answered 241 but left the last coin's page clean", n);
        ok = 0;
    }
    if (host_locked_pages() != 0)
        fail("fix left %d pages locked", host_locked_pages());
    return ok ? ms : -1;
}

/* The fake peers' ports, for the floor below (set once they run). */
static const struct fake_peers *bench_peers;

/* The network part of a fix done directly, without the library: a non-blocking connect
 * to each peer holding a ticket, the 55-byte request, poll(2) until 13 whole answers
 * (the 14 votes a coin needs) have arrived, then every socket closed. No vote counting,
 * no page work: what any client on this machine pays for the peers alone. ms, or -1. */
static double fix_floor_once(const uint32_t ticket[25])
{
    static unsigned char answer[25][32 + 5 * FIX_MAX + 2];
    struct pollfd pfd[25];
    int peer_of[25], sent[25], np = 0, answers = 0;
    size_t got[25];
    double t0 = now_ns();
    for (int i = 0; i < 25; i++) {
        if (i == SELF || ticket[i] == 0)
            continue;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(bench_peers->port[i]),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        if (fd < 0 || (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS))
            die("floor: cannot connect to peer %d", i);
        pfd[np] = (struct pollfd){ .fd = fd, .events = POLLOUT };
        peer_of[np] = i;
        sent[np] = 0;
        got[np] = 0;
        np++;
    }
    while (answers < 13) {
        if (poll(pfd, (nfds_t)np, 5000) <= 0)
            die("floor: poll timed out or failed");
        for (int k = 0; k < np; k++) {
            if (pfd[k].fd < 0 || pfd[k].revents == 0)
                continue;
            if (!sent[k]) {
                unsigned char frame[55] = { 1, 0, (unsigned char)peer_of[k], 0, 2, 50, 0, COIN_ID, 1 };
                frame[23] = 23;
                for (int b = 0; b < 16; b++)
                    frame[32 + b] = (unsigned char)(b * 7 + k);
                frame[48] = SELF;
                rq_put_u32be(frame + 49, ticket[peer_of[k]]);
                frame[53] = frame[54] = 0x3E;
                if (send(pfd[k].fd, frame, sizeof frame, MSG_NOSIGNAL) != (ssize_t)sizeof frame)
                    die("floor: send to peer %d failed", peer_of[k]);
                sent[k] = 1;
                pfd[k].events = POLLIN;
                continue;
            }
            ssize_t r = recv(pfd[k].fd, answer[k] + got[k], sizeof answer[k] - got[k], 0);
            if (r <= 0)
                die("floor: peer %d closed early", peer_of[k]);
            got[k] += (size_t)r;
            if (got[k] >= 32) {
                size_t need = 32 + ((size_t)answer[k][9] << 16 | (size_t)answer[k][10] << 8 |
                                    answer[k][11]);
                if (got[k] >= need) {
                    answers++;
                    close(pfd[k].fd);
                    pfd[k].fd = -1;
                }
            }
        }
    }
    for (int k = 0; k < np; k++)
        if (pfd[k].fd >= 0)
            close(pfd[k].fd);
    return (now_ns() - t0) / 1e6;
}

/* Fake peers 0..24 but this server, each listing the FIX_MAX `coins` (the ticket a fix
 * sends picks the answer, see fix_row), known to the host at their ports. */
static void start_fix_peers(struct fake_peers *peers, const struct coin *coins)
{
    unsigned char *wire = xmalloc(5 * (size_t)FIX_MAX);
    for (int i = 0; i < FIX_MAX; i++)
        rq_put_coin(wire + 5 * i, coins[i].den, coins[i].sn);
    if (fake_peers_start(peers, SELF, FAKE_PEER_BY_TICKET, wire, FIX_MAX) != 0)
        die("cannot start the fake peers");
    free(wire); /* the serving child has its own copy */
    for (int i = 0; i < 25; i++)
        if (i != SELF)
            host_set_peer(i, "127.0.0.1", peers->port[i]);
}

static void fix_row(const char *what, const struct coin *coins, int n, int stalled,
                    double target_ms)
{
    uint32_t ticket[25] = { 0 };
    int honest = 0;
    for (int i = 0; i < 25; i++) {
        if (i == SELF)
            continue;
        /* the stalled peers are spread over the indices: every other one from 2 */
        int stall = stalled && i % 2 == 0 && i / 2 <= stalled;
        ticket[i] = stall ? FAKE_PEER_TICKET(FAKE_PEER_STALLED, 0)
                          : FAKE_PEER_TICKET(FAKE_PEER_LISTS, (uint32_t)n);
        honest += !stall;
    }
    double ms[FIX_SAMPLES], floor_ms[FIX_SAMPLES];
    int taken = 0;
    double spent = 0;
    for (int s = 0; s < FIX_SAMPLES && spent < FIX_BUDGET_NS; s++) {
        double t0 = now_ns();
        ms[taken] = fix_once(coins, n, ticket);
        if (!stalled)
            floor_ms[taken] = fix_floor_once(ticket);
        spent += now_ns() - t0;
        if (ms[taken] < 0)
            break;
        taken++;
    }
    char label[96];
    snprintf(label, sizeof label, "%s (%d honest%s)", what, honest,
             stalled ? ", 10 stalled" : "");
    if (taken == 0) {
        printf("| %-46s | %17s | %17s | %7s | %-16s |\n", label, "FAILED", "", "", "");
        return;
    }
    double m = median(ms, taken);
    char verdict[32] = "";
    if (target_ms > 0)
        snprintf(verdict, sizeof verdict, "<= %g ms: %s", target_ms,
                 m <= target_ms ? "met" : "MISSED");
    char value[32], floor_value[32] = "", ratio[16] = "";
    snprintf(value, sizeof value, "%.2f ms", m);
    if (taken < FIX_SAMPLES)
        snprintf(value, sizeof value, "%.2f ms (%d runs)", m, taken);
    if (!stalled) {
        double f = median(floor_ms, taken);
        snprintf(floor_value, sizeof floor_value, "%.2f ms", f);
        snprintf(ratio, sizeof ratio, "%.2fx", m / f);
    }
    printf("| %-46s | %17s | %17s | %7s | %-16s |\n", label, value, floor_value, ratio, verdict);
    fflush(stdout);
}

/* ---- liveness: dead peers, hostile fixes ---- */

/* The longest wait for any ejected peer's next probe, in ms (0: none ejected). */
static uint64_t longest_probe_wait_ms(int *ejected)
{
    raida_healing_peer_health_t h[64];
    size_t count = 0;
    if (raida_healing_peer_health(h, 64, &count) != RAIDA_HEALING_OK)
        die("raida_healing_peer_health failed");
    uint64_t most = 0;
    *ejected = 0;
    for (size_t i = 0; i < count && i < 64; i++) {
        *ejected += h[i].ejected;
        if (h[i].next_probe_ms > most)
            most = h[i].next_probe_ms;
    }
    return most;
}

static void time_row(const char *label, double *ms, int taken, const char *extra)
{
    char value[48] = "FAILED", worst[48] = "";
    if (taken > 0) {
        double w = ms[0];
        for (int i = 1; i < taken; i++)
            w = ms[i] > w ? ms[i] : w;
        snprintf(value, sizeof value, "%.2f ms (%d runs)", median(ms, taken), taken);
        snprintf(worst, sizeof worst, "worst %.2f ms", w);
    }
    printf("| %-46s | %17s | %17s | %7s | %-16s |\n", label, value, worst, "", extra);
    fflush(stdout);
}

/* 12 honest peers (1..12) and 11 dead ones (14..24, they accept and never answer; 13 has
 * no ticket): with this server 13 votes, one short, so a fix can only end 242, and until
 * the dead peers are ejected it waits its deadline for them. Then, once the dead peers'
 * cooldown is over, one fix whose coin they list again probes and restores them all. */
static void dead_peer_rows(const struct coin *coins)
{
    uint32_t ticket[25] = { 0 };
    for (int i = 1; i <= 12; i++)
        ticket[i] = FAKE_PEER_TICKET(FAKE_PEER_LISTS, 1);
    for (int i = 14; i <= 24; i++)
        ticket[i] = FAKE_PEER_TICKET(FAKE_PEER_STALLED, 0);
    double first[3], next[FIX_SAMPLES];
    unsigned status;
    for (int s = 0; s < 3; s++) {
        first[s] = fix_answer(coins, 1, ticket, &status);
        if (status != RAIDA_STATUS_ALL_FAIL)
            fail("dead peers: fix %d answered %u, not 242", s + 1, status);
    }
    int ejected = 0;
    longest_probe_wait_ms(&ejected);
    if (ejected != 11)
        fail("dead peers: %d peers ejected after 3 fixes, not 11", ejected);
    for (int s = 0; s < FIX_SAMPLES; s++) {
        next[s] = fix_answer(coins, 1, ticket, &status);
        if (status != RAIDA_STATUS_ALL_FAIL)
            fail("dead peers: a later fix answered %u, not 242", status);
    }
    time_row("fix x1 (12 honest, 11 dead): fixes 1-3", first, 3, "waits the deadline");
    time_row("fix x1 (12 honest, 11 dead): next fixes", next, FIX_SAMPLES, "11 ejected");

    /* The dead peers come back (their tickets list the coin again): the first fix after
     * their cooldown probes and restores them. */
    uint64_t wait_ms = longest_probe_wait_ms(&ejected);
    struct timespec pause = { .tv_sec = (time_t)(wait_ms / 1000) + 1,
                              .tv_nsec = (long)(wait_ms % 1000) * 1000000L };
    nanosleep(&pause, NULL);
    for (int i = 1; i <= 24; i++)
        ticket[i] = FAKE_PEER_TICKET(FAKE_PEER_LISTS, 1);
    double back = fix_answer(coins, 1, ticket, &status);
    if (status != RAIDA_STATUS_ALL_PASS)
        fail("dead peers back: the probing fix answered %u, not 241", status);
    longest_probe_wait_ms(&ejected);
    if (ejected != 0)
        fail("dead peers back: %d still ejected after their probes answered", ejected);
    time_row("fix x1 probing 11 returned peers (restored)", &back, 1, "");
}

#define HOSTILE_FIXES 200

struct hostile {
    const struct coin *coin;
    const uint32_t *ticket;
    pthread_barrier_t *start;
    unsigned status;
};

static void *hostile_fix(void *arg)
{
    struct hostile *h = arg;
    pthread_barrier_wait(h->start);
    fix_answer(h->coin, 1, h->ticket, &h->status);
    return NULL;
}

/* 200 hostile fixes at once, each naming 2 voters (1, 2) and 11 silent peers (14..24), so
 * none decides before its deadline; meanwhile honest fixes of a coin peers 1..13 confirm
 * (the silent ones named too) run one after another until the hostile fixes end. */
static void hostile_row(const struct coin *coins)
{
    static uint32_t hostile_ticket[25];
    uint32_t honest_ticket[25] = { 0 };
    for (int i = 1; i <= 24; i++) {
        int silent = i >= 14;
        hostile_ticket[i] = silent ? FAKE_PEER_TICKET(FAKE_PEER_STALLED, 0)
                            : i <= 2 ? FAKE_PEER_TICKET(FAKE_PEER_LISTS, 2)
                                     : 0;
        honest_ticket[i] = silent ? FAKE_PEER_TICKET(FAKE_PEER_STALLED, 0)
                                  : FAKE_PEER_TICKET(FAKE_PEER_LISTS, 1);
    }
    pthread_t threads[HOSTILE_FIXES];
    static struct hostile hostile[HOSTILE_FIXES];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, HOSTILE_FIXES + 1);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (int t = 0; t < HOSTILE_FIXES; t++) {
        hostile[t] = (struct hostile){ .coin = &coins[1], .ticket = hostile_ticket, .start = &start };
        if (pthread_create(&threads[t], &attr, hostile_fix, &hostile[t]) != 0)
            die("cannot start hostile fix %d", t);
    }
    pthread_barrier_wait(&start);
    /* The hostile fixes hold the silent peers' shares (11 x 10 connections) once they
     * all run; the honest fixes start then. */
    double t0 = now_ns();
    while (raida_healing_peer_connections() < 110 && now_ns() - t0 < 2e9) {
        struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);
    }
    double ms[FIX_SAMPLES];
    int taken = 0;
    unsigned status;
    while (taken < FIX_SAMPLES && raida_healing_peer_connections() >= 110) {
        ms[taken] = fix_answer(coins, 1, honest_ticket, &status);
        if (status != RAIDA_STATUS_ALL_PASS) {
            fail("an honest fix beside %d hostile ones answered %u, not 241", HOSTILE_FIXES,
                 status);
            break;
        }
        taken++;
    }
    for (int t = 0; t < HOSTILE_FIXES; t++) {
        pthread_join(threads[t], NULL);
        if (hostile[t].status != RAIDA_STATUS_ALL_FAIL)
            fail("a hostile fix answered %u, not 242", hostile[t].status);
    }
    pthread_attr_destroy(&attr);
    pthread_barrier_destroy(&start);
    time_row("honest fix x1 beside 200 hostile fixes", ms, taken, "none fails");
}

/* ---- what a fix costs the process: threads, system calls, peer connections ---- */

#define COST_REQUESTS 200

/* True once a tracer (strace) is attached to this process. */
static int traced(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int pid = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "TracerPid: %d", &pid) == 1)
            break;
    if (f)
        fclose(f);
    return pid != 0;
}

/* Runs `requests` fixes under `strace -f -c` attached to this process (the fake peers,
 * a child started earlier, are not traced) and returns, per fix, the threads created
 * (clone, clone3), the system calls and the peer sockets opened. All -1 when strace
 * is not available. */
static void fix_cost(const struct coin *coins, int n, const uint32_t ticket[25], int requests,
                     double *threads, double *calls, double *sockets)
{
    *threads = *calls = *sockets = -1;
    char out[] = "/tmp/raida_bench_strace_XXXXXX";
    int fd = mkstemp(out);
    if (fd < 0)
        return;
    close(fd);
    char me[16];
    snprintf(me, sizeof me, "%d", (int)getpid());
    fflush(stdout);
    pid_t tracer = fork();
    if (tracer < 0) {
        unlink(out);
        return;
    }
    if (tracer == 0) {
        execlp("strace", "strace", "-f", "-c", "-qq", "-U", "calls,name", "-o", out, "-p", me,
               (char *)NULL);
        _exit(127);
    }
    int status, attached = 0;
    for (int i = 0; i < 2000 && !attached; i++) {
        if (waitpid(tracer, &status, WNOHANG) == tracer)
            break;
        attached = traced();
        if (!attached) {
            struct timespec ms = { 0, 5 * 1000 * 1000 };
            nanosleep(&ms, NULL);
        }
    }
    if (attached)
        for (int r = 0; r < requests; r++)
            fix_once(coins, n, ticket);
    kill(tracer, SIGINT);
    waitpid(tracer, &status, 0);
    FILE *f = attached ? fopen(out, "r") : NULL;
    char line[256], name[64];
    long count, total = 0, clones = 0, socks = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, " %ld %63s", &count, name) != 2)
            continue;
        if (strcmp(name, "total") == 0)
            continue;
        total += count;
        if (strcmp(name, "clone") == 0 || strcmp(name, "clone3") == 0)
            clones += count;
        if (strcmp(name, "socket") == 0)
            socks += count;
    }
    if (f) {
        fclose(f);
        if (total > 0) {
            *threads = (double)clones / requests;
            *calls = (double)total / requests;
            *sockets = (double)socks / requests;
        }
    }
    unlink(out);
}

/* ---- the metrics' cost ---- */

/* The metrics file the "with" samples write (RAIDA_HEALING_METRICS_FILE), in a folder of
 * the run's own. */
static char metrics_dir[64];

struct metrics_job {
    int with_file;                 /* set RAIDA_HEALING_METRICS_FILE in the sample's child */
    const struct lookup_job *lookup; /* get_ticket x1, or NULL: fix x1 */
    const struct coin *fix_coins;
};

/* In the sample's child, before its first call into the library: the variable set (the
 * writer thread then rewrites the file every 100 ms, the shortest interval) or not. */
static void metrics_env(int with_file)
{
    if (!with_file)
        return;
    char path[128];
    snprintf(path, sizeof path, "%s/raida_healing.prom", metrics_dir);
    setenv("RAIDA_HEALING_METRICS_FILE", path, 1);
    const char *interval = getenv("BENCH_METRICS_INTERVAL_MS");
    setenv("RAIDA_HEALING_METRICS_INTERVAL_MS", interval ? interval : "100", 1);
}

static uint32_t *all_peers_list(uint32_t ticket[25], int n)
{
    for (int i = 0; i < 25; i++)
        ticket[i] = i == SELF ? 0 : FAKE_PEER_TICKET(FAKE_PEER_LISTS, (uint32_t)n);
    return ticket;
}

/* out[0]: get_ticket x1 ns per request, or fix x1 ms (the median of 15). */
static void metrics_sample(void *ctx, double *out, int nout)
{
    const struct metrics_job *job = ctx;
    (void)nout;
    metrics_env(job->with_file);
    if (job->lookup) {
        for (int r = 0; r < job->lookup->warm; r++)
            module_once(job->lookup);
        double t0 = now_ns();
        for (int r = 0; r < job->lookup->reps; r++)
            module_once(job->lookup);
        out[0] = (now_ns() - t0) / job->lookup->reps;
        return;
    }
    uint32_t ticket[25];
    all_peers_list(ticket, 1);
    double ms[15];
    fix_once(job->fix_coins, 1, ticket);
    for (int k = 0; k < 15; k++)
        ms[k] = fix_once(job->fix_coins, 1, ticket);
    out[0] = median(ms, 15);
}

/* out[0]: µs to write the metrics file once (raida_healing_close writes it) with the 24
 * peers of a fix in the peer table; out[1]: its size in bytes. */
static void metrics_write_sample(void *ctx, double *out, int nout)
{
    const struct metrics_job *job = ctx;
    (void)nout;
    metrics_env(1);
    uint32_t ticket[25];
    fix_once(job->fix_coins, 1, all_peers_list(ticket, 1));
    double us[101];
    for (int k = 0; k < 101; k++) {
        double t0 = now_ns();
        raida_healing_close();
        us[k] = (now_ns() - t0) / 1e3;
    }
    out[0] = median(us, 101);
    out[1] = (double)raida_healing_metrics_text(NULL, 0);
}

/* The cost of RAIDA_HEALING_METRICS_FILE: get_ticket x1 and fix x1 with and without it,
 * samples alternated in one run, and the time of one write of the file. Must run before
 * this process calls into the library (each child reads the variable at its first call). */
static void metrics_rows(const struct coin *ticket_coins, const struct coin *fix_coins)
{
    snprintf(metrics_dir, sizeof metrics_dir, "/tmp/raida_bench_metrics_XXXXXX");
    if (!mkdtemp(metrics_dir))
        die("mkdtemp: %s", strerror(errno));
    struct lookup_job lookup;
    make_lookup_job(&lookup, GET_TICKET, ticket_coins, 1);
    struct fake_peers peers;
    start_fix_peers(&peers, fix_coins);
    for (int kind = 0; kind < 2; kind++) {
        double with[LOOKUP_SAMPLES], without[LOOKUP_SAMPLES];
        for (int s = 0; s < 2 * LOOKUP_SAMPLES; s++) {
            struct metrics_job job = { .with_file = s % 2, .lookup = kind == 0 ? &lookup : NULL,
                                       .fix_coins = fix_coins };
            double out[1];
            in_child(metrics_sample, &job, out, 1);
            (job.with_file ? with : without)[s / 2] = out[0];
        }
        double w = median(with, LOOKUP_SAMPLES), wo = median(without, LOOKUP_SAMPLES);
        const char *unit = kind == 0 ? "ns" : "ms";
        const char *interval = getenv("BENCH_METRICS_INTERVAL_MS");
        char what[96];
        snprintf(what, sizeof what, "%s, metrics file every %s ms",
                 kind == 0 ? "get_ticket x1" : "fix x1", interval ? interval : "100");
        printf("| %-46s | %12.1f %-4s | %12.1f %-4s | %6.3fx | %-16s |\n", what, w, unit, wo,
               unit, w / wo, w / wo <= 1.05 ? "<= 1.05x: met" : "<= 1.05x: MISSED");
        fflush(stdout);
    }
    struct metrics_job job = { .fix_coins = fix_coins };
    double out[2], us[LOOKUP_SAMPLES];
    double bytes = 0;
    for (int s = 0; s < LOOKUP_SAMPLES; s++) {
        in_child(metrics_write_sample, &job, out, 2);
        us[s] = out[0];
        bytes = out[1];
    }
    char what[64];
    snprintf(what, sizeof what, "metrics file write, 24 peers (%.0f bytes)", bytes);
    printf("| %-46s | %12.1f us   | %17s | %7s | %-16s |\n", what, median(us, LOOKUP_SAMPLES),
           "", "", "");
    fflush(stdout);
    fake_peers_stop(&peers);
    for (int i = 0; i < 25; i++)
        if (i != SELF)
            host_set_peer(i, NULL, 0);
    char path[128];
    snprintf(path, sizeof path, "%s/raida_healing.prom", metrics_dir);
    unlink(path);
    rmdir(metrics_dir);
    free_lookup_job(&lookup);
}


static void cost_rows(const char *what, const struct coin *coins, int n)
{
    uint32_t ticket[25] = { 0 };
    for (int i = 0; i < 25; i++)
        if (i != SELF)
            ticket[i] = FAKE_PEER_TICKET(FAKE_PEER_LISTS, (uint32_t)n);
    double threads, calls, sockets;
    fix_cost(coins, n, ticket, COST_REQUESTS, &threads, &calls, &sockets);
    char label[96], value[32];
    if (threads < 0) {
        snprintf(label, sizeof label, "%s (24 honest): cost per fix", what);
        printf("| %-46s | %17s | %17s | %7s | %-16s |\n", label, "no strace", "", "", "");
        return;
    }
    snprintf(label, sizeof label, "%s (24 honest): threads created", what);
    snprintf(value, sizeof value, "%.1f / fix", threads);
    printf("| %-46s | %17s | %17s | %7s | %-16s |\n", label, value, "", "",
           threads == 0 ? "0: met" : "0: MISSED");
    snprintf(label, sizeof label, "%s (24 honest): system calls", what);
    snprintf(value, sizeof value, "%.1f / fix", calls);
    printf("| %-46s | %17s | %17s | %7s | %-16s |\n", label, value, "", "", "");
    snprintf(label, sizeof label, "%s (24 honest): peer connections", what);
    snprintf(value, sizeof value, "%.1f / fix", sockets);
    printf("| %-46s | %17s | %17s | %7s | %-16s |\n", label, value, "", "", "");
    fflush(stdout);
}

/* ---- memory ---- */

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (!f || fscanf(f, "%ld %ld", &size, &resident) != 2)
        die("cannot read /proc/self/statm");
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

static double heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (double)mi.uordblks + (double)mi.hblkhd;
}

/* The 4096 coins of memory-bench ticket k: every coin of the full pool its own (the
 * largest index the pool can have), on denominations 0 and 2 (pages 0..999 each). */
static void full_pool_coins(int k, struct coin *coins)
{
    for (int i = 0; i < TICKET_COINS_MAX; i++) {
        uint32_t at = (uint32_t)k * TICKET_COINS_MAX + (uint32_t)i;
        uint32_t per_den = HOST_TOTAL_PAGES * HOST_RECORDS_PER_PAGE;
        coins[i] = (struct coin){ (int8_t)(at < per_den ? 0 : 2), at % per_den };
    }
}

/* A get_ticket body listing coins[0..n) with their ANs (modern framing above 3119). */
static rq_body_t ticket_body(const struct coin *coins, int n)
{
    size_t size = 21 * (size_t)n;
    unsigned char *payload = xmalloc(size);
    for (int i = 0; i < n; i++) {
        unsigned char *at = payload + 21 * (size_t)i;
        at += rq_put_coin(at, coins[i].den, coins[i].sn);
        an_of(coins[i], at);
    }
    rq_body_t body = n > GET_TICKET_MAX ? rq_modern_body(NULL, payload, size)
                                        : rq_legacy_body(NULL, payload, size);
    free(payload);
    return body;
}

/* out: idle RSS delta, idle heap delta, full RSS delta, full heap delta (bytes). Runs
 * before the parent has called the library at all. */
static void memory_sample(void *ctx, double *out, int nout)
{
    (void)ctx;
    (void)nout;
    enum { FULL_TICKETS = POOL_COINS / TICKET_COINS_MAX };
    struct coin *coins = xmalloc(sizeof *coins * TICKET_COINS_MAX);
    rq_body_t *bodies = xmalloc(sizeof *bodies * (FULL_TICKETS + 1));
    for (int k = 0; k <= FULL_TICKETS; k++) {
        full_pool_coins(k, coins);
        put_coins(coins, TICKET_COINS_MAX);
        bodies[k] = ticket_body(coins, TICKET_COINS_MAX);
    }
    free(coins);

    long rss0 = rss_bytes();
    double heap0 = heap_bytes();
    /* the first call brings the pool into being; an unknown ticket leaves it empty */
    rq_result_t r = rq_call(cmd_validate_ticket, 0, COIN_ID, "\x00\x00\x00\x00\x01", 5);
    if (r.status != RAIDA_STATUS_NO_TICKET_FOUND)
        die("validate_ticket of an unknown ticket answered %u, not 43", r.status);
    rq_result_free(&r);
    long rss1 = rss_bytes();
    double heap1 = heap_bytes();
    for (int k = 0; k <= FULL_TICKETS; k++) {
        conn_info_t ci;
        rq_ci_fill(&ci, &bodies[k], 4, COIN_ID);
        cmd_get_ticket(&ci);
        unsigned char want = k < FULL_TICKETS ? RAIDA_STATUS_ALL_PASS : RAIDA_STATUS_NO_TICKET_SLOT;
        if (ci.command_status != want)
            die("get_ticket #%d of 4096 coins answered %u, not %u", k + 1, ci.command_status,
                want);
        rq_ci_release(&ci);
    }
    long rss2 = rss_bytes();
    double heap2 = heap_bytes();
    for (int k = 0; k <= FULL_TICKETS; k++)
        rq_body_free(&bodies[k]);
    free(bodies);
    out[0] = (double)(rss1 - rss0);
    out[1] = heap1 - heap0;
    out[2] = (double)(rss2 - rss1);
    out[3] = heap2 - heap1;
}

static void memory_rows(void)
{
    double out[4];
    in_child(memory_sample, NULL, out, 4);
    double raw = (double)POOL_COINS * 5;
    char value[40], floor_txt[40], ratio[16];
    snprintf(value, sizeof value, "%.0f KiB RSS", out[0] / 1024);
    snprintf(floor_txt, sizeof floor_txt, "%+.0f B heap", out[1]);
    printf("| %-46s | %17s | %17s | %7s | %-16s |\n", "memory: ticket pool idle (first call)", value,
           floor_txt, "", "");
    snprintf(value, sizeof value, "%.2f MiB RSS", out[2] / 1048576);
    snprintf(floor_txt, sizeof floor_txt, "%.2f MiB raw", raw / 1048576);
    snprintf(ratio, sizeof ratio, "%.2fx", out[2] / raw);
    printf("| %-46s | %17s | %17s | %7s | %-16s |\n", "memory: pool full, 1M distinct coins",
           value, floor_txt, ratio, "");
    snprintf(value, sizeof value, "%.2f MiB heap", out[3] / 1048576);
    printf("| %-46s | %17s | %17s | %7s | %-16s |\n", "  (heap bytes in use, mallinfo2)", value, "",
           "", "");
    fflush(stdout);
}

/* ---- the pool under attack: memory and lock time for each ticket shape, the cost of
 * taking a coin from a large ticket, claims from an honest peer and from a guesser ---- */

/* tickets::POOL_CAPACITY / (coins + TICKET_CHARGE): the most tickets of one shape */
#define ONE_COIN_POOL_TICKETS 131296
#define LARGE_POOL_TICKETS 336
/* tickets::POOL_MEMORY_BOUND, the README's figure */
#define POOL_MEMORY_BOUND_MIB 60.0
/* no get_ticket holds the pool for longer than this */
#define LOCK_TARGET_MS 1.0
#define TAKE_ROUNDS 41
#define GUESSER_CLAIMS 200000

/* Coin `at` of a pool fill: every coin its own, on denominations 0 and 2. */
static struct coin fill_coin(uint32_t at)
{
    uint32_t per_den = HOST_TOTAL_PAGES * HOST_RECORDS_PER_PAGE;
    return (struct coin){ (int8_t)(at < per_den ? 0 : 2), at % per_den };
}

static double thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* get_ticket of `body`; returns its status, the call's wall time in ns (*ns) and, when
 * cpu_ns is not NULL, the CPU time this thread spent in it (*cpu_ns). */
static unsigned char timed_get_ticket(rq_body_t *body, double *ns, double *cpu_ns)
{
    conn_info_t ci;
    rq_ci_fill(&ci, body, body->size > 21 * GET_TICKET_MAX + 18 ? 4 : 0, COIN_ID);
    double c0 = cpu_ns ? thread_cpu_ns() : 0;
    double t0 = now_ns();
    cmd_get_ticket(&ci);
    *ns = now_ns() - t0;
    if (cpu_ns)
        *cpu_ns = thread_cpu_ns() - c0;
    unsigned char status = ci.command_status;
    rq_ci_release(&ci);
    return status;
}

/* Fills the pool with tickets of *ctx coins each, every coin its own, until it answers
 * 42. out: RSS delta, heap delta (bytes), slowest single get_ticket in CPU time of the
 * calling thread (ns: the work of the call, all of the pool's lock hold included; wall
 * time on a shared machine also counts being descheduled), tickets made, slowest in wall
 * time (ns). */
static void fill_sample(void *ctx, double *out, int nout)
{
    int per = *(const int *)ctx;
    (void)nout;
    int expect = per == 1 ? ONE_COIN_POOL_TICKETS : LARGE_POOL_TICKETS;
    size_t total = (size_t)(expect + 1) * (size_t)per;
    struct coin *coins = xmalloc(sizeof *coins * total);
    for (size_t i = 0; i < total; i++)
        coins[i] = fill_coin((uint32_t)i);
    put_coins(coins, (int)total);
    rq_result_t r = rq_call(cmd_validate_ticket, 0, COIN_ID, "\x00\x00\x00\x00\x01", 5);
    rq_result_free(&r);
    long rss0 = rss_bytes();
    double heap0 = heap_bytes(), worst = 0, worst_wall = 0;
    int made = 0;
    for (int k = 0; k <= expect; k++) {
        rq_body_t body = ticket_body(coins + (size_t)k * (size_t)per, per);
        double ns, cpu;
        unsigned char status = timed_get_ticket(&body, &ns, &cpu);
        rq_body_free(&body);
        worst = cpu > worst ? cpu : worst;
        worst_wall = ns > worst_wall ? ns : worst_wall;
        if (status == RAIDA_STATUS_NO_TICKET_SLOT)
            break;
        if (status != RAIDA_STATUS_ALL_PASS)
            die("get_ticket #%d of %d coins answered %u", k + 1, per, status);
        made++;
    }
    if (made != expect)
        fail("the pool took %d tickets of %d coins, not %d", made, per, expect);
    out[0] = (double)(rss_bytes() - rss0);
    out[1] = heap_bytes() - heap0;
    out[2] = worst;
    out[3] = made;
    out[4] = worst_wall;
    free(coins);
}

/* Taking a coin from an older ticket: each round makes a 4096-coin ticket, then one-coin
 * tickets of its first coin; the fourth of those takes the coin from the 4096-coin ticket,
 * the fifth from a one-coin ticket. out: median ns of each (module), the second the
 * reference. */
static void take_sample(void *ctx, double *out, int nout)
{
    (void)ctx;
    (void)nout;
    double from_large[TAKE_ROUNDS], from_small[TAKE_ROUNDS];
    struct coin *coins = xmalloc(sizeof *coins * TICKET_COINS_MAX);
    for (int round = 0; round < TAKE_ROUNDS; round++) {
        for (int i = 0; i < TICKET_COINS_MAX; i++)
            coins[i] = fill_coin((uint32_t)(round * TICKET_COINS_MAX + i));
        put_coins(coins, TICKET_COINS_MAX);
        rq_body_t large = ticket_body(coins, TICKET_COINS_MAX), one = ticket_body(coins, 1);
        double ns;
        if (timed_get_ticket(&large, &ns, NULL) != RAIDA_STATUS_ALL_PASS)
            die("take: the 4096-coin get_ticket failed");
        for (int k = 0; k < 5; k++) {
            if (timed_get_ticket(&one, &ns, NULL) != RAIDA_STATUS_ALL_PASS)
                die("take: a one-coin get_ticket failed");
            if (k == 3)
                from_large[round] = ns;
            if (k == 4)
                from_small[round] = ns;
        }
        rq_body_free(&large);
        rq_body_free(&one);
    }
    free(coins);
    out[0] = median(from_large, TAKE_ROUNDS);
    out[1] = median(from_small, TAKE_ROUNDS);
}

/* A claim of `ticket` for `claimer` from the dotted address `ip`; its status. */
static unsigned char claim_from_ip(uint8_t claimer, uint32_t ticket, const char *ip)
{
    unsigned char body[16 + 5 + 2] = { 0 };
    body[16] = claimer;
    rq_put_u32be(body + 17, ticket);
    body[21] = body[22] = 0x3E;
    rq_body_t b = { .data = body, .size = sizeof body };
    conn_info_t ci;
    rq_ci_fill(&ci, &b, 0, COIN_ID);
    snprintf(ci.ip, sizeof ci.ip, "%s", ip);
    cmd_validate_ticket(&ci);
    unsigned char status = ci.command_status;
    rq_ci_release(&ci);
    return status;
}

/* Claims with the client's address under RAIDA_HEALING_CLAIM_POLICY=listed, every other
 * RAIDA i configured at 127.0.0.(i+1). out: claims/s of honest peers (each claims 500
 * one-coin tickets from its own address), claims/s of a listed peer guessing ids,
 * guesses of it that reached the pool, claims/s of an unlisted source. */
static void attack_claim_sample(void *ctx, double *out, int nout)
{
    (void)ctx;
    (void)nout;
    setenv("RAIDA_HEALING_CLAIM_POLICY", "listed", 1); /* before this child's first call */
    char ips[25][16];
    for (int i = 0; i < 25; i++) {
        snprintf(ips[i], sizeof ips[i], "127.0.0.%d", i + 1);
        if (i != SELF)
            host_set_peer(i, ips[i], (uint16_t)(18000 + i));
    }
    enum { TICKETS = 500 };
    uint32_t ids[TICKETS];
    for (int k = 0; k < TICKETS; k++) {
        struct coin c = { CLAIM_DEN, (uint32_t)k };
        put_coins(&c, 1);
        rq_body_t body = ticket_body(&c, 1);
        conn_info_t ci;
        rq_ci_fill(&ci, &body, 0, COIN_ID);
        cmd_get_ticket(&ci);
        if (ci.command_status != RAIDA_STATUS_ALL_PASS)
            die("attack bench: get_ticket answered %u", ci.command_status);
        ids[k] = rq_get_u32be(ci.output);
        rq_ci_release(&ci);
        rq_body_free(&body);
    }
    double t0 = now_ns();
    int bad = 0;
    for (int k = 0; k < TICKETS; k++)
        for (int i = 0; i < 25; i++)
            if (i != SELF)
                bad += claim_from_ip((uint8_t)i, ids[k], ips[i]) != RAIDA_STATUS_SUCCESS;
    double honest = (double)TICKETS * 24 / ((now_ns() - t0) / 1e9);
    if (bad)
        fail("%d honest claims were refused", bad);
    /* RAIDA 1's address guessing ids: the first GUESS_BURST + 1 reach the pool */
    int answered_by_pool = 0;
    t0 = now_ns();
    for (int g = 0; g < GUESSER_CLAIMS; g++) {
        uint32_t guess = (uint32_t)rng_next() | 1;
        unsigned char status = claim_from_ip(1, guess, ips[1]);
        answered_by_pool += status != RAIDA_STATUS_NO_TICKET_FOUND;
    }
    double guessing = GUESSER_CLAIMS / ((now_ns() - t0) / 1e9);
    /* the live tickets are refused to it now */
    int stolen = 0;
    for (int k = 0; k < TICKETS; k++)
        stolen += claim_from_ip(1, ids[k], ips[1]) == RAIDA_STATUS_SUCCESS;
    if (stolen)
        fail("a throttled guesser claimed %d live tickets", stolen);
    /* an unlisted source naming RAIDA 2 */
    t0 = now_ns();
    for (int g = 0; g < GUESSER_CLAIMS; g++)
        answered_by_pool += claim_from_ip(2, ids[g % TICKETS], "127.0.0.200") !=
                            RAIDA_STATUS_NO_TICKET_FOUND;
    double unlisted = GUESSER_CLAIMS / ((now_ns() - t0) / 1e9);
    if (answered_by_pool)
        fail("%d refused claims answered other than 43", answered_by_pool);
    out[0] = honest;
    out[1] = guessing;
    out[2] = unlisted;
}

static void attack_rows(void)
{
    char value[40], floor_txt[40], ratio[16], target[32];
    for (int shape = 0; shape < 2; shape++) {
        int per = shape == 0 ? 1 : GET_TICKET_MAX;
        double out[5];
        in_child(fill_sample, &per, out, 5);
        char what[64];
        snprintf(what, sizeof what, "memory: pool full, %.0f x %d-coin tickets", out[3], per);
        snprintf(value, sizeof value, "%.2f MiB RSS", out[0] / 1048576);
        snprintf(floor_txt, sizeof floor_txt, "%.2f MiB heap", out[1] / 1048576);
        /* the bound is on what the pool allocates (heap in use); RSS also keeps the heap's
         * free chunks, e.g. index segments' old tables, which later allocations reuse */
        snprintf(target, sizeof target, "heap <= %.0f MiB: %s", POOL_MEMORY_BOUND_MIB,
                 out[1] / 1048576 <= POOL_MEMORY_BOUND_MIB ? "met" : "MISSED");
        printf("| %-46s | %17s | %17s | %7s | %-16s |\n", what, value, floor_txt, "", target);
        snprintf(what, sizeof what, "get_ticket x%d: slowest call while filling", per);
        snprintf(value, sizeof value, "%.3f ms CPU", out[2] / 1e6);
        snprintf(floor_txt, sizeof floor_txt, "%.3f ms wall", out[4] / 1e6);
        snprintf(target, sizeof target, "<= %.0f ms: %s", LOCK_TARGET_MS,
                 out[2] / 1e6 <= LOCK_TARGET_MS ? "met" : "MISSED");
        printf("| %-46s | %17s | %17s | %7s | %-16s |\n", what, value, floor_txt, "", target);
        fflush(stdout);
    }
    double take[2];
    in_child(take_sample, NULL, take, 2);
    snprintf(value, sizeof value, "%.2f us", take[0] / 1e3);
    snprintf(floor_txt, sizeof floor_txt, "%.2f us", take[1] / 1e3);
    snprintf(ratio, sizeof ratio, "%.2fx", take[0] / take[1]);
    printf("| %-46s | %17s | %17s | %7s | %-16s |\n",
           "get_ticket x1 taking its coin from 4096 coins", value, floor_txt, ratio, "");
    double claims[3];
    in_child(attack_claim_sample, NULL, claims, 3);
    printf("| %-46s | %9.0f claims/s | %17s | %7s | %-16s |\n",
           "validate_ticket, honest listed peers", claims[0], "", "", "");
    printf("| %-46s | %9.0f claims/s | %17s | %7s | %-16s |\n",
           "validate_ticket, a listed peer guessing ids", claims[1], "61 reach the pool", "", "");
    printf("| %-46s | %9.0f claims/s | %17s | %7s | %-16s |\n",
           "validate_ticket, an unlisted source", claims[2], "none reach it", "", "");
    fflush(stdout);
}

/* ---- profile mode ---- */

/* `bench profile get_ticket|find dense|random|scattered [requests]`: the largest batch,
 * module then floor, in this process (no fork), for callgrind (BENCHMARKS.md).
 * `bench profile fix N [requests]`: fixes of N coins against 24 honest fake peers. */
/* CPU time of this process (all threads) in ms: user, or system when `sys`. */
static double cpu_ms(int sys)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    struct timeval t = sys ? ru.ru_stime : ru.ru_utime;
    return (double)t.tv_sec * 1e3 + (double)t.tv_usec / 1e3;
}

static int profile_fix(int argc, char **argv)
{
    int n = atoi(argv[3]);
    int requests = argc > 4 ? atoi(argv[4]) : 20;
    if (n < 1 || n > FIX_MAX || requests < 1)
        die("usage: bench profile fix 1..3000 [requests]");
    struct coin *coins = xmalloc(sizeof *coins * FIX_MAX);
    random_coins(coins, FIX_MAX, 2);
    put_coins(coins, FIX_MAX);
    struct fake_peers peers;
    start_fix_peers(&peers, coins);
    uint32_t ticket[25] = { 0 };
    for (int i = 0; i < 25; i++)
        if (i != SELF)
            ticket[i] = FAKE_PEER_TICKET(FAKE_PEER_LISTS, (uint32_t)n);
    double total = 0, user0 = cpu_ms(0), sys0 = cpu_ms(1);
    for (int r = 0; r < requests; r++)
        total += fix_once(coins, n, ticket);
    double user = cpu_ms(0) - user0, sys = cpu_ms(1) - sys0;
    fake_peers_stop(&peers);
    printf("fix x%d, 24 honest peers: %d requests, mean %.2f ms; CPU per fix of this process "
           "(not the peers): user %.2f ms, system %.2f ms\n", n, requests, total / requests,
           user / requests, sys / requests);
    free(coins);
    return failures ? 1 : 0;
}

static int profile_main(int argc, char **argv)
{
    if (strcmp(argv[2], "fix") == 0)
        return profile_fix(argc, argv);
    enum op op = strcmp(argv[2], "find") == 0 ? FIND : GET_TICKET;
    int layout = -1;
    for (int l = 0; l < LAYOUTS; l++)
        if (strcmp(argv[3], layout_name[l]) == 0)
            layout = l;
    if (layout < 0 || (op == GET_TICKET && strcmp(argv[2], "get_ticket") != 0))
        die("usage: bench profile get_ticket|find dense|random|scattered [requests]");
    int n = op == GET_TICKET ? GET_TICKET_MAX : FIND_MAX;
    int requests = argc > 4 ? atoi(argv[4]) : 100;
    if (requests < 1 || (op == GET_TICKET && requests > POOL_TICKETS))
        die("requests: 1..512 for get_ticket");
    struct coin *coins = xmalloc(sizeof *coins * GET_TICKET_MAX);
    make_coins((enum layout)layout, coins, GET_TICKET_MAX);
    put_coins(coins, GET_TICKET_MAX);
    struct lookup_job job;
    make_lookup_job(&job, op, coins, n);
    double t0 = now_ns();
    for (int r = 0; r < requests; r++)
        module_once(&job);
    double t1 = now_ns();
    unsigned matches = 0;
    for (int r = 0; r < requests; r++)
        matches += floor_once(&job);
    double t2 = now_ns();
    if (matches != job.expect * (unsigned)requests)
        die("floor counted the wrong number of matches");
    printf("%s x%d %s: %d requests, module %.1f ns/coin, floor %.1f ns/coin\n", argv[2], n,
           argv[3], requests, (t1 - t0) / ((double)n * requests),
           (t2 - t1) / ((double)n * requests));
    free_lookup_job(&job);
    free(coins);
    return 0;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "profile") == 0) {
        host_init(SELF, COIN_ID);
        return profile_main(argc, argv);
    }
    if (argc > 1)
        die("usage: bench [profile get_ticket|find dense|random|scattered [requests] | "
            "profile fix N [requests]]");
    if (!getenv("RAIDA_HEALING_PEER_DEADLINE_MS"))
        setenv("RAIDA_HEALING_PEER_DEADLINE_MS", DEFAULT_BENCH_DEADLINE_MS, 1);
    const char *hedge = getenv("RAIDA_HEALING_HEDGE_MS");
    host_init(SELF, COIN_ID);

    printf("raida_healing benchmark: medians of repeated samples through the C ABI; host "
           "harness c_tests/host.c\n");
    printf("fix client: RAIDA_HEALING_PEER_DEADLINE_MS=%s RAIDA_HEALING_HEDGE_MS=%s\n\n",
           getenv("RAIDA_HEALING_PEER_DEADLINE_MS"), hedge ? hedge : "(default)");
    printf("| %-46s | %17s | %17s | %7s | %-16s |\n", "what", "module", "floor / reference",
           "ratio", "target");
    printf("|%s|%s|%s|%s|%s|\n", "------------------------------------------------",
           "-------------------", "-------------------", "---------", "------------------");

    /* first, while the library has not run in this process (its pool and claim policy
     * come into being in each sample's child): the pool's memory, then under attack */
    if (!getenv("BENCH_ONLY")) {
        memory_rows();
        attack_rows();
    }

    struct coin *layout_coins[LAYOUTS];
    for (int l = 0; l < LAYOUTS; l++) {
        layout_coins[l] = xmalloc(sizeof(struct coin) * GET_TICKET_MAX);
        make_coins((enum layout)l, layout_coins[l], GET_TICKET_MAX);
        put_coins(layout_coins[l], GET_TICKET_MAX);
    }
    struct coin *fix_coins = xmalloc(sizeof(struct coin) * FIX_MAX);
    random_coins(fix_coins, FIX_MAX, 2);
    put_coins(fix_coins, FIX_MAX);
    /* before the parent's first call into the library (each sample's child reads
     * RAIDA_HEALING_METRICS_FILE at its own first call); BENCH_ONLY=metrics stops here */
    metrics_rows(layout_coins[DENSE], fix_coins);
    if (getenv("BENCH_ONLY") && strcmp(getenv("BENCH_ONLY"), "metrics") == 0)
        return failures ? 1 : 0;

    for (int op = GET_TICKET; op <= FIND; op++) {
        int largest = op == GET_TICKET ? GET_TICKET_MAX : FIND_MAX;
        lookup_row((enum op)op, layout_coins[DENSE], 1, NULL);
        for (int l = 0; l < LAYOUTS; l++)
            lookup_row((enum op)op, layout_coins[l], 100, layout_name[l]);
        for (int l = 0; l < LAYOUTS; l++)
            lookup_row((enum op)op, layout_coins[l], largest, layout_name[l]);
    }

    claim_row(layout_coins[DENSE], 1, 1);
    claim_row(layout_coins[DENSE], 1, 2);
    claim_row(layout_coins[DENSE], GET_TICKET_MAX, 1);
    claim_row(layout_coins[DENSE], GET_TICKET_MAX, 2);

    struct fake_peers peers;
    start_fix_peers(&peers, fix_coins);
    bench_peers = &peers;
    fix_row("fix x1", fix_coins, 1, 0, 0.5);
    fix_row("fix x100", fix_coins, 100, 0, 0);
    fix_row("fix x3000", fix_coins, FIX_MAX, 0, 2.5);
    fix_row("fix x1", fix_coins, 1, 10, 100);
    cost_rows("fix x1", fix_coins, 1);
    cost_rows("fix x3000", fix_coins, FIX_MAX);
    /* last: they eject peers (and restore them) */
    dead_peer_rows(fix_coins);
    hostile_row(fix_coins);
    fake_peers_stop(&peers);

    printf("\nlayouts: ");
    for (int l = 0; l < LAYOUTS; l++)
        printf("%s = %s%s", layout_name[l], layout_help[l], l + 1 < LAYOUTS ? "; " : "\n");
    printf("fix coins: random sns of one denomination; peers on 127.0.0.1 (c_tests/fake_peer.c)\n");
    for (int l = 0; l < LAYOUTS; l++)
        free(layout_coins[l]);
    free(fix_coins);
    if (failures) {
        fprintf(stderr, "bench: %d wrong answers: the figures above are not valid\n", failures);
        return 1;
    }
    return 0;
}
