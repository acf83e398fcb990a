/*
 * test_host.c: the harness itself (host.c, request.c) behaves as the legacy server
 * whose part it plays, so that what the other C tests, the benchmark and the test node
 * observe through it is the module's doing. Ends with one group that runs the module
 * over pages produced by a page loader, as the node does with page files.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "host.h"
#include "raida_healing.h"
#include "request.h"

static void group_crc_and_bodies(void)
{
    unsigned char twelve[12];
    for (int i = 0; i < 12; i++)
        twelve[i] = (unsigned char)i;
    CHECK_INT(rq_crc32(twelve, 12), 0x9270C965u); /* docs/wire-protocol.md's vector */
    CHECK_INT(rq_crc32((const unsigned char *)"123456789", 9), 0xCBF43926u); /* the CRC-32 check value */
    CHECK_INT(rq_crc32(twelve, 0), 0);

    const unsigned char payload[3] = { 0xAA, 0xBB, 0xCC };
    rq_body_t legacy = rq_legacy_body(twelve, payload, 3);
    const unsigned char want_legacy[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x92, 0x70, 0xC9, 0x65,
                                          0xAA, 0xBB, 0xCC, 0x3E, 0x3E };
    CHECK_BYTES(legacy.data, legacy.size, want_legacy, sizeof want_legacy);
    rq_body_free(&legacy);

    rq_body_t random_challenge = rq_legacy_body(NULL, payload, 3);
    CHECK_INT(random_challenge.size, 21);
    CHECK_INT(rq_get_u32be(random_challenge.data + 12), rq_crc32(random_challenge.data, 12));
    rq_body_free(&random_challenge);

    unsigned char hmac[32];
    memset(hmac, 0x11, sizeof hmac);
    rq_body_t modern = rq_modern_body(hmac, payload, 3);
    CHECK_INT(modern.size, 3 + 32 + 2);
    CHECK_BYTES(modern.data, 3, payload, 3);
    CHECK_BYTES(modern.data + 3, 32, hmac, 32);
    CHECK(modern.data[35] == 0x3E && modern.data[36] == 0x3E, "modern trailer");
    rq_body_free(&modern);

    rq_body_t by_type = rq_body_for(5, payload, 3);
    CHECK_INT(by_type.size, 37);
    rq_body_free(&by_type);
    by_type = rq_body_for(2, payload, 3);
    CHECK_INT(by_type.size, 21);
    rq_body_free(&by_type);

    unsigned char coin[5];
    CHECK_INT(rq_put_coin(coin, -8, 0x01020304), 5);
    const unsigned char want_coin[] = { 0xF8, 1, 2, 3, 4 };
    CHECK_BYTES(coin, 5, want_coin, 5);

    conn_info_t ci;
    memset(&ci, 0x77, sizeof ci);
    rq_body_t body = rq_legacy_body(twelve, payload, 3);
    rq_ci_fill(&ci, &body, 1, 9);
    CHECK(ci.body == body.data && ci.body_size == 21 && ci.encryption_type == 1 && ci.coin_id == 9 &&
              ci.output == NULL && ci.output_size == 0 && ci.sk == 0,
          "rq_ci_fill");
    rq_body_free(&body);
}

