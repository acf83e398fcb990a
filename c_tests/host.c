/*
 * host.c: the legacy server's symbols around the healing module, for C tests, the
 * benchmark harness and the test node. See host.h for the contract.
 *
 * Lock order: cache_mtx may be held while a page is allocated or loaded, never while a
 * page mutex is taken; a page mutex is taken with no harness lock held. Pages are freed
 * only by host_init, which callers run while nothing else uses the harness.
 */
#define _GNU_SOURCE
#include "host.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEN_COUNT (HOST_MAX_DEN - HOST_MIN_DEN + 1)

/* The server's global configuration; the library reads it through a weak reference. */
struct config_s config;

static pthread_mutex_t cache_mtx = PTHREAD_MUTEX_INITIALIZER;
/* Written under cache_mtx; read without it on the fast path (pages live until host_init). */
static struct page_s *_Atomic cache[DEN_COUNT][HOST_TOTAL_PAGES];
static host_page_loader_fn page_loader;
static void *page_loader_ctx;

static atomic_ulong lock_count;
static atomic_int locked_pages;
static atomic_int misuse_count;
static atomic_int mfs_pinned;
static atomic_uint mfs_value;

/* Per-page counts of update_free_pages_bitmap calls, allocated when first needed. */
struct bitmap_counts {
    int used[HOST_RECORDS_PER_PAGE];
    int freed[HOST_RECORDS_PER_PAGE];
};
static pthread_mutex_t bitmap_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct bitmap_counts *bitmap[DEN_COUNT][HOST_TOTAL_PAGES];

static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;
static char *log_lines[HOST_LOG_KEEP];
static unsigned long log_next; /* lines ever logged since host_init */
static atomic_int log_echo;

static char default_cwd[] = ".";

/* Cache coordinates of (den, sn); 0, or -1 when no server holds such a coin. */
static int coords(int8_t den, uint32_t sn, int *d, int *p)
{
    if (den < HOST_MIN_DEN || den > HOST_MAX_DEN || sn / HOST_RECORDS_PER_PAGE >= HOST_TOTAL_PAGES)
        return -1;
    *d = den - HOST_MIN_DEN;
    *p = (int)(sn / HOST_RECORDS_PER_PAGE);
    return 0;
}

static struct page_s *new_page(int8_t den, uint16_t no)
{
    struct page_s *page = calloc(1, sizeof *page);
    if (!page) {
        fprintf(stderr, "host: out of memory for a page\n");
        abort();
    }
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    /* Error-checking mutexes turn a bad unlock into EPERM, which counts as a misuse. */
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&page->mtx, &attr);
    pthread_mutexattr_destroy(&attr);
    page->denomination = den;
    page->no = no;
    return page;
}

static void free_page(struct page_s *page)
{
    pthread_mutex_destroy(&page->mtx);
    free(page);
}

/* The cached page of (den, sn), loaded if missing; with `create`, a missing page that the
 * loader does not produce is created zeroed. Returned unlocked; NULL when none. */
static struct page_s *find_page(int8_t den, uint32_t sn, int create)
{
    int d, p;
    if (coords(den, sn, &d, &p) != 0)
        return NULL;
    struct page_s *page = atomic_load_explicit(&cache[d][p], memory_order_acquire);
    if (page)
        return page;
    pthread_mutex_lock(&cache_mtx);
    page = atomic_load_explicit(&cache[d][p], memory_order_relaxed);
    if (!page && (page_loader || create)) {
        page = new_page(den, (uint16_t)p);
        if (page_loader && page_loader(den, (uint16_t)p, page->data, page_loader_ctx) != 0) {
            if (create) {
                memset(page->data, 0, sizeof page->data);
            } else {
                free_page(page);
                page = NULL;
            }
        }
        atomic_store_explicit(&cache[d][p], page, memory_order_release);
    }
    pthread_mutex_unlock(&cache_mtx);
    return page;
}

/* The cached page of (den, sn) without loading; NULL when not cached. */
static struct page_s *cached_page(int8_t den, uint32_t sn)
{
    int d, p;
    if (coords(den, sn, &d, &p) != 0)
        return NULL;
    return atomic_load_explicit(&cache[d][p], memory_order_acquire);
}

static void lock_or_die(struct page_s *page)
{
    int rc = pthread_mutex_lock(&page->mtx);
    if (rc != 0) {
        /* EDEADLK: this thread already holds the page; the module would hang forever. */
        fprintf(stderr, "host: pthread_mutex_lock of page %d/%u failed (%s)\n",
                page->denomination, page->no, strerror(rc));
        abort();
    }
}

/* ---- the server's functions ---- */

struct page_s *get_page_by_sn_lock(int8_t den, uint32_t sn)
{
    struct page_s *page = find_page(den, sn, 0);
    if (!page)
        return NULL;
    lock_or_die(page);
    atomic_fetch_add(&lock_count, 1);
    atomic_fetch_add(&locked_pages, 1);
    return page;
}

