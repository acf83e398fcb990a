/*
 * node_config.c: a small reader for the TOML subset of the legacy config.toml.
 * See node_config.h for what is read and what is skipped.
 */
#define _GNU_SOURCE
#include "node_config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest string value kept; longer ones are an error only where the value is used. */
#define VALUE_MAX NODE_HOSTPORT_MAX
/* How deeply arrays and inline tables may nest in skipped values. */
#define MAX_NESTING 16

enum value_kind { V_STRING, V_INTEGER, V_OTHER, V_ARRAY };

struct value {
    enum value_kind kind;
    long long integer;
    char string[VALUE_MAX];
    int string_too_long;
};

struct parser {
    const char *p;
    int line;
    char *err;
    size_t err_len;
};

/* Elements of the array being read; NULL while reading a skipped array. */
struct string_list {
    char (*items)[NODE_HOSTPORT_MAX];
    int count;
    int capacity;
    int not_string;
    int too_long;
};

static int fail(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct parser *ps, const char *fmt, ...)
{
    char reason[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->err_len, "line %d: %s", ps->line, reason);
    return -1;
}

/* Spaces and tabs. */
static void skip_blank(struct parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t')
        ps->p++;
}

/* Spaces, tabs, comments and newlines (inside arrays). */
static void skip_blank_lines(struct parser *ps)
{
    for (;;) {
        skip_blank(ps);
        if (*ps->p == '#') {
            while (*ps->p && *ps->p != '\n')
                ps->p++;
        } else if (*ps->p == '\r' && ps->p[1] == '\n') {
            ps->p++;
        } else if (*ps->p == '\n') {
            ps->p++;
            ps->line++;
        } else {
            return;
        }
    }
}

/* After a key/value pair or table header: blanks, an optional comment, end of line. */
static int end_of_line(struct parser *ps)
{
    skip_blank(ps);
    if (*ps->p == '#')
        while (*ps->p && *ps->p != '\n')
            ps->p++;
    if (*ps->p == '\r' && ps->p[1] == '\n')
        ps->p++;
    if (*ps->p == '\n') {
        ps->p++;
        ps->line++;
        return 0;
    }
    if (*ps->p == '\0')
        return 0;
    return fail(ps, "unexpected '%c' after a value", *ps->p);
}

static void put_char(struct value *v, size_t *n, char c)
{
    if (*n + 1 < sizeof v->string)
        v->string[(*n)++] = c;
    else
        v->string_too_long = 1;
}

