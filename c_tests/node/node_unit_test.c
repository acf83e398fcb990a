/*
 * node_unit_test.c: the node's own pieces without a network: the config.toml reader (the
 * library's, through raida_healing_config_parse, on the shared fixture files), the
 * legacy framing checks and response header, and page files (path, load, atomic
 * write-back of dirty pages through the harness). Prints "N passed, M failed".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <raida_healing.h>

#include "host.h"
#include "node_config.h"
#include "node_pages.h"
#include "node_wire.h"

static int passed, failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            passed++;                                                                \
        } else {                                                                     \
            failed++;                                                                \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);          \
        }                                                                            \
    } while (0)

#define CHECK_STR(got, want)                                                         \
    do {                                                                             \
        if (strcmp((got), (want)) == 0) {                                            \
            passed++;                                                                \
        } else {                                                                     \
            failed++;                                                                \
            fprintf(stderr, "FAIL %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__,   \
                    (got), (want));                                                  \
        }                                                                            \
    } while (0)

/* 25 "127.0.0.1:<base+i>" entries, one per line, trailing comma. */
static char *servers_toml(int count, int base)
{
    static char text[4096];
    size_t n = (size_t)snprintf(text, sizeof text, "raida_servers = [\n");
    for (int i = 0; i < count; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "  \"127.0.0.1:%d\", # RAIDA %d\n", base + i, i);
    snprintf(text + n, sizeof text - n, "]\n");
    return text;
}

static int parse(const char *text, struct node_config *cfg, char *err)
{
    return node_config_parse(text, cfg, err, 256);
}

static void test_config_node_rules(void)
{
    struct node_config cfg;
    char err[256], text[8192];
    snprintf(text, sizeof text, "raida_id = 3\ncoin_id = 0x06 # hex\nport = 4_0003\n%s",
             servers_toml(25, 40000));
    CHECK(parse(text, &cfg, err) == 0);
    CHECK_STR(err, "");
    CHECK(cfg.raida_id == 3 && cfg.coin_id == 6 && cfg.port == 40003);
    CHECK(cfg.flush_freq == NODE_DEFAULT_FLUSH_SECONDS);
    CHECK_STR(cfg.raida_servers[0], "127.0.0.1:40000");
    CHECK_STR(cfg.raida_servers[24], "127.0.0.1:40024");

    /* the legacy layout: keys in [server], flush_freq honoured */
    snprintf(text, sizeof text, "[server]\r\nraida_id = 24\r\ncoin_id = 255\r\nport = 65535\r\n"
             "flush_freq = 7\r\n%s", servers_toml(25, 1));
    CHECK(parse(text, &cfg, err) == 0);
    CHECK(cfg.raida_id == 24 && cfg.coin_id == 255 && cfg.port == 65535 && cfg.flush_freq == 7);

    /* what the node needs beyond the library's rules */
    snprintf(text, sizeof text, "raida_id = 1\nport = 1\n%s", servers_toml(25, 100));
    CHECK(parse(text, &cfg, err) == -1);
    CHECK_STR(err, "coin_id is missing (the node needs it, at the top or in [server])");
    snprintf(text, sizeof text, "raida_id = 1\ncoin_id = 1\n%s", servers_toml(25, 100));
    CHECK(parse(text, &cfg, err) == -1);
    CHECK_STR(err, "port is missing (the node needs it, at the top or in [server])");
    /* the library's message, cut to the caller's buffer */
    char small[12];
    CHECK(node_config_parse("raida_id = 03\n", &cfg, small, sizeof small) == -1);
    CHECK_STR(small, "line 1: not");
}

/* The fixture files of the library's own reader (tests/fixtures/config, also read by
 * src/config_file.rs): each X.toml through raida_healing_config_parse must give the line
 * in X.expect, the same line the Rust test expects. */