void unlock_page(struct page_s *page)
{
    if (!page) {
        atomic_fetch_add(&misuse_count, 1);
        error("host: unlock_page(NULL)");
        return;
    }
    /* A page knows its coordinates; a pointer the cache does not hold there is bogus. */
    int d, p;
    if (coords(page->denomination, (uint32_t)page->no * HOST_RECORDS_PER_PAGE, &d, &p) != 0 ||
        atomic_load_explicit(&cache[d][p], memory_order_acquire) != page) {
        atomic_fetch_add(&misuse_count, 1);
        error("host: unlock_page(%p) of a pointer that is not a cached page", (void *)page);
        return;
    }
    int rc = pthread_mutex_unlock(&page->mtx);
    if (rc != 0) {
        atomic_fetch_add(&misuse_count, 1);
        error("host: unlock_page of page %d/%u failed (%s)", page->denomination, page->no,
              strerror(rc));
        return;
    }
    atomic_fetch_sub(&locked_pages, 1);
}

int update_free_pages_bitmap(int8_t den, uint32_t sn, int is_free)
{
    int d, p;
    if (coords(den, sn, &d, &p) != 0)
        return -1;
    pthread_mutex_lock(&bitmap_mtx);
    struct bitmap_counts *counts = bitmap[d][p];
    if (!counts) {
        counts = calloc(1, sizeof *counts);
        if (!counts) {
            pthread_mutex_unlock(&bitmap_mtx);
            return -1;
        }
        bitmap[d][p] = counts;
    }
    if (is_free)
        counts->freed[sn % HOST_RECORDS_PER_PAGE]++;
    else
        counts->used[sn % HOST_RECORDS_PER_PAGE]++;
    pthread_mutex_unlock(&bitmap_mtx);
    return 0;
}

uint8_t get_mfs(void)
{
    if (atomic_load(&mfs_pinned))
        return (uint8_t)atomic_load(&mfs_value);
    /* The legacy server's formula, from UTC. */
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    return (uint8_t)((tm.tm_year - 123) * 12 + (tm.tm_mon - 1));
}

static void log_line(const char *level, const char *fmt, va_list ap)
{
    char *line = NULL;
    if (vasprintf(&line, fmt, ap) < 0)
        return;
    if (atomic_load(&log_echo))
        fprintf(stderr, "[%s] %s\n", level, line);
    pthread_mutex_lock(&log_mtx);
    unsigned long slot = log_next % HOST_LOG_KEEP;
    free(log_lines[slot]);
    log_lines[slot] = line;
    log_next++;
    pthread_mutex_unlock(&log_mtx);
}

HOST_LOG_FUNCTIONS(log_line)

/* ---- harness control ---- */

static void free_peer(int raida)
{
    free(config.raida_servers[raida]);
    free(config.raida_addrs[raida]);
    config.raida_servers[raida] = NULL;
    config.raida_addrs[raida] = NULL;
    config.raida_servers_ports[raida] = 0;
}

void host_init(int raida_no, uint8_t coin_id)
{
    pthread_mutex_lock(&cache_mtx);
    for (int d = 0; d < DEN_COUNT; d++)
        for (int p = 0; p < HOST_TOTAL_PAGES; p++)
            if (cache[d][p]) {
                free_page(cache[d][p]);
                atomic_store(&cache[d][p], NULL);
            }
    for (int i = 0; i < HOST_TOTAL_RAIDA_SERVERS; i++)
        free_peer(i);
    memset(&config, 0, sizeof config);
    config.raida_no = raida_no;
    config.coin_id = coin_id;
    config.cwd = default_cwd;
    config.threads = 1;
    pthread_mutex_unlock(&cache_mtx);

    pthread_mutex_lock(&bitmap_mtx);
    for (int d = 0; d < DEN_COUNT; d++)
        for (int p = 0; p < HOST_TOTAL_PAGES; p++) {
            free(bitmap[d][p]);
            bitmap[d][p] = NULL;
        }
    pthread_mutex_unlock(&bitmap_mtx);

    pthread_mutex_lock(&log_mtx);
    for (int i = 0; i < HOST_LOG_KEEP; i++) {
        free(log_lines[i]);
        log_lines[i] = NULL;
    }
    log_next = 0;
    pthread_mutex_unlock(&log_mtx);

    atomic_store(&lock_count, 0);
    atomic_store(&locked_pages, 0);
    atomic_store(&misuse_count, 0);
    atomic_store(&mfs_pinned, 0);
}

void host_set_page_loader(host_page_loader_fn fn, void *ctx)
{
    pthread_mutex_lock(&cache_mtx);
    page_loader = fn;
    page_loader_ctx = ctx;
    pthread_mutex_unlock(&cache_mtx);
}

