/*
 * node_config.h: the node's config.toml, the legacy server's keys only.
 *
 * Read: raida_id (0..24), coin_id (0..255), port (1..65535), raida_servers (exactly 25
 * "host:port" strings, index = RAIDA number) and, optionally, the legacy flush_freq
 * (seconds between write-backs of dirty pages). The keys may sit at the top of the file or
 * in a [server] table (the legacy server's layout), as for the library's own reader
 * (src/config_file.rs); every other key, and every key of another table, is ignored. The
 * reader accepts the TOML such files use: comments, basic and literal strings (with \u
 * escapes), integers (_ separators, 0x/0o/0b prefixes), arrays over several lines with a
 * trailing comma, and skips any other value (booleans, floats, dates, inline tables,
 * nested arrays, multi-line strings).
 */
#ifndef RAIDA_NODE_CONFIG_H
#define RAIDA_NODE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define NODE_TOTAL_RAIDA 25
/* Longest "host:port" kept, terminator included. */
#define NODE_HOSTPORT_MAX 256
/* Seconds between write-backs when config.toml has no flush_freq. */
#define NODE_DEFAULT_FLUSH_SECONDS 2

struct node_config {
    int raida_id;
    int coin_id;
    int port;
    int flush_freq;
    char raida_servers[NODE_TOTAL_RAIDA][NODE_HOSTPORT_MAX];
};

/* Parses config.toml text. 0 on success; -1 with a one-line reason (and line number) in
 * err when the text is not valid for the node. */
int node_config_parse(const char *text, struct node_config *out, char *err, size_t err_len);

/* Reads and parses the file at path; as node_config_parse, plus I/O errors. */
int node_config_load(const char *path, struct node_config *out, char *err, size_t err_len);

/* Splits "host:port" (the last colon separates them; "[v6]:port" is not supported) into
 * host and a port in 1..65535. 0, or -1 when malformed. */
int node_split_host_port(const char *host_port, char *host, size_t host_len, uint16_t *port);

#endif /* RAIDA_NODE_CONFIG_H */
