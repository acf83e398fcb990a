/*
 * node_main.c: raida_node, the legacy RAIDA server in miniature around libraida_healing.
 *
 *   raida_node [folder]
 *
 * The folder (default: the directory part of argv[0] as given, so that many node folders
 * can each hold a link to one binary) holds config.toml and Data/. The node listens on
 * the configured TCP port, reads one legacy type-0 request per connection, checks its
 * framing, runs the healing handler (cmd_get_ticket, cmd_validate_ticket, cmd_find,
 * cmd_fix) with a conn_info_t filled as the legacy server fills it, answers, and closes.
 * The server's own symbols come from the C host harness (c_tests/host.c); pages load from
 * Data/ on demand and dirty ones are written back every flush_freq seconds and on
 * SIGTERM/SIGINT before the node exits. See docs/node.md.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "node_config.h"
#include "node_io.h"
#include "node_pages.h"
#include "node_wire.h"
#include "raida_healing.h"

/* Connections served at once; more are closed at once (and logged). */
#define MAX_CONNECTIONS 512
/* How long a client may take to send its whole request, counted from accept, and to
 * take the whole answer (RAIDA_NODE_READ_TIMEOUT_MS overrides it). A total, not a
 * per-read timeout: a client trickling a byte now and then must not hold a connection
 * thread (one of MAX_CONNECTIONS) for longer than this. */
#define DEFAULT_READ_TIMEOUT_MS 10000
/* After answering, how long in total the node waits for the client to close (it reads
 * and drops any unread request bytes, so the answer is not lost to a reset). */
#define LINGER_MILLISECONDS 1000
/* The most the node reads and drops while lingering. */
#define LINGER_MAX_BYTES (1u << 20)
/* At shutdown, how long running handlers (a fix waits on peers) may take to finish. */
#define SHUTDOWN_WAIT_SECONDS 40
/* Exit codes besides 0. */
#define EXIT_CONFIG 1
#define EXIT_USAGE 2
#define EXIT_LISTEN 3

static struct {
    char folder[PATH_MAX];
    struct node_config cfg;
    int listen_fd;
    int wake[2]; /* the signal thread writes here to stop the accept loop */
    pthread_mutex_t mtx;
    pthread_cond_t changed; /* stopping, in_handler or connections changed */
    int stopping;
    int in_handler;
    int connections;
    long io_timeout_ms; /* DEFAULT_READ_TIMEOUT_MS or RAIDA_NODE_READ_TIMEOUT_MS */
} node = {
    .listen_fd = -1,
    .wake = {-1, -1},
    .mtx = PTHREAD_MUTEX_INITIALIZER,
    .changed = PTHREAD_COND_INITIALIZER,
};

/* One accepted connection. */
struct conn {
    int fd;
    struct timeval start;      /* wall clock, for conn_info_t and the execution time */
    struct timespec read_until; /* CLOCK_MONOTONIC: the whole request must be in by then */
    char ip[16];
};

static uint32_t micros_since(const struct timeval *start)
{
    struct timeval now;
    gettimeofday(&now, NULL);
    long long us = (long long)(now.tv_sec - start->tv_sec) * 1000000 + (now.tv_usec - start->tv_usec);
    return us < 0 ? 0 : (uint32_t)us;
}

/* Ends the connection without losing the answer: no more writes, drop what the client
 * still sends until it closes (at most LINGER_MILLISECONDS and LINGER_MAX_BYTES in
 * total), then close. */
static void linger_close(int fd)
{
    shutdown(fd, SHUT_WR);
    struct timespec until = node_deadline_after(LINGER_MILLISECONDS);
    unsigned char sink[4096];
    size_t dropped = 0;
    while (dropped < LINGER_MAX_BYTES && node_wait_ready(fd, POLLIN, &until)) {
        ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n <= 0)
            break;
        dropped += (size_t)n;
    }
    close(fd);
}

