/*
 * node_config.h: the node's config.toml, read with the library's own reader
 * (raida_healing_config_parse in raida_healing.h), so the node accepts and refuses exactly
 * what raida_healing_open does: any valid TOML; raida_id (0..24) and raida_servers
 * (exactly 25 "host:port" strings, index = RAIDA number) at the top or in [server]. The
 * node also requires coin_id (0..255) and port (1..65535), and takes the legacy flush_freq
 * (1..86400 seconds between write-backs of dirty pages; default below).
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

/* Parses config.toml text. 0 on success; -1 with a one-line reason ("line N: ..." where
 * the line is known) in err when the text is not valid for the node. */
int node_config_parse(const char *text, struct node_config *out, char *err, size_t err_len);

/* Reads and parses the file at path; as node_config_parse, plus I/O errors. */
int node_config_load(const char *path, struct node_config *out, char *err, size_t err_len);

/* Splits "host:port" (the last colon separates them; "[v6]:port" is not supported) into
 * host and a port in 1..65535. 0, or -1 when malformed. */
int node_split_host_port(const char *host_port, char *host, size_t host_len, uint16_t *port);

#endif /* RAIDA_NODE_CONFIG_H */