/* \uXXXX or \UXXXXXXXX: a code point, stored as UTF-8. */
static int put_unicode(struct parser *ps, struct value *v, size_t *n, int digits)
{
    unsigned long cp = 0;
    for (int i = 0; i < digits; i++) {
        char c = *ps->p;
        int d = (c >= '0' && c <= '9') ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (d < 0)
            return fail(ps, "bad \\u escape in a string");
        cp = cp * 16 + (unsigned)d;
        ps->p++;
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return fail(ps, "\\u escape is not a Unicode scalar value");
    if (cp < 0x80) {
        put_char(v, n, (char)cp);
    } else if (cp < 0x800) {
        put_char(v, n, (char)(0xC0 | (cp >> 6)));
        put_char(v, n, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        put_char(v, n, (char)(0xE0 | (cp >> 12)));
        put_char(v, n, (char)(0x80 | ((cp >> 6) & 0x3F)));
        put_char(v, n, (char)(0x80 | (cp & 0x3F)));
    } else {
        put_char(v, n, (char)(0xF0 | (cp >> 18)));
        put_char(v, n, (char)(0x80 | ((cp >> 12) & 0x3F)));
        put_char(v, n, (char)(0x80 | ((cp >> 6) & 0x3F)));
        put_char(v, n, (char)(0x80 | (cp & 0x3F)));
    }
    return 0;
}

/* A "basic" string (escapes) or a 'literal' one, single-line. */
static int parse_string(struct parser *ps, struct value *v)
{
    char quote = *ps->p++;
    size_t n = 0;
    v->kind = V_STRING;
    v->string_too_long = 0;
    for (;;) {
        char c = *ps->p;
        if (c == '\0' || c == '\n')
            return fail(ps, "unterminated string");
        ps->p++;
        if (c == quote)
            break;
        if (c == '\\' && quote == '"') {
            char e = *ps->p++;
            switch (e) {
            case '"': put_char(v, &n, '"'); break;
            case '\\': put_char(v, &n, '\\'); break;
            case 'n': put_char(v, &n, '\n'); break;
            case 't': put_char(v, &n, '\t'); break;
            case 'r': put_char(v, &n, '\r'); break;
            case 'b': put_char(v, &n, '\b'); break;
            case 'f': put_char(v, &n, '\f'); break;
            case 'u':
            case 'U':
                if (put_unicode(ps, v, &n, e == 'u' ? 4 : 8) != 0)
                    return -1;
                break;
            default: return fail(ps, "unsupported escape \\%c in a string", e ? e : '0');
            }
            continue;
        }
        put_char(v, &n, c);
    }
    v->string[n] = '\0';
    return 0;
}

/* A multi-line string ("""...""" or '''...'''), skipped: its content is never used. */
static int skip_multiline_string(struct parser *ps)
{
    char quote = *ps->p;
    ps->p += 3;
    for (;;) {
        if (*ps->p == '\0')
            return fail(ps, "unterminated multi-line string");
        if (*ps->p == '\\' && quote == '"' && ps->p[1]) {
            if (ps->p[1] == '\n')
                ps->line++;
            ps->p += 2;
            continue;
        }
        if (ps->p[0] == quote && ps->p[1] == quote && ps->p[2] == quote) {
            ps->p += 3;
            while (*ps->p == quote) /* up to two quotes may end the content */
                ps->p++;
            return 0;
        }
        if (*ps->p == '\n')
            ps->line++;
        ps->p++;
    }
}

static int is_bare_char(char c)
{
    return c && !strchr(" \t\r\n,]}#=", c);
}

/* Digits of `radix` with single underscores between them (TOML's integer digits). */
static int digits_ok(const char *s, size_t len, int radix)
{
    if (len == 0 || s[0] == '_' || s[len - 1] == '_')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '_') {
            if (s[i + 1] == '_')
                return 0;
            continue;
        }
        int d = (c >= '0' && c <= '9') ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : 99;
        if (d >= radix)
            return 0;
    }
    return 1;
}

/* A TOML integer: decimal with an optional sign and no leading zero, or 0x/0o/0b. */
static int parse_integer(const char *s, size_t len, long long *out)
{
    int radix = 10, negative = 0;
    if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o' || s[1] == 'b')) {
        radix = s[1] == 'x' ? 16 : s[1] == 'o' ? 8 : 2;
        s += 2;
        len -= 2;
    } else {
        if (len && (s[0] == '+' || s[0] == '-')) {
            negative = s[0] == '-';
            s++;
            len--;
        }
        if (len > 1 && s[0] == '0')
            return -1;
    }
    if (!digits_ok(s, len, radix))
        return -1;
    unsigned long long value = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '_')
            continue;
        int d = (s[i] >= '0' && s[i] <= '9') ? s[i] - '0' : (s[i] | 0x20) - 'a' + 10;
        if (value > (0x7FFFFFFFFFFFFFFFULL - (unsigned)d) / (unsigned)radix)
            return -1;
        value = value * (unsigned)radix + (unsigned)d;
    }
    *out = negative ? -(long long)value : (long long)value;
    return 0;
}

/* A bare value: an integer when it reads as one; anything else (true, 1.5, a date) is
 * kept as V_OTHER. */
static int parse_bare(struct parser *ps, struct value *v)
{
    const char *start = ps->p;
    while (is_bare_char(*ps->p) || (*ps->p == ' ' && is_bare_char(ps->p[1]) && ps->p > start &&
                                    ps->p[-1] >= '0' && ps->p[-1] <= '9' && ps->p[1] >= '0' &&
                                    ps->p[1] <= '9'))
        ps->p++; /* a space only inside a date-time such as 1979-05-27 07:32:00 */
    size_t len = (size_t)(ps->p - start);
    if (len == 0)
        return fail(ps, "missing value");
    v->kind = parse_integer(start, len, &v->integer) == 0 ? V_INTEGER : V_OTHER;
    return 0;
}

static int parse_value(struct parser *ps, struct value *v, struct string_list *list, int depth);