/* Sends a 32-byte header and, when body_len > 0, body then 3E 3E. */
static void respond(const struct conn *c, uint8_t status, uint8_t group, const uint8_t echo[2],
                    const unsigned char *challenge, const unsigned char *body, size_t body_len)
{
    size_t wire_body = body_len ? body_len + NODE_TRAILER_BYTES : 0;
    unsigned char *msg = malloc(NODE_HEADER_BYTES + wire_body);
    if (!msg) {
        error("raida_node: out of memory for a %zu-byte response", wire_body);
        return;
    }
    node_response_header(msg, node.cfg.raida_id, status, group, echo, (uint32_t)wire_body,
                         micros_since(&c->start), challenge);
    if (body_len) {
        memcpy(msg + NODE_HEADER_BYTES, body, body_len);
        msg[NODE_HEADER_BYTES + body_len] = 0x3E;
        msg[NODE_HEADER_BYTES + body_len + 1] = 0x3E;
    }
    struct timespec send_until = node_deadline_after(node.io_timeout_ms);
    if (node_write_all(c->fd, msg, NODE_HEADER_BYTES + wire_body, &send_until) != 0)
        debug("raida_node: client %s left (or did not read) before the response was sent", c->ip);
    free(msg);
}

/* Counts a handler in; fails once shutdown has begun (the final flush must see every
 * change a handler makes). */
static int enter_handler(void)
{
    pthread_mutex_lock(&node.mtx);
    int ok = !node.stopping;
    if (ok)
        node.in_handler++;
    pthread_mutex_unlock(&node.mtx);
    return ok ? 0 : -1;
}

static void leave_handler(void)
{
    pthread_mutex_lock(&node.mtx);
    node.in_handler--;
    pthread_cond_broadcast(&node.changed);
    pthread_mutex_unlock(&node.mtx);
}

typedef void (*handler_fn)(conn_info_t *ci);

/* The handler of a group-2 command byte, from the header's list of commands. */
static handler_fn handler_for(uint8_t command)
{
#define HANDLER_CASE(code, handler) case code: return handler;
    switch (command) {
    RAIDA_HEALING_COMMANDS(HANDLER_CASE)
    default: return NULL;
    }
#undef HANDLER_CASE
}

/* Runs the handler of a checked request and answers with its status and output. */
static void dispatch(const struct conn *c, const struct node_request_header *h, unsigned char *body)
{
    conn_info_t ci;
    memset(&ci, 0, sizeof ci);
    ci.sk = c->fd;
    ci.e0 = h->echo[0];
    ci.e1 = h->echo[1];
    ci.body = body;
    ci.body_size = h->body_size;
    ci.encryption_type = h->encryption_type;
    ci.coin_id = (uint8_t)h->coin_id;
    ci.cgroup = h->group;
    ci.command = h->command;
    ci.shard_id = h->shard;
    memcpy(ci.challenge_hash, body, NODE_CHALLENGE_BYTES);
    ci.start_time = c->start;
    memcpy(ci.ip, c->ip, sizeof ci.ip);
    ci.state = 2; /* processing */

    handler_fn handler = handler_for(h->command);
    if (!handler) { /* node_check_header already refused other commands */
        respond(c, NODE_ERR_COMMAND, h->group, h->echo, body, NULL, 0);
        return;
    }
    if (enter_handler() != 0) {
        respond(c, NODE_ERR_INTERNAL, h->group, h->echo, body, NULL, 0);
        debug("raida_node: %s 2/%u refused: shutting down", c->ip, h->command);
        return;
    }
    handler(&ci);
    leave_handler();

    const unsigned char *out = NULL;
    size_t out_len = 0;
    uint8_t status = ci.command_status;
    if (ci.output_size > 0 && ci.output && ci.output_size <= NODE_MAX_RESPONSE_BODY - NODE_TRAILER_BYTES) {
        out = ci.output;
        out_len = (size_t)ci.output_size;
    } else if (ci.output_size != 0) {
        error("raida_node: handler 2/%u left output %p with output_size %d; answering %d",
              h->command, (void *)ci.output, ci.output_size, NODE_ERR_INTERNAL);
        status = NODE_ERR_INTERNAL;
    }
    respond(c, status, h->group, h->echo, body, out, out_len);
    debug("raida_node: %s 2/%u status %u, %zu body bytes, %u us", c->ip, h->command, status,
          out_len ? out_len + NODE_TRAILER_BYTES : 0, micros_since(&c->start));
    free(ci.output);
}

