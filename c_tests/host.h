/*
 * host.h: a stand-in for the legacy RAIDA server around the healing module.
 *
 * A C program that links host.c and target/release/libraida_healing.so (through
 * include/raida_healing.h) exercises the library exactly as the server does: host.c
 * DEFINES the server's own symbols (config, get_page_by_sn_lock, unlock_page,
 * update_free_pages_bitmap, get_mfs, debug, warning, error) with the legacy layouts of
 * docs/abi.md. Link it WITHOUT -rdynamic: like the real server, the executable then
 * exports exactly the symbols the library refers to.
 *
 * Pages are loaded on demand into a cache (one slot per denomination and page number),
 * each page with its own mutex. A page exists when host_put created it or when the page
 * loader (if any) produced it. Every function here is thread-safe.
 */
#ifndef RAIDA_HOST_H
#define RAIDA_HOST_H

#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#define HOST_TOTAL_RAIDA_SERVERS 25
#define HOST_RECORDS_PER_PAGE 1024
#define HOST_RECORD_BYTES 17
#define HOST_PAGE_DATA_BYTES (HOST_RECORDS_PER_PAGE * HOST_RECORD_BYTES)
#define HOST_TOTAL_PAGES 1000
#define HOST_MIN_DEN (-8)
#define HOST_MAX_DEN 6

/* ---- the server's own definitions, legacy layouts (docs/abi.md) ---- */

/* One cached page of 1024 records (AN 16 bytes, then MFS 1 byte), 17,496 bytes. */
struct page_s {
    unsigned char data[HOST_PAGE_DATA_BYTES];
    int8_t denomination;
    uint16_t no;
    pthread_mutex_t mtx;
    int is_dirty;
    time_t reserved_at;
    uint32_t reserved_by;
    struct page_s *prev, *next;
};

/* The server's global configuration, 544 bytes. */
struct config_s {
    int raida_no;
    int port;
    int flush_freq;
    int integrity_freq;
    int synchronization_enabled;
    int udp_payload_threshold;
    char *cwd;
    unsigned char admin_key[16];
    char *raida_servers[HOST_TOTAL_RAIDA_SERVERS];
    uint16_t raida_servers_ports[HOST_TOTAL_RAIDA_SERVERS];
    struct sockaddr *raida_addrs[HOST_TOTAL_RAIDA_SERVERS];
    uint8_t coin_id;
    uint8_t threads;
    char *proxy_addr;
    int proxy_port;
    unsigned char proxy_key[16];
    uint8_t btc_confirmations;
};

extern struct config_s config;

/* The page holding sn, loaded on demand and returned with its mtx LOCKED; NULL (nothing
 * locked) for a denomination outside -8..6, sn / 1024 >= 1000, or a page that does not
 * exist. */
struct page_s *get_page_by_sn_lock(int8_t den, uint32_t sn);
/* Unlocks what get_page_by_sn_lock locked. */
void unlock_page(struct page_s *page);
/* Marks sn used (is_free 0) or free (1); 0, or -1 on a bad denomination or sn. */
int update_free_pages_bitmap(int8_t den, uint32_t sn, int is_free);
/* The "months from start" stamp (host_set_mfs pins it; else the legacy formula). */
uint8_t get_mfs(void);
/* The server's printf-style log; lines are kept for host_log_count. (Like the server,
 * this defines `error`, so a file including host.h must not include <error.h>.) */
#include "log_functions.h" /* debug, warning, error */

/* ---- harness control (thread-safe) ---- */

/* Fills `data` (17,408 bytes) with page `page_no` of `den`; returns 0 when the page
 * exists, anything else when it does not. Called under the harness's cache lock (so it
 * must not call back into the page functions), once per page it produces until host_init
 * drops the cache; a page it did not produce is asked for again on the next lookup. */
typedef int (*host_page_loader_fn)(int8_t den, uint16_t page_no, unsigned char *data, void *ctx);

/* Frees every page, clears the log and counters, resets config (raida_no, coin_id set,
 * cwd ".", no peers) and get_mfs to the legacy formula. The page loader is kept. Call it
 * while no other thread uses the harness. */
void host_init(int raida_no, uint8_t coin_id);
/* Where missing pages come from; NULL: pages exist only through host_put. */
void host_set_page_loader(host_page_loader_fn fn, void *ctx);
/* config.raida_servers[raida] = "ipv4:port", raida_servers_ports, raida_addrs (an IPv4
 * sockaddr_in). A NULL ipv4 removes the peer. */
void host_set_peer(int raida, const char *ipv4, uint16_t port);
/* Writes the record of sn (creating its page, zeroed, if needed). Not counted as a lock. */
void host_put(int8_t den, uint32_t sn, const unsigned char an[16], uint8_t mfs);
/* Reads the record of sn: 0, or -1 when there is no such page (the loader is asked). */
int host_get(int8_t den, uint32_t sn, unsigned char an[16], uint8_t *mfs);
/* is_dirty of the cached page holding sn; -1 when that page is not cached. */
int host_page_dirty(int8_t den, uint32_t sn);
void host_clear_dirty(int8_t den, uint32_t sn);
/* How often update_free_pages_bitmap(den, sn, 0) was called since host_init. */
int host_bitmap_used_calls(int8_t den, uint32_t sn);
/* Pins what get_mfs() returns. */
void host_set_mfs(uint8_t mfs);
/* Successful get_page_by_sn_lock calls since host_init. */
unsigned long host_page_lock_count(void);
/* Pages locked through get_page_by_sn_lock and not yet unlocked (0 after a command). */
int host_locked_pages(void);
typedef void (*host_page_visitor_fn)(struct page_s *page, void *ctx);
/* Calls fn on every cached page, each under its lock, in (denomination, page) order. */
void host_for_each_page(host_page_visitor_fn fn, void *ctx);
/* Log lines (of the last HOST_LOG_KEEP) containing substring; "" counts them all. */
int host_log_count(const char *substring);
/* Also print log lines to stderr. */
void host_log_echo(int on);

/* ---- extensions ---- */

/* Log lines kept for host_log_count; older ones are dropped. */
#define HOST_LOG_KEEP 4096
/* Misuses of the page API seen since host_init: unlock_page of a page that is not locked
 * (or locked by another thread), of NULL, or of a pointer that is not a cached page. */
int host_misuse_count(void);
/* How often update_free_pages_bitmap(den, sn, 1) was called since host_init. */
int host_bitmap_free_calls(int8_t den, uint32_t sn);

#endif /* RAIDA_HOST_H */