/* [ v, v, ... ] over any number of lines; string elements go to list when given. */
static int parse_array(struct parser *ps, struct string_list *list, int depth)
{
    ps->p++; /* '[' */
    for (;;) {
        skip_blank_lines(ps);
        if (*ps->p == ']') {
            ps->p++;
            return 0;
        }
        if (*ps->p == '\0')
            return fail(ps, "unterminated array");
        struct value element;
        if (parse_value(ps, &element, NULL, depth + 1) != 0)
            return -1;
        if (list) {
            if (element.kind != V_STRING) {
                list->not_string = 1;
            } else if (element.string_too_long) {
                list->too_long = 1;
            } else {
                if (list->count < list->capacity)
                    memcpy(list->items[list->count], element.string, sizeof element.string);
                list->count++;
            }
        }
        skip_blank_lines(ps);
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == ']') {
            ps->p++;
            return 0;
        }
        return fail(ps, *ps->p ? "expected ',' or ']' in an array" : "unterminated array");
    }
}

/* { k = v, ... } on one line, skipped. */
static int skip_inline_table(struct parser *ps, int depth)
{
    ps->p++; /* '{' */
    for (;;) {
        skip_blank(ps);
        if (*ps->p == '}') {
            ps->p++;
            return 0;
        }
        while (is_bare_char(*ps->p) || *ps->p == '"' || *ps->p == '\'' || *ps->p == ' ') {
            if (*ps->p == '"' || *ps->p == '\'') {
                struct value key;
                if (parse_string(ps, &key) != 0)
                    return -1;
            } else {
                ps->p++;
            }
        }
        if (*ps->p != '=')
            return fail(ps, "expected '=' in an inline table");
        ps->p++;
        skip_blank(ps);
        struct value ignored;
        if (parse_value(ps, &ignored, NULL, depth + 1) != 0)
            return -1;
        skip_blank(ps);
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == '}') {
            ps->p++;
            return 0;
        }
        return fail(ps, "expected ',' or '}' in an inline table");
    }
}

static int parse_value(struct parser *ps, struct value *v, struct string_list *list, int depth)
{
    if (depth > MAX_NESTING)
        return fail(ps, "values nested too deeply");
    char c = *ps->p;
    if ((c == '"' || c == '\'') && ps->p[1] == c && ps->p[2] == c) {
        v->kind = V_OTHER;
        return skip_multiline_string(ps);
    }
    if (c == '"' || c == '\'')
        return parse_string(ps, v);
    if (c == '[') {
        v->kind = V_ARRAY;
        return parse_array(ps, list, depth);
    }
    if (c == '{') {
        v->kind = V_OTHER;
        return skip_inline_table(ps, depth);
    }
    return parse_bare(ps, v);
}

/* A key: bare, quoted, or dotted (a dotted key is never one of ours). */
static int parse_key(struct parser *ps, char *key, size_t key_len, int *dotted)
{
    size_t n = 0;
    *dotted = 0;
    for (;;) {
        skip_blank(ps);
        if (*ps->p == '"' || *ps->p == '\'') {
            struct value quoted;
            if (parse_string(ps, &quoted) != 0)
                return -1;
            /* A quoted key too long for key[] cannot be one of ours: keep a prefix. */
            n = strnlen(quoted.string, key_len - 1);
            memcpy(key, quoted.string, n);
            key[n] = '\0';
        } else {
            const char *start = ps->p;
            while ((*ps->p >= 'A' && *ps->p <= 'Z') || (*ps->p >= 'a' && *ps->p <= 'z') ||
                   (*ps->p >= '0' && *ps->p <= '9') || *ps->p == '_' || *ps->p == '-')
                ps->p++;
            n = (size_t)(ps->p - start);
            if (n == 0)
                return fail(ps, "expected a key");
            snprintf(key, key_len, "%.*s", (int)n, start);
        }
        skip_blank(ps);
        if (*ps->p != '.')
            return 0;
        ps->p++;
        *dotted = 1;
    }
}

/* [name] or [[name]]; *in_scope is set when it is the legacy [server] table. */
static int parse_table_header(struct parser *ps, int *in_scope)
{
    int twice = ps->p[1] == '[';
    ps->p += twice ? 2 : 1;
    char name[64];
    int dotted;
    if (parse_key(ps, name, sizeof name, &dotted) != 0)
        return -1;
    skip_blank(ps);
    if (ps->p[0] != ']' || (twice && ps->p[1] != ']'))
        return fail(ps, "unterminated table header");
    ps->p += twice ? 2 : 1;
    *in_scope = !dotted && strcmp(name, "server") == 0;
    return end_of_line(ps);
}