void host_set_peer(int raida, const char *ipv4, uint16_t port)
{
    if (raida < 0 || raida >= HOST_TOTAL_RAIDA_SERVERS)
        return;
    struct sockaddr_in *sin = NULL;
    char *server = NULL;
    if (ipv4) {
        sin = calloc(1, sizeof *sin);
        if (!sin || inet_pton(AF_INET, ipv4, &sin->sin_addr) != 1 ||
            asprintf(&server, "%s:%u", ipv4, (unsigned)port) < 0) {
            fprintf(stderr, "host: bad peer address %s\n", ipv4);
            abort();
        }
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
    }
    pthread_mutex_lock(&cache_mtx);
    free_peer(raida);
    if (sin) {
        config.raida_servers[raida] = server;
        config.raida_servers_ports[raida] = port;
        config.raida_addrs[raida] = (struct sockaddr *)sin;
    }
    pthread_mutex_unlock(&cache_mtx);
}

void host_put(int8_t den, uint32_t sn, const unsigned char an[16], uint8_t mfs)
{
    struct page_s *page = find_page(den, sn, 1);
    if (!page) {
        fprintf(stderr, "host_put: no server holds denomination %d sn %u\n", den, sn);
        abort();
    }
    lock_or_die(page);
    unsigned char *record = page->data + (sn % HOST_RECORDS_PER_PAGE) * HOST_RECORD_BYTES;
    memcpy(record, an, 16);
    record[16] = mfs;
    pthread_mutex_unlock(&page->mtx);
}

int host_get(int8_t den, uint32_t sn, unsigned char an[16], uint8_t *mfs)
{
    struct page_s *page = find_page(den, sn, 0);
    if (!page)
        return -1;
    lock_or_die(page);
    const unsigned char *record = page->data + (sn % HOST_RECORDS_PER_PAGE) * HOST_RECORD_BYTES;
    if (an)
        memcpy(an, record, 16);
    if (mfs)
        *mfs = record[16];
    pthread_mutex_unlock(&page->mtx);
    return 0;
}

int host_page_dirty(int8_t den, uint32_t sn)
{
    struct page_s *page = cached_page(den, sn);
    if (!page)
        return -1;
    lock_or_die(page);
    int dirty = page->is_dirty;
    pthread_mutex_unlock(&page->mtx);
    return dirty;
}

void host_clear_dirty(int8_t den, uint32_t sn)
{
    struct page_s *page = cached_page(den, sn);
    if (!page)
        return;
    lock_or_die(page);
    page->is_dirty = 0;
    pthread_mutex_unlock(&page->mtx);
}

static int bitmap_calls(int8_t den, uint32_t sn, int freed)
{
    int d, p;
    if (coords(den, sn, &d, &p) != 0)
        return 0;
    pthread_mutex_lock(&bitmap_mtx);
    const struct bitmap_counts *counts = bitmap[d][p];
    int n = 0;
    if (counts)
        n = freed ? counts->freed[sn % HOST_RECORDS_PER_PAGE] : counts->used[sn % HOST_RECORDS_PER_PAGE];
    pthread_mutex_unlock(&bitmap_mtx);
    return n;
}

int host_bitmap_used_calls(int8_t den, uint32_t sn)
{
    return bitmap_calls(den, sn, 0);
}

int host_bitmap_free_calls(int8_t den, uint32_t sn)
{
    return bitmap_calls(den, sn, 1);
}

void host_set_mfs(uint8_t mfs)
{
    atomic_store(&mfs_value, mfs);
    atomic_store(&mfs_pinned, 1);
}

unsigned long host_page_lock_count(void)
{
    return atomic_load(&lock_count);
}

int host_locked_pages(void)
{
    return atomic_load(&locked_pages);
}

int host_misuse_count(void)
{
    return atomic_load(&misuse_count);
}

void host_for_each_page(host_page_visitor_fn fn, void *ctx)
{
    static struct page_s *snapshot[DEN_COUNT * HOST_TOTAL_PAGES];
    static pthread_mutex_t visit_mtx = PTHREAD_MUTEX_INITIALIZER;
    /* One visit at a time: the snapshot array is shared. */
    pthread_mutex_lock(&visit_mtx);
    size_t n = 0;
    pthread_mutex_lock(&cache_mtx);
    for (int d = 0; d < DEN_COUNT; d++)
        for (int p = 0; p < HOST_TOTAL_PAGES; p++)
            if (cache[d][p])
                snapshot[n++] = cache[d][p];
    pthread_mutex_unlock(&cache_mtx);
    for (size_t i = 0; i < n; i++) {
        lock_or_die(snapshot[i]);
        fn(snapshot[i], ctx);
        pthread_mutex_unlock(&snapshot[i]->mtx);
    }
    pthread_mutex_unlock(&visit_mtx);
}

int host_log_count(const char *substring)
{
    int n = 0;
    pthread_mutex_lock(&log_mtx);
    for (int i = 0; i < HOST_LOG_KEEP; i++)
        if (log_lines[i] && strstr(log_lines[i], substring))
            n++;
    pthread_mutex_unlock(&log_mtx);
    return n;
}

void host_log_echo(int on)
{
    atomic_store(&log_echo, on != 0);
}