/* Reads one request, answers it and closes. */
static void serve(struct conn *c)
{
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    static const uint8_t no_echo[2] = {0, 0};
    unsigned char header[NODE_HEADER_BYTES];
    size_t got = node_read_up_to(c->fd, header, sizeof header, &c->read_until);
    if (got == 0)
        return; /* connected and left: nothing to answer */
    if (got < sizeof header) {
        respond(c, NODE_ERR_LENGTH, 0, no_echo, NULL, NULL, 0);
        debug("raida_node: %s sent a %zu-byte header: status %d", c->ip, got, NODE_ERR_LENGTH);
        return;
    }
    struct node_request_header h;
    node_parse_header(header, &h);
    enum node_status status = node_check_header(header, node.cfg.raida_id, (uint16_t)node.cfg.coin_id);
    if (status != NODE_OK) {
        respond(c, status, h.group, h.echo, NULL, NULL, 0);
        debug("raida_node: %s header refused: status %d", c->ip, status);
        return;
    }
    unsigned char *body = malloc(h.body_size ? h.body_size : 1);
    if (!body) {
        respond(c, NODE_ERR_INTERNAL, h.group, h.echo, NULL, NULL, 0);
        return;
    }
    got = node_read_up_to(c->fd, body, h.body_size, &c->read_until);
    const unsigned char *challenge = got >= NODE_CHALLENGE_BYTES ? body : NULL;
    if (got < h.body_size) {
        respond(c, NODE_ERR_LENGTH, h.group, h.echo, challenge, NULL, 0);
        debug("raida_node: %s sent %zu of %u body bytes: status %d", c->ip, got, h.body_size,
              NODE_ERR_LENGTH);
    } else if ((status = node_check_body(body, h.body_size)) != NODE_OK) {
        respond(c, status, h.group, h.echo, challenge, NULL, 0);
        debug("raida_node: %s body refused: status %d", c->ip, status);
    } else {
        dispatch(c, &h, body);
    }
    free(body);
}

static void *connection_thread(void *arg)
{
    struct conn *c = arg;
    serve(c);
    linger_close(c->fd);
    free(c);
    pthread_mutex_lock(&node.mtx);
    node.connections--;
    pthread_cond_broadcast(&node.changed);
    pthread_mutex_unlock(&node.mtx);
    return NULL;
}

static void start_connection(int fd, const struct sockaddr_in *peer)
{
    pthread_mutex_lock(&node.mtx);
    int admitted = node.connections < MAX_CONNECTIONS;
    if (admitted)
        node.connections++;
    pthread_mutex_unlock(&node.mtx);
    if (!admitted) {
        warning("raida_node: %d connections already open; closing a new one", MAX_CONNECTIONS);
        close(fd);
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    pthread_attr_t attr;
    pthread_t thread;
    int started = 0;
    if (c) {
        c->fd = fd;
        gettimeofday(&c->start, NULL);
        c->read_until = node_deadline_after(node.io_timeout_ms);
        inet_ntop(AF_INET, &peer->sin_addr, c->ip, sizeof c->ip);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&thread, &attr, connection_thread, c) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!started) {
        error("raida_node: cannot start a connection thread");
        free(c);
        close(fd);
        pthread_mutex_lock(&node.mtx);
        node.connections--;
        pthread_mutex_unlock(&node.mtx);
    }
}

static void flush_now(const char *why);

/* Waits for SIGTERM or SIGINT (blocked in every thread), then wakes the accept loop. A
 * second signal while handlers are still finishing writes dirty pages back and exits at
 * once, without waiting for them. */
static void *signal_thread(void *arg)
{
    sigset_t *set = arg;
    int sig = 0;
    while (sigwait(set, &sig) != 0)
        ;
    debug("raida_node: signal %d: stopping", sig);
    pthread_mutex_lock(&node.mtx);
    node.stopping = 1;
    pthread_cond_broadcast(&node.changed);
    pthread_mutex_unlock(&node.mtx);
    ssize_t ignored = write(node.wake[1], "x", 1);
    (void)ignored;
    while (sigwait(set, &sig) != 0)
        ;
    warning("raida_node: second signal %d: exiting without waiting for running handlers", sig);
    flush_now("exit on a second signal");
    fflush(stderr);
    _exit(0);
}

