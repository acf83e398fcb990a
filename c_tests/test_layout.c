/*
 * test_layout.c: the public header and the harness's server structs against the layouts
 * measured on the legacy server (docs/abi.md). Every offset and size is checked twice:
 * at compile time (a wrong layout does not build) and at run time (counted and printed).
 */
#include <stddef.h>
#include <stdint.h>

#include "check.h"
#include "host.h"
#include "raida_healing.h"

#define LAYOUT(type, field, offset)                                                  \
    _Static_assert(offsetof(type, field) == (offset), #type "." #field " offset");    \
    CHECK(offsetof(type, field) == (offset), "offsetof(%s, %s) = %zu, want %d", #type, \
          #field, offsetof(type, field), (offset))

#define FIELD_SIZE(type, field, size)                                                \
    _Static_assert(sizeof(((type *)0)->field) == (size), #type "." #field " size");  \
    CHECK(sizeof(((type *)0)->field) == (size), "sizeof %s.%s = %zu, want %d", #type, \
          #field, sizeof(((type *)0)->field), (size))

/* Offset and size of one field. */
#define FIELD(type, field, offset, size) \
    LAYOUT(type, field, offset);         \
    FIELD_SIZE(type, field, size)

#define SIZE_ALIGN(type, size, align)                                                 \
    _Static_assert(sizeof(type) == (size), #type " size");                            \
    _Static_assert(_Alignof(type) == (align), #type " alignment");                    \
    CHECK(sizeof(type) == (size), "sizeof(%s) = %zu, want %d", #type, sizeof(type), (size)); \
    CHECK(_Alignof(type) == (align), "_Alignof(%s) = %zu, want %d", #type, _Alignof(type), (align))

/* Fields whose C type must also match (signedness is part of the ABI); compile time only. */
#define TYPE_IS(type, field, ctype) \
    _Static_assert(_Generic(((type *)0)->field, ctype: 1, default: 0), #type "." #field " type")

/* Offset, size and C type of one field. */
#define TYPED_FIELD(type, field, offset, size, ctype) \
    FIELD(type, field, offset, size);                 \
    TYPE_IS(type, field, ctype)

static void conn_info(void)
{
    SIZE_ALIGN(conn_info_t, 336, 8);
    TYPED_FIELD(conn_info_t, sa, 0, 8, struct sockaddr *);
    TYPED_FIELD(conn_info_t, sk, 8, 4, int);
    FIELD(conn_info_t, e0, 12, 1);
    FIELD(conn_info_t, e1, 13, 1);
    TYPED_FIELD(conn_info_t, body_size, 16, 4, int);
    FIELD(conn_info_t, body, 24, 8);
    TYPED_FIELD(conn_info_t, encryption_denomination, 32, 1, int8_t);
    TYPED_FIELD(conn_info_t, encryption_sn, 36, 4, uint32_t);
    TYPED_FIELD(conn_info_t, encryption_denomination2, 40, 1, int8_t);
    FIELD(conn_info_t, encryption_sn2, 44, 4);
    TYPED_FIELD(conn_info_t, encryption_type, 48, 4, int);
    FIELD(conn_info_t, encryption_an, 52, 16);
    FIELD(conn_info_t, encryption_an_256, 68, 32);
    FIELD(conn_info_t, nonce, 100, 16);
    FIELD(conn_info_t, request_nonce, 116, 24);
    FIELD(conn_info_t, response_nonce, 140, 24);
    TYPED_FIELD(conn_info_t, output_size, 164, 4, int);
    FIELD(conn_info_t, output, 168, 8);
    FIELD(conn_info_t, command_status, 176, 1);
    FIELD(conn_info_t, challenge_hash, 177, 16);
    TYPED_FIELD(conn_info_t, start_time, 200, 16, struct timeval);
    FIELD(conn_info_t, cgroup, 216, 1);
    FIELD(conn_info_t, command, 217, 1);
    FIELD(conn_info_t, shard_id, 218, 1);
    FIELD(conn_info_t, ip, 219, 16);
    TYPED_FIELD(conn_info_t, exec_time, 240, 8, unsigned long);
    TYPED_FIELD(conn_info_t, coin_id, 248, 1, uint8_t);
    FIELD(conn_info_t, state, 252, 4);
    FIELD(conn_info_t, read_buf, 256, 48);
    FIELD(conn_info_t, bytes_to_read, 304, 4);
    FIELD(conn_info_t, bytes_read, 308, 4);
    FIELD(conn_info_t, write_buf, 312, 8);
    FIELD(conn_info_t, bytes_to_write, 320, 4);
    FIELD(conn_info_t, bytes_written, 324, 4);
    FIELD(conn_info_t, is_udp_pooled, 328, 4);
}

static void coin(void)
{
    SIZE_ALIGN(coin_t, 8, 4);
    TYPED_FIELD(coin_t, denomination, 0, 1, int8_t);
    TYPED_FIELD(coin_t, sn, 4, 4, uint32_t);
}

static void validate_ticket_arg(void)
{
    SIZE_ALIGN(struct validate_ticket_arg_t, 32, 8);
    TYPED_FIELD(struct validate_ticket_arg_t, raida_idx, 0, 1, int8_t);
    TYPED_FIELD(struct validate_ticket_arg_t, ticket, 4, 4, uint32_t);
    TYPED_FIELD(struct validate_ticket_arg_t, ci, 8, 8, conn_info_t *);
    TYPED_FIELD(struct validate_ticket_arg_t, rv_coins, 16, 8, coin_t *);
    TYPED_FIELD(struct validate_ticket_arg_t, rv_num_coins, 24, 4, uint32_t);
}

static void page(void)
{
    SIZE_ALIGN(struct page_s, 17496, 8);
    FIELD(struct page_s, data, 0, 17408);
    TYPED_FIELD(struct page_s, denomination, 17408, 1, int8_t);
    TYPED_FIELD(struct page_s, no, 17410, 2, uint16_t);
    FIELD(struct page_s, mtx, 17416, 40);
    FIELD(struct page_s, is_dirty, 17456, 4);
    FIELD(struct page_s, reserved_at, 17464, 8);
    FIELD(struct page_s, reserved_by, 17472, 4);
    FIELD(struct page_s, prev, 17480, 8);
    FIELD(struct page_s, next, 17488, 8);
}

static void config_struct(void)
{
    SIZE_ALIGN(struct config_s, 544, 8);
    FIELD(struct config_s, raida_no, 0, 4);
    FIELD(struct config_s, port, 4, 4);
    FIELD(struct config_s, flush_freq, 8, 4);
    FIELD(struct config_s, integrity_freq, 12, 4);
    FIELD(struct config_s, synchronization_enabled, 16, 4);
    FIELD(struct config_s, udp_payload_threshold, 20, 4);
    FIELD(struct config_s, cwd, 24, 8);
    FIELD(struct config_s, admin_key, 32, 16);
    FIELD(struct config_s, raida_servers, 48, 200);
    FIELD(struct config_s, raida_servers_ports, 248, 50);
    FIELD(struct config_s, raida_addrs, 304, 200);
    FIELD(struct config_s, coin_id, 504, 1);
    FIELD(struct config_s, threads, 505, 1);
    FIELD(struct config_s, proxy_addr, 512, 8);
    FIELD(struct config_s, proxy_port, 520, 4);
    FIELD(struct config_s, proxy_key, 524, 16);
    FIELD(struct config_s, btc_confirmations, 540, 1);
}

/* The library's own struct for raida_healing_peer_health (docs/abi.md): appended fields
 * only, the first 56 bytes as before the ejection fields. */
static void peer_health(void)
{
    SIZE_ALIGN(raida_healing_peer_health_t, 88, 8);
    TYPED_FIELD(raida_healing_peer_health_t, raida, 0, 1, uint8_t);
    FIELD(raida_healing_peer_health_t, ipv4, 1, 4);
    TYPED_FIELD(raida_healing_peer_health_t, port, 6, 2, uint16_t);
    TYPED_FIELD(raida_healing_peer_health_t, answers, 8, 8, uint64_t);
    TYPED_FIELD(raida_healing_peer_health_t, failures, 16, 8, uint64_t);
    TYPED_FIELD(raida_healing_peer_health_t, timeouts, 24, 8, uint64_t);
    TYPED_FIELD(raida_healing_peer_health_t, hedges, 32, 8, uint64_t);
    TYPED_FIELD(raida_healing_peer_health_t, typical_us, 40, 8, uint64_t);
    TYPED_FIELD(raida_healing_peer_health_t, high_us, 48, 8, uint64_t);
    TYPED_FIELD(raida_healing_peer_health_t, ejections, 56, 8, uint64_t);
    TYPED_FIELD(raida_healing_peer_health_t, probes, 64, 8, uint64_t);
    TYPED_FIELD(raida_healing_peer_health_t, next_probe_ms, 72, 8, uint64_t);
    TYPED_FIELD(raida_healing_peer_health_t, consecutive_failures, 80, 4, uint32_t);
    TYPED_FIELD(raida_healing_peer_health_t, ejected, 84, 1, uint8_t);
}

/* The status macros of the header, against docs/wire-protocol.md's table. */
static void statuses(void)
{
    CHECK_INT(RAIDA_STATUS_INVALID_PACKET_LENGTH, 16);
    CHECK_INT(RAIDA_STATUS_WRONG_RAIDA, 18);
    CHECK_INT(RAIDA_STATUS_EMPTY_REQUEST, 36);
    CHECK_INT(RAIDA_STATUS_COINS_NOT_DIV, 39);
    CHECK_INT(RAIDA_STATUS_INVALID_SN_OR_DENOMINATION, 40);
    CHECK_INT(RAIDA_STATUS_NO_TICKET_SLOT, 42);
    CHECK_INT(RAIDA_STATUS_NO_TICKET_FOUND, 43);
    CHECK_INT(RAIDA_STATUS_TICKET_CLAIMED_ALREADY, 44);
    CHECK_INT(RAIDA_STATUS_REQUEST_RATE, 160);
    CHECK_INT(RAIDA_STATUS_FIND_NEITHER, 208);
    CHECK_INT(RAIDA_STATUS_FIND_ALL_AN, 209);
    CHECK_INT(RAIDA_STATUS_FIND_ALL_PAN, 210);
    CHECK_INT(RAIDA_STATUS_FIND_MIXED, 211);
    CHECK_INT(RAIDA_STATUS_ALL_PASS, 241);
    CHECK_INT(RAIDA_STATUS_ALL_FAIL, 242);
    CHECK_INT(RAIDA_STATUS_MIXED, 243);
    CHECK_INT(RAIDA_STATUS_SUCCESS, 250);
    CHECK_INT(RAIDA_STATUS_INTERNAL, 252);
    CHECK_INT(RAIDA_STATUS_MEMORY_ALLOC, 254);
}

/* The exports have the signatures the server's dispatch table and commands.h declare
 * (a mismatch does not compile); each resolves to the library's definition. */
static void export_signatures(void)
{
#define HANDLER_ENTRY(code, handler) handler,
    void (*handlers[])(conn_info_t *) = { RAIDA_HEALING_COMMANDS(HANDLER_ENTRY) };
#undef HANDLER_ENTRY
    for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++)
        CHECK(handlers[i] != NULL, "handler %zu resolved", i);
    void *(*job)(void *) = send_validate_ticket_job;
    CHECK(job != NULL, "send_validate_ticket_job resolved");
}

int main(void)
{
    conn_info();
    coin();
    validate_ticket_arg();
    page();
    config_struct();
    peer_health();
    statuses();
    export_signatures();
    return check_summary();
}