static int fixture_summary(const char *path, char *line, size_t line_len)
{
    char *text = NULL;
    size_t text_len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    FILE *mem = open_memstream(&text, &text_len);
    int c;
    while ((c = fgetc(f)) != EOF)
        fputc(c, mem);
    fclose(f);
    fclose(mem);
    raida_healing_config_t cfg;
    char err[512];
    int rc = raida_healing_config_parse(text, &cfg, err, sizeof err);
    free(text);
    char coin[16] = "-", port[16] = "-", flush[16] = "-";
    if (rc != RAIDA_HEALING_OK) {
        snprintf(line, line_len, "error %s", err);
        return rc == RAIDA_HEALING_E_CONFIG ? 0 : -1;
    }
    if (cfg.coin_id >= 0)
        snprintf(coin, sizeof coin, "%d", cfg.coin_id);
    if (cfg.port)
        snprintf(port, sizeof port, "%d", cfg.port);
    if (cfg.flush_freq)
        snprintf(flush, sizeof flush, "%d", cfg.flush_freq);
    snprintf(line, line_len,
             "ok raida_id=%d coin_id=%s port=%s flush_freq=%s raida_servers[0]=%s raida_servers[24]=%s",
             cfg.raida_id, coin, port, flush, cfg.raida_servers[0], cfg.raida_servers[24]);
    return 0;
}

static void test_config_fixtures(const char *fixtures)
{
    static const char *const kinds[] = {"valid", "invalid"};
    for (int k = 0; k < 2; k++) {
        char dir_path[PATH_MAX];
        snprintf(dir_path, sizeof dir_path, "%s/%s", fixtures, kinds[k]);
        DIR *dir = opendir(dir_path);
        CHECK(dir != NULL);
        if (!dir)
            continue;
        int count = 0;
        struct dirent *e;
        while ((e = readdir(dir)) != NULL) {
            size_t n = strlen(e->d_name);
            if (n < 6 || strcmp(e->d_name + n - 5, ".toml") != 0)
                continue;
            char path[PATH_MAX + 256], expect_path[PATH_MAX + 256], got[1024], want[1024] = "";
            snprintf(path, sizeof path, "%s/%s", dir_path, e->d_name);
            snprintf(expect_path, sizeof expect_path, "%s/%.*s.expect", dir_path, (int)(n - 5), e->d_name);
            FILE *f = fopen(expect_path, "r");
            CHECK(f != NULL);
            if (f) {
                if (!fgets(want, sizeof want, f))
                    want[0] = '\0';
                want[strcspn(want, "\n")] = '\0';
                fclose(f);
            }
            CHECK(fixture_summary(path, got, sizeof got) == 0);
            CHECK(strncmp(got, k == 0 ? "ok " : "error ", k == 0 ? 3 : 6) == 0);
            if (strcmp(got, want) != 0)
                fprintf(stderr, "fixture %s\n", path);
            CHECK_STR(got, want);
            count++;
        }
        closedir(dir);
        CHECK(count >= 4);
    }
    /* NULL arguments and text that is not UTF-8 */
    raida_healing_config_t cfg;
    char err[128];
    CHECK(raida_healing_config_parse(NULL, &cfg, err, sizeof err) == RAIDA_HEALING_E_ARGUMENT);
    CHECK_STR(err, "text and out must not be NULL");
    CHECK(raida_healing_config_parse("raida_id = 1\n", NULL, NULL, 0) == RAIDA_HEALING_E_ARGUMENT);
    CHECK(raida_healing_config_parse("x = \"\xff\"\n", &cfg, err, sizeof err) == RAIDA_HEALING_E_CONFIG);
    CHECK_STR(err, "not valid TOML: the text is not UTF-8 (byte 5)");
}

static void test_split_host_port(void)
{
    char host[64];
    uint16_t port = 0;
    CHECK(node_split_host_port("127.0.0.1:40000", host, sizeof host, &port) == 0);
    CHECK_STR(host, "127.0.0.1");
    CHECK(port == 40000);
    CHECK(node_split_host_port("raida7.example:1", host, sizeof host, &port) == 0 && port == 1);
    CHECK(node_split_host_port("h:0", host, sizeof host, &port) == -1);
    CHECK(node_split_host_port("h:65536", host, sizeof host, &port) == -1);
    CHECK(node_split_host_port("h:12a", host, sizeof host, &port) == -1);
    CHECK(node_split_host_port(":80", host, sizeof host, &port) == -1);
    CHECK(node_split_host_port("h:", host, sizeof host, &port) == -1);
    CHECK(node_split_host_port("::1:80", host, sizeof host, &port) == -1);
}