static void flush_now(const char *why)
{
    struct node_flush_result r = node_flush_dirty_pages(node.folder);
    if (r.written || r.failed)
        debug("raida_node: %s: wrote %d dirty page(s), %d failed", why, r.written, r.failed);
}

/* Writes dirty pages back every flush_freq seconds until shutdown begins. */
static void *flusher_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&node.mtx);
    while (!node.stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += node.cfg.flush_freq;
        while (!node.stopping && pthread_cond_timedwait(&node.changed, &node.mtx, &until) != ETIMEDOUT)
            ;
        if (node.stopping)
            break;
        pthread_mutex_unlock(&node.mtx);
        flush_now("periodic flush");
        pthread_mutex_lock(&node.mtx);
    }
    pthread_mutex_unlock(&node.mtx);
    return NULL;
}

/* The node folder: argv[1] when given, else the directory part of argv[0] as typed. */
static int find_folder(int argc, char **argv)
{
    char given[PATH_MAX];
    if (argc == 2) {
        snprintf(given, sizeof given, "%s", argv[1]);
    } else {
        const char *slash = strrchr(argv[0], '/');
        if (!slash)
            snprintf(given, sizeof given, ".");
        else if (slash == argv[0])
            snprintf(given, sizeof given, "/");
        else
            snprintf(given, sizeof given, "%.*s", (int)(slash - argv[0]), argv[0]);
    }
    if (!realpath(given, node.folder)) {
        fprintf(stderr, "raida_node: node folder %s: %s\n", given, strerror(errno));
        return -1;
    }
    return 0;
}

/* Resolves every raida_servers entry to IPv4 and hands it to the harness's config. */
static int set_peers(void)
{
    for (int i = 0; i < NODE_TOTAL_RAIDA; i++) {
        char host[NODE_HOSTPORT_MAX];
        uint16_t port;
        if (node_split_host_port(node.cfg.raida_servers[i], host, sizeof host, &port) != 0) {
            /* the library's reader accepts "[v6]:port"; the node serves IPv4 only */
            fprintf(stderr, "raida_node: raida_servers[%d] \"%s\": the node needs an IPv4 host:port\n",
                    i, node.cfg.raida_servers[i]);
            return -1;
        }
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        int rc = getaddrinfo(host, NULL, &hints, &res);
        if (rc != 0 || !res) {
            fprintf(stderr, "raida_node: raida_servers[%d] host %s: %s\n", i, host, gai_strerror(rc));
            return -1;
        }
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, ip, sizeof ip);
        freeaddrinfo(res);
        host_set_peer(i, ip, port);
    }
    return 0;
}

/* The longest timeout the environment may set (one hour, as the library's settings). */
#define MAX_ENV_MS 3600000L

/* A positive number of milliseconds from the environment (at most MAX_ENV_MS), or
 * `fallback`. */
static long env_ms(const char *name, long fallback)
{
    const char *text = getenv(name);
    if (!text || !*text)
        return fallback;
    char *end = NULL;
    long ms = strtol(text, &end, 10);
    if (*end != '\0' || ms <= 0) {
        fprintf(stderr, "raida_node: ignoring %s=%s (not a positive number of ms)\n", name, text);
        return fallback;
    }
    return ms > MAX_ENV_MS ? MAX_ENV_MS : ms;
}