static int integer_in(struct parser *ps, const char *key, const struct value *v, long long lo,
                      long long hi, int *out)
{
    if (v->kind != V_INTEGER)
        return fail(ps, "%s must be an integer", key);
    if (v->integer < lo || v->integer > hi)
        return fail(ps, "%s = %lld is outside %lld..%lld", key, v->integer, lo, hi);
    *out = (int)v->integer;
    return 0;
}

int node_config_parse(const char *text, struct node_config *out, char *err, size_t err_len)
{
    struct parser ps = {.p = text, .line = 1, .err = err, .err_len = err_len};
    int have_raida_id = 0, have_coin_id = 0, have_port = 0, have_servers = 0, have_flush = 0;
    int in_scope = 1; /* the root table, or [server] */
    memset(out, 0, sizeof *out);
    out->flush_freq = NODE_DEFAULT_FLUSH_SECONDS;
    if (err_len)
        err[0] = '\0';

    for (;;) {
        skip_blank_lines(&ps);
        if (*ps.p == '\0')
            break;
        if (*ps.p == '[') {
            if (parse_table_header(&ps, &in_scope) != 0)
                return -1;
            continue;
        }
        char key[64];
        int dotted;
        if (parse_key(&ps, key, sizeof key, &dotted) != 0)
            return -1;
        if (*ps.p != '=')
            return fail(&ps, "expected '=' after key %s", key);
        ps.p++;
        skip_blank(&ps);
        int ours = in_scope && !dotted;
        int key_line = ps.line;

        struct value v;
        struct string_list servers = {.items = out->raida_servers, .capacity = NODE_TOTAL_RAIDA};
        int is_servers = ours && strcmp(key, "raida_servers") == 0;
        if (parse_value(&ps, &v, is_servers ? &servers : NULL, 0) != 0)
            return -1;
        int value_end_line = ps.line;
        ps.line = key_line; /* report problems of this pair at its key */
        int *seen = NULL;
        int rc = 0;
        if (ours && strcmp(key, "raida_id") == 0) {
            seen = &have_raida_id;
            rc = integer_in(&ps, key, &v, 0, NODE_TOTAL_RAIDA - 1, &out->raida_id);
        } else if (ours && strcmp(key, "coin_id") == 0) {
            seen = &have_coin_id;
            rc = integer_in(&ps, key, &v, 0, 255, &out->coin_id);
        } else if (ours && strcmp(key, "port") == 0) {
            seen = &have_port;
            rc = integer_in(&ps, key, &v, 1, 65535, &out->port);
        } else if (ours && strcmp(key, "flush_freq") == 0) {
            seen = &have_flush;
            rc = integer_in(&ps, key, &v, 1, 86400, &out->flush_freq);
        } else if (is_servers) {
            seen = &have_servers;
            if (v.kind != V_ARRAY)
                rc = fail(&ps, "raida_servers must be an array of \"host:port\" strings");
            else if (servers.not_string)
                rc = fail(&ps, "raida_servers must hold only strings");
            else if (servers.too_long)
                rc = fail(&ps, "a raida_servers entry is longer than %d bytes", NODE_HOSTPORT_MAX - 1);
            else if (servers.count != NODE_TOTAL_RAIDA)
                rc = fail(&ps, "raida_servers has %d entries, not %d", servers.count, NODE_TOTAL_RAIDA);
            for (int i = 0; rc == 0 && i < NODE_TOTAL_RAIDA; i++) {
                char host[NODE_HOSTPORT_MAX];
                uint16_t port;
                if (node_split_host_port(out->raida_servers[i], host, sizeof host, &port) != 0)
                    rc = fail(&ps, "raida_servers[%d] = \"%s\" is not \"host:port\"", i,
                              out->raida_servers[i]);
            }
        }
        if (rc != 0)
            return -1;
        if (seen) {
            if (*seen)
                return fail(&ps, "%s is given twice", key);
            *seen = 1;
        }
        ps.line = value_end_line;
        if (end_of_line(&ps) != 0)
            return -1;
    }

    const char *missing = !have_raida_id ? "raida_id"
                          : !have_coin_id ? "coin_id"
                          : !have_port    ? "port"
                          : !have_servers ? "raida_servers"
                                          : NULL;
    if (missing) {
        snprintf(err, err_len, "missing key %s", missing);
        return -1;
    }
    return 0;
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
