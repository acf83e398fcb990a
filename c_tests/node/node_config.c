/*
 * node_config.c: the node's config.toml, read by the library's own reader
 * (raida_healing_config_parse), so the node and raida_healing_open accept and refuse the
 * same files with the same messages. The node adds only what it needs beyond the library:
 * coin_id and port are required here, flush_freq has a default.
 */
#define _GNU_SOURCE
#include "node_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raida_healing.h>

_Static_assert(NODE_TOTAL_RAIDA == RAIDA_HEALING_RAIDA_COUNT, "one RAIDA count");
_Static_assert(NODE_HOSTPORT_MAX == RAIDA_HEALING_HOSTPORT_MAX, "one host:port bound");

int node_config_parse(const char *text, struct node_config *out, char *err, size_t err_len)
{
    /* About 6.4 KB: on the heap, as the node's threads have small stacks. */
    raida_healing_config_t *read = malloc(sizeof *read);
    if (!read) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    int rc = raida_healing_config_parse(text, read, err, err_len);
    if (rc == RAIDA_HEALING_OK) {
        const char *missing = read->coin_id < 0 ? "coin_id" : read->port == 0 ? "port" : NULL;
        if (missing) {
            snprintf(err, err_len, "%s is missing (the node needs it, at the top or in [server])",
                     missing);
            rc = -1;
        } else {
            memset(out, 0, sizeof *out);
            out->raida_id = read->raida_id;
            out->coin_id = read->coin_id;
            out->port = read->port;
            out->flush_freq = read->flush_freq ? read->flush_freq : NODE_DEFAULT_FLUSH_SECONDS;
            memcpy(out->raida_servers, read->raida_servers, sizeof out->raida_servers);
        }
    }
    free(read);
    return rc == RAIDA_HEALING_OK ? 0 : -1;
}

int node_config_load(const char *path, struct node_config *out, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_len, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    /* A config file is small; a huge one is a mistake, not something to parse. */
    enum { CONFIG_MAX = 1 << 20 };
    char *text = malloc(CONFIG_MAX + 1);
    if (!text) {
        fclose(f);
        snprintf(err, err_len, "out of memory reading %s", path);
        return -1;
    }
    size_t n = fread(text, 1, CONFIG_MAX + 1, f);
    int read_error = ferror(f);
    fclose(f);
    if (read_error || n > CONFIG_MAX) {
        free(text);
        snprintf(err, err_len, "%s: %s", path, read_error ? "read error" : "larger than 1 MiB");
        return -1;
    }
    text[n] = '\0';
    if (memchr(text, '\0', n)) {
        free(text);
        snprintf(err, err_len, "%s: contains a NUL byte", path);
        return -1;
    }
    char reason[256];
    int rc = node_config_parse(text, out, reason, sizeof reason);
    free(text);
    if (rc != 0)
        snprintf(err, err_len, "%s: %s", path, reason);
    return rc;
}

int node_split_host_port(const char *host_port, char *host, size_t host_len, uint16_t *port)
{
    const char *colon = strrchr(host_port, ':');
    if (!colon || colon == host_port || (size_t)(colon - host_port) >= host_len)
        return -1;
    const char *digits = colon + 1;
    if (*digits == '\0' || strlen(digits) > 5)
        return -1;
    long value = 0;
    for (const char *d = digits; *d; d++) {
        if (*d < '0' || *d > '9')
            return -1;
        value = value * 10 + (*d - '0');
    }
    if (value < 1 || value > 65535)
        return -1;
    size_t n = (size_t)(colon - host_port);
    memcpy(host, host_port, n);
    host[n] = '\0';
    if (strchr(host, ':'))
        return -1;
    *port = (uint16_t)value;
    return 0;
}