static int listen_on(int port)
{
    const char *addr = getenv("RAIDA_NODE_LISTEN_ADDR");
    if (!addr || !*addr)
        addr = "127.0.0.1";
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
        fprintf(stderr, "raida_node: RAIDA_NODE_LISTEN_ADDR=%s is not an IPv4 address\n", addr);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(fd, 128) != 0) {
        fprintf(stderr, "raida_node: cannot listen on %s:%d: %s\n", addr, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void accept_until_stopped(void)
{
    struct pollfd fds[2] = {{.fd = node.listen_fd, .events = POLLIN}, {.fd = node.wake[0], .events = POLLIN}};
    for (;;) {
        int n = poll(fds, 2, -1);
        if (n < 0 && errno != EINTR)
            error("raida_node: poll: %s", strerror(errno));
        if (fds[1].revents)
            return;
        if (n <= 0 || !(fds[0].revents & POLLIN))
            continue;
        struct sockaddr_in peer;
        socklen_t peer_len = sizeof peer;
        int fd = accept4(node.listen_fd, (struct sockaddr *)&peer, &peer_len, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                error("raida_node: accept: %s", strerror(errno));
                usleep(10000); /* let connections finish rather than spin */
            }
            continue;
        }
        start_connection(fd, &peer);
    }
}

/* Lets running handlers finish (bounded), then writes every dirty page back. */
static void shut_down(void)
{
    close(node.listen_fd);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += SHUTDOWN_WAIT_SECONDS;
    pthread_mutex_lock(&node.mtx);
    node.stopping = 1;
    pthread_cond_broadcast(&node.changed);
    while (node.in_handler > 0 && pthread_cond_timedwait(&node.changed, &node.mtx, &until) != ETIMEDOUT)
        ;
    int still_running = node.in_handler;
    pthread_mutex_unlock(&node.mtx);
    if (still_running)
        warning("raida_node: %d handler(s) still running after %d s; flushing anyway", still_running,
                SHUTDOWN_WAIT_SECONDS);
    struct node_flush_result r = node_flush_dirty_pages(node.folder);
    debug("raida_node: RAIDA %d stopped; final flush wrote %d page(s), %d failed", node.cfg.raida_id,
          r.written, r.failed);
}

int main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: %s [node-folder]\n"
                        "  The folder holds config.toml and Data/; by default it is the\n"
                        "  directory part of the program path as typed.\n", argv[0]);
        return EXIT_USAGE;
    }
    /* Before any thread exists: SIGPIPE never kills us, SIGTERM/SIGINT go to sigwait. */
    signal(SIGPIPE, SIG_IGN);
    static sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    /* Echo the library's lines from its first call on: reading the config below is that
     * call, and the library reads its settings (and logs any it refuses) then; a line its
     * metrics thread logs at once is in the node's log too. */
    host_log_echo(1);

    if (find_folder(argc, argv) != 0)
        return EXIT_CONFIG;
    char path[PATH_MAX + 16], why[512];
    snprintf(path, sizeof path, "%s/config.toml", node.folder);
    if (node_config_load(path, &node.cfg, why, sizeof why) != 0) {
        fprintf(stderr, "raida_node: %s\n", why);
        return EXIT_CONFIG;
    }

    node.io_timeout_ms = env_ms("RAIDA_NODE_READ_TIMEOUT_MS", DEFAULT_READ_TIMEOUT_MS);

    host_init(node.cfg.raida_id, (uint8_t)node.cfg.coin_id);
    config.port = node.cfg.port;
    config.cwd = node.folder;
    config.flush_freq = node.cfg.flush_freq;
    if (set_peers() != 0)
        return EXIT_CONFIG;
    host_set_page_loader(node_page_load, node.folder);

    node.listen_fd = listen_on(node.cfg.port);
    if (node.listen_fd < 0)
        return EXIT_LISTEN;
    if (pipe2(node.wake, O_CLOEXEC) != 0) {
        perror("raida_node: pipe");
        return EXIT_LISTEN;
    }
    pthread_t signals, flusher;
    if (pthread_create(&signals, NULL, signal_thread, &stop_signals) != 0 ||
        pthread_create(&flusher, NULL, flusher_thread, NULL) != 0) {
        fprintf(stderr, "raida_node: cannot start threads\n");
        return EXIT_LISTEN;
    }
    debug("raida_node: RAIDA %d (coin id %d) listening on port %d, folder %s, flush every %d s",
          node.cfg.raida_id, node.cfg.coin_id, node.cfg.port, node.folder, node.cfg.flush_freq);

    accept_until_stopped();
    pthread_join(flusher, NULL);
    shut_down();
    fflush(stderr);
    /* Connection threads may still sit in recv(): end the process without running exit
     * handlers (the library's, libc's, a sanitizer's) underneath them. Nothing is
     * buffered any more: pages are on disk and stderr is flushed. */
    _exit(0);
}