static void group_pages(void)
{
    host_init(3, 6);
    CHECK_INT(config.raida_no, 3);
    CHECK_INT(config.coin_id, 6);
    CHECK(config.cwd && strcmp(config.cwd, ".") == 0, "config.cwd");

    /* No page exists before host_put; bad coordinates never do. */
    CHECK(get_page_by_sn_lock(1, 5) == NULL, "page before host_put");
    CHECK_INT(host_page_lock_count(), 0);
    unsigned char an[16], got[16];
    memset(an, 0x42, sizeof an);
    host_put(1, 1024 + 5, an, 9);
    struct page_s *page = get_page_by_sn_lock(1, 1024 + 7);
    CHECK(page != NULL, "page after host_put");
    if (page) {
        CHECK(page->denomination == 1 && page->no == 1, "page %d/%u", page->denomination, page->no);
        CHECK_BYTES(page->data + 5 * 17, 16, an, 16);
        CHECK_INT(page->data[5 * 17 + 16], 9);
        CHECK_INT(pthread_mutex_trylock(&page->mtx), EBUSY); /* returned locked */
        CHECK_INT(host_locked_pages(), 1);
        page->data[6 * 17] = 0x99;
        page->is_dirty = 1;
        unlock_page(page);
    }
    CHECK_INT(host_locked_pages(), 0);
    CHECK_INT(host_page_lock_count(), 1);
    CHECK_INT(host_misuse_count(), 0);
    CHECK_INT(host_page_dirty(1, 1024), 1);
    host_clear_dirty(1, 1024);
    CHECK_INT(host_page_dirty(1, 1024), 0);
    CHECK_INT(host_page_dirty(1, 0), -1);
    uint8_t mfs = 0;
    CHECK_INT(host_get(1, 1024 + 6, got, &mfs), 0);
    CHECK_INT(got[0], 0x99);
    CHECK_INT(host_get(1, 0, got, &mfs), -1);

    const struct { int8_t den; uint32_t sn; } bad[] = {
        { -9, 0 }, { 7, 0 }, { 1, 1000 * 1024 }, { 1, 0xFFFFFFFFu }, { -128, 0 }, { 127, 0 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(get_page_by_sn_lock(bad[i].den, bad[i].sn) == NULL, "den %d sn %u", bad[i].den, bad[i].sn);
        CHECK_INT(update_free_pages_bitmap(bad[i].den, bad[i].sn, 0), -1);
    }
    host_put(-8, 999 * 1024 + 1023, an, 1);
    page = get_page_by_sn_lock(-8, 1023999);
    CHECK(page != NULL && page->denomination == -8 && page->no == 999, "last page of den -8");
    if (page)
        unlock_page(page);

    /* Misuse is counted, not crashed on: NULL, a page not locked, a foreign pointer. */
    unlock_page(NULL);
    CHECK_INT(host_misuse_count(), 1);
    if (page)
        unlock_page(page);
    CHECK_INT(host_misuse_count(), 2);
    static struct page_s foreign;
    unlock_page(&foreign);
    CHECK_INT(host_misuse_count(), 3);
    CHECK_INT(host_locked_pages(), 0);
    CHECK_INT(host_log_count("unlock_page"), 3);

    /* The bitmap counts calls per serial number. */
    CHECK_INT(update_free_pages_bitmap(2, 77, 0), 0);
    CHECK_INT(update_free_pages_bitmap(2, 77, 0), 0);
    CHECK_INT(update_free_pages_bitmap(2, 77, 1), 0);
    CHECK_INT(host_bitmap_used_calls(2, 77), 2);
    CHECK_INT(host_bitmap_free_calls(2, 77), 1);
    CHECK_INT(host_bitmap_used_calls(2, 78), 0);

    /* host_init starts over. */
    host_init(4, 1);
    CHECK(get_page_by_sn_lock(1, 1024) == NULL, "pages dropped by host_init");
    CHECK_INT(host_bitmap_used_calls(2, 77), 0);
    CHECK_INT(host_misuse_count(), 0);
    CHECK_INT(host_page_lock_count(), 0);
    CHECK_INT(host_log_count(""), 0);
}

static void group_config_and_log(void)
{
    host_init(12, 3);
    host_set_peer(5, "127.0.0.1", 18005);
    CHECK(config.raida_servers[5] && strcmp(config.raida_servers[5], "127.0.0.1:18005") == 0,
          "raida_servers[5] = %s", config.raida_servers[5] ? config.raida_servers[5] : "NULL");
    CHECK_INT(config.raida_servers_ports[5], 18005);
    const struct sockaddr_in *sin = (const struct sockaddr_in *)config.raida_addrs[5];
    CHECK(sin && sin->sin_family == AF_INET && ntohs(sin->sin_port) == 18005 &&
              ntohl(sin->sin_addr.s_addr) == 0x7F000001u,
          "raida_addrs[5]");
    CHECK(config.raida_addrs[4] == NULL && config.raida_servers[4] == NULL, "no peer 4");
    host_set_peer(5, NULL, 0);
    CHECK(config.raida_addrs[5] == NULL && config.raida_servers[5] == NULL &&
              config.raida_servers_ports[5] == 0,
          "peer 5 removed");
    host_set_peer(24, "10.1.2.3", 1);
    host_init(12, 3);
    CHECK(config.raida_addrs[24] == NULL, "host_init drops peers");

    /* get_mfs: the legacy formula until pinned. */
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    uint8_t legacy = (uint8_t)((tm.tm_year - 123) * 12 + (tm.tm_mon - 1));
    uint8_t mfs = get_mfs();
    CHECK(mfs == legacy || mfs == (uint8_t)(legacy + 1), "get_mfs %u, want %u", mfs, legacy);
    host_set_mfs(200);
    CHECK_INT(get_mfs(), 200);
    host_init(12, 3);
    CHECK(get_mfs() != 200 || legacy == 200, "host_init unpins get_mfs");

    debug("alpha %d", 1);
    warning("beta %s", "two");
    error("gamma");
    CHECK_INT(host_log_count("alpha 1"), 1);
    CHECK_INT(host_log_count("beta two"), 1);
    CHECK_INT(host_log_count("a"), 3);
    CHECK_INT(host_log_count(""), 3);
    for (int i = 0; i < HOST_LOG_KEEP + 10; i++)
        debug("line %d", i);
    CHECK_INT(host_log_count(""), HOST_LOG_KEEP);
    CHECK_INT(host_log_count("alpha"), 0);
}

/* ---- the page loader ---- */

struct loader_state {
    atomic_int calls;
};

/* Pages of denomination 3 exist; record k of page p holds AN bytes (p + k + i) and MFS 1. */
static int den3_loader(int8_t den, uint16_t page_no, unsigned char *data, void *ctx)
{
    struct loader_state *state = ctx;
    atomic_fetch_add(&state->calls, 1);
    if (den != 3)
        return -1;
    for (int k = 0; k < HOST_RECORDS_PER_PAGE; k++) {
        for (int i = 0; i < 16; i++)
            data[k * 17 + i] = (unsigned char)(page_no + k + i);
        data[k * 17 + 16] = 1;
    }
    return 0;
}

static void loaded_an(uint32_t sn, unsigned char an[16])
{
    for (int i = 0; i < 16; i++)
        an[i] = (unsigned char)(sn / 1024 + sn % 1024 + (uint32_t)i);
}

static void *lock_page_40(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++) {
        struct page_s *page = get_page_by_sn_lock(3, 40 * 1024 + (uint32_t)i);
        if (!page)
            return (void *)1;
        page->reserved_by++; /* a data race here would be a locking bug */
        unlock_page(page);
    }
    return NULL;
}