/* A valid type-0 request header for RAIDA 5, coin id 6, command 60, body length len. */
static void good_header(unsigned char h[NODE_HEADER_BYTES], int len)
{
    memset(h, 0, NODE_HEADER_BYTES);
    h[0] = 1, h[2] = 5, h[4] = 2, h[5] = 60, h[7] = 6, h[8] = 1;
    h[22] = (unsigned char)(len >> 8), h[23] = (unsigned char)len;
    h[30] = 0xAB, h[31] = 0xCD;
}

static void test_wire(void)
{
    unsigned char bytes[12];
    for (int i = 0; i < 12; i++)
        bytes[i] = (unsigned char)i;
    CHECK(node_crc32(bytes, 12) == 0x9270c965u); /* docs/wire-protocol.md's vector */
    CHECK(node_crc32((const unsigned char *)"123456789", 9) == 0xCBF43926u);

    unsigned char h[NODE_HEADER_BYTES];
    good_header(h, 55);
    struct node_request_header parsed;
    node_parse_header(h, &parsed);
    CHECK(parsed.raida == 5 && parsed.group == 2 && parsed.command == 60 && parsed.coin_id == 6);
    CHECK(parsed.body_size == 55 && parsed.echo[0] == 0xAB && parsed.echo[1] == 0xCD);
    CHECK(node_check_header(h, 5, 6) == NODE_OK);
    CHECK(node_check_header(h, 4, 6) == NODE_ERR_WRONG_RAIDA);
    CHECK(node_check_header(h, 5, 7) == NODE_ERR_COIN_ID);
    struct {
        int byte, value;
        enum node_status want;
    } cases[] = {
        {0, 0, NODE_ERR_CLOUD_ID},  {1, 1, NODE_ERR_SPLIT_ID},       {2, 6, NODE_ERR_WRONG_RAIDA},
        {3, 4, NODE_ERR_SHARD_ID},  {4, 1, NODE_ERR_COMMAND_GROUP},  {5, 41, NODE_ERR_COMMAND},
        {6, 1, NODE_ERR_COIN_ID},   {16, 1, NODE_ERR_ENCRYPTION},   {16, 4, NODE_ERR_ENCRYPTION},
        {3, 3, NODE_OK},            {5, 40, NODE_OK},               {5, 50, NODE_OK},
        {5, 80, NODE_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        good_header(h, 55);
        h[cases[i].byte] = (unsigned char)cases[i].value;
        CHECK(node_check_header(h, 5, 6) == cases[i].want);
    }
    /* the legacy order: a wrong cloud id wins over everything after it */
    good_header(h, 55);
    h[0] = 'G', h[2] = 9, h[4] = 7;
    CHECK(node_check_header(h, 5, 6) == NODE_ERR_CLOUD_ID);

    unsigned char body[40] = {0};
    for (int i = 0; i < 12; i++)
        body[i] = (unsigned char)i;
    body[12] = 0x92, body[13] = 0x70, body[14] = 0xc9, body[15] = 0x65;
    body[16] = 0x3E, body[17] = 0x3E;
    CHECK(node_check_body(body, 18) == NODE_OK);
    CHECK(node_check_body(body, 0) == NODE_ERR_LENGTH);
    CHECK(node_check_body(body + 16, 2) == NODE_ERR_LENGTH); /* only a trailer */
    CHECK(node_check_body(body, 17) == NODE_ERR_EOF);
    body[15] ^= 1;
    CHECK(node_check_body(body, 18) == NODE_ERR_CRC);

    unsigned char out[NODE_HEADER_BYTES];
    const uint8_t echo[2] = {0xAB, 0xCD};
    node_response_header(out, 5, 241, 2, echo, 0x010203, 0x0A0B0C0D, body);
    const unsigned char want[16] = {5, 0, 241, 2, 0, 1, 0xAB, 0xCD, 0, 1, 2, 3, 0x0A, 0x0B, 0x0C, 0x0D};
    CHECK(memcmp(out, want, 16) == 0);
    CHECK(memcmp(out + 16, body, 16) == 0);
    node_response_header(out, 5, 16, 0, echo, 0, 0, NULL);
    static const unsigned char zeros[16];
    CHECK(memcmp(out + 16, zeros, 16) == 0);
}

/* A fresh temporary folder for page files. */
static char *temp_folder(void)
{
    static char dir[] = "/tmp/raida_node_unit_XXXXXX";
    return mkdtemp(dir);
}

static int read_file(const char *path, unsigned char *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    struct stat st;
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && st.st_size == (off_t)len)
        n = read(fd, buf, len);
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

static void test_pages(void)
{
    char path[PATH_MAX];
    CHECK(node_page_path("/n", 1, 300, path, sizeof path) == 0);
    CHECK_STR(path, "/n/Data/01/01/012c.bin");
    CHECK(node_page_path("/n", -1, 0, path, sizeof path) == 0);
    CHECK_STR(path, "/n/Data/ff/00/0000.bin");
    CHECK(node_page_path("/n", -8, 999, path, sizeof path) == 0);
    CHECK_STR(path, "/n/Data/f8/03/03e7.bin");
    CHECK(node_page_path("/n", 6, 0, path, 10) == -1);

    char *folder = temp_folder();
    CHECK(folder != NULL);
    if (!folder)
        return;
    static unsigned char page[HOST_PAGE_DATA_BYTES], back[HOST_PAGE_DATA_BYTES];
    for (size_t i = 0; i < sizeof page; i++)
        page[i] = (unsigned char)(i * 7);
    CHECK(node_page_write(folder, 2, 5, page) == 0);
    CHECK(node_page_load(2, 5, back, folder) == 0);
    CHECK(memcmp(page, back, sizeof page) == 0);
    CHECK(node_page_load(2, 6, back, folder) == 1); /* no file: no page */

    /* a file of the wrong size is no page either */
    node_page_path(folder, 2, 7, path, sizeof path);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        fwrite(page, 1, 100, f);
        fclose(f);
    }
    CHECK(node_page_load(2, 7, back, folder) == 1);

    /* the harness loads pages through the node's loader; dirty ones are written back */
    host_init(0, 6);
    host_set_page_loader(node_page_load, folder);
    unsigned char an[16];
    uint8_t mfs;
    CHECK(host_get(2, 5 * 1024 + 3, an, &mfs) == 0);
    CHECK(memcmp(an, page + 3 * 17, 16) == 0 && mfs == page[3 * 17 + 16]);
    CHECK(host_get(2, 6 * 1024, an, &mfs) == -1);

    struct page_s *p = get_page_by_sn_lock(2, 5 * 1024 + 3);
    CHECK(p != NULL);
    if (p) {
        memset(p->data + 3 * 17, 0xEE, 16);
        p->data[3 * 17 + 16] = 45;
        p->is_dirty = 1;
        unlock_page(p);
    }
    struct node_flush_result r = node_flush_dirty_pages(folder);
    CHECK(r.written == 1 && r.failed == 0);
    CHECK(host_page_dirty(2, 5 * 1024) == 0);
    node_page_path(folder, 2, 5, path, sizeof path);
    CHECK(read_file(path, back, sizeof back) == 0);
    memset(page + 3 * 17, 0xEE, 16);
    page[3 * 17 + 16] = 45;
    CHECK(memcmp(page, back, sizeof page) == 0);
    r = node_flush_dirty_pages(folder);
    CHECK(r.written == 0 && r.failed == 0); /* clean pages are not rewritten */

    /* no temporary file is left behind */
    char temp[PATH_MAX + 32];
    snprintf(temp, sizeof temp, "%s.tmp-%ld", path, (long)getpid());
    CHECK(access(temp, F_OK) != 0);

    host_set_page_loader(NULL, NULL);
    host_init(0, 6);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", folder);
    CHECK(system(cmd) == 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CONFIG_FIXTURES_DIR\n", argv[0]);
        return 2;
    }
    test_config_node_rules();
    test_config_fixtures(argv[1]);
    test_split_host_port();
    test_wire();
    test_pages();
    printf("node unit tests: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