struct visit_log {
    int pages, locked_inside, ordered;
    int last_key;
};

static void visitor(struct page_s *page, void *ctx)
{
    struct visit_log *log = ctx;
    log->pages++;
    log->locked_inside += pthread_mutex_trylock(&page->mtx) == EBUSY;
    int key = (page->denomination + 8) * HOST_TOTAL_PAGES + page->no;
    log->ordered &= key > log->last_key;
    log->last_key = key;
}

static void group_loader(void)
{
    static struct loader_state state;
    host_init(0, 1);
    host_set_page_loader(den3_loader, &state);

    /* Loaded on demand, once per page, even when threads race for it. */
    pthread_t threads[4];
    for (int t = 0; t < 4; t++)
        pthread_create(&threads[t], NULL, lock_page_40, NULL);
    int thread_failures = 0;
    for (int t = 0; t < 4; t++) {
        void *rv = NULL;
        pthread_join(threads[t], &rv);
        thread_failures += rv != NULL;
    }
    CHECK_INT(thread_failures, 0);
    CHECK_INT(atomic_load(&state.calls), 1);
    struct page_s *page = get_page_by_sn_lock(3, 40 * 1024);
    CHECK(page && page->reserved_by == 200, "4 threads x 50 locked increments");
    if (page)
        unlock_page(page);
    CHECK_INT(host_locked_pages(), 0);

    /* A page the loader does not produce does not exist (and is asked for again). */
    CHECK(get_page_by_sn_lock(4, 0) == NULL, "den 4 is not loaded");
    CHECK(get_page_by_sn_lock(4, 0) == NULL, "den 4 is not loaded");
    CHECK_INT(atomic_load(&state.calls), 3);
    unsigned char an[16];
    CHECK_INT(host_get(4, 0, an, NULL), -1);
    /* host_put creates a page the loader lacks. */
    memset(an, 7, sizeof an);
    host_put(4, 5, an, 2);
    CHECK_INT(host_get(4, 5, an, NULL), 0);

    /* The module sees loaded pages as the server's: find on den 3. */
    unsigned char payload[2 * 37];
    unsigned char stored[16], other[16];
    loaded_an(3 * 1024 + 9, stored);
    memset(other, 0xEE, sizeof other);
    rq_put_coin(payload, 3, 3 * 1024 + 9);
    memcpy(payload + 5, stored, 16);
    memcpy(payload + 21, other, 16);
    loaded_an(500 * 1024 + 1, stored);
    rq_put_coin(payload + 37, 3, 500 * 1024 + 1);
    memcpy(payload + 42, other, 16);
    memcpy(payload + 58, stored, 16);
    rq_result_t r = rq_call(cmd_find, 0, 1, payload, sizeof payload);
    const unsigned char want[] = { 1, 2 };
    CHECK_INT(r.status, RAIDA_STATUS_FIND_MIXED);
    CHECK_BYTES(r.output, r.output_size, want, 2);
    rq_result_free(&r);
    CHECK_INT(host_locked_pages(), 0);

    /* host_for_each_page: every cached page, locked, in (den, page) order. */
    struct visit_log log = { .ordered = 1, .last_key = -1 };
    host_for_each_page(visitor, &log);
    CHECK_INT(log.pages, 4); /* den 3 pages 3, 40, 500; den 4 page 0 */
    CHECK_INT(log.locked_inside, 4);
    CHECK(log.ordered, "pages visited in (den, page) order");
    CHECK_INT(host_locked_pages(), 0);

    /* host_init keeps the loader. */
    host_init(0, 1);
    page = get_page_by_sn_lock(3, 0);
    CHECK(page != NULL, "loader kept across host_init");
    if (page)
        unlock_page(page);
    host_set_page_loader(NULL, NULL);
    CHECK(get_page_by_sn_lock(3, 7 * 1024) == NULL, "without a loader a page needs host_put");
    CHECK_INT(host_misuse_count(), 0);
}

int main(void)
{
    run_group("crc_and_bodies", group_crc_and_bodies);
    run_group("pages", group_pages);
    run_group("config_and_log", group_config_and_log);
    run_group("loader", group_loader);
    return check_summary();
}
