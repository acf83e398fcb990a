/* fake_peer.c: see fake_peer.h. */
#define _GNU_SOURCE
#include "fake_peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "raida_healing.h"

#define HEADER_BYTES 32
#define CHALLENGE_AT 32    /* the request body's first 16 bytes */
#define TICKET_AT 49       /* header, challenge (16), claimer index (1) */
#define COIN_BYTES 5
/* A forked server gives up by itself, in case its parent dies without stopping it. */
#define LIFETIME_SECONDS 600

/* One socket the engine watches: a listener, the wake pipe (peer NULL) or a connection. */
struct fake_peer_conn {
    struct fake_peer *peer;
    int fd;              /* -1 once dropped (freed after the current batch of events) */
    int listening;
    int held;            /* a stalled connection, counted in peer->held */
    unsigned char request[FAKE_PEER_REQUEST_BYTES];
    size_t got;
    unsigned char *out;  /* the answer, once composed */
    size_t out_size, sent;
    struct fake_peer_conn *prev, *next;
};

struct fake_peer_loop {
    int epoll_fd;
    struct fake_peer_conn *conns; /* every live socket */
    struct fake_peer_conn *dead;  /* dropped during the current batch */
};

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static void loop_add(struct fake_peer_loop *l, struct fake_peer *peer, int fd, int listening)
{
    struct fake_peer_conn *c = calloc(1, sizeof *c);
    if (!c)
        die("fake_peer: calloc");
    c->peer = peer;
    c->fd = fd;
    c->listening = listening;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
    if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        free(c);
        return;
    }
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
}

/* Closes a connection; `by_client` when the client hung up (a held one then counts as
 * closed). Listeners and the wake pipe belong to their owner and stay open. */
static void drop(struct fake_peer_loop *l, struct fake_peer_conn *c, int by_client)
{
    struct fake_peer *p = c->peer;
    if (c->held && by_client) {
        pthread_mutex_lock(&p->mtx);
        p->held_closed++;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->mtx);
    }
    if (p && p->waiting == c)
        p->waiting = NULL;
    epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    if (p && !c->listening)
        close(c->fd);
    c->fd = -1;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = l->dead;
    l->dead = c;
}

static void bury(struct fake_peer_loop *l)
{
    while (l->dead) {
        struct fake_peer_conn *c = l->dead;
        l->dead = c->next;
        free(c->out);
        free(c);
    }
}

static void announce(unsigned char *header, size_t body_size)
{
    header[9] = (unsigned char)(body_size >> 16);
    header[10] = (unsigned char)(body_size >> 8);
    header[11] = (unsigned char)body_size;
}

/* The one place an answer is put together: the 32-byte legacy response header to the
 * request in `c`, then, for a 250, the first `listed` coins of the peer's list and 3E 3E.
 * 0, or -1 when out of memory. */
static int compose(struct fake_peer_conn *c, int status, size_t listed)
{
    size_t body = status == RAIDA_STATUS_SUCCESS ? listed * COIN_BYTES + 2 : 0;
    unsigned char *h = calloc(1, HEADER_BYTES + body);
    if (!h)
        return -1;
    h[0] = (unsigned char)c->peer->raida;
    h[2] = (unsigned char)status;
    h[3] = 2; /* command group */
    h[5] = 1;
    h[6] = c->request[30]; /* echo bytes */
    h[7] = c->request[31];
    announce(h, body);
    memcpy(h + 16, c->request + CHALLENGE_AT, 16);
    if (body) {
        memcpy(h + HEADER_BYTES, c->peer->list, listed * COIN_BYTES);
        h[HEADER_BYTES + body - 2] = 0x3E;
        h[HEADER_BYTES + body - 1] = 0x3E;
    }
    c->out = h;
    c->out_size = HEADER_BYTES + body;
    c->sent = 0;
    return 0;
}

/* Sends what is left of the answer; 1 when all is sent, 0 to wait, -1 on error. */
static int flush_answer(struct fake_peer_conn *c)
{
    while (c->sent < c->out_size) {
        ssize_t w = send(c->fd, c->out + c->sent, c->out_size - c->sent, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        c->sent += (size_t)w;
    }
    return 1;
}

/* Sends the composed answer and closes, as a legacy peer does, or waits to send more. */
static void answer(struct fake_peer_loop *l, struct fake_peer_conn *c)
{
    if (flush_answer(c) != 0) {
        drop(l, c, 0);
        return;
    }
    struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
    epoll_ctl(l->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
}

static uint32_t ticket_of(const unsigned char *request)
{
    const unsigned char *t = request + TICKET_AT;
    return (uint32_t)t[0] << 24 | (uint32_t)t[1] << 16 | (uint32_t)t[2] << 8 | t[3];
}

/* Acts on the whole request in `c` as the script says: composes an answer in c->out,
 * or holds the connection (no c->out). -1 to hang up unanswered. */
static int respond(struct fake_peer_loop *l, struct fake_peer_conn *c)
{
    struct fake_peer *p = c->peer;
    enum fake_peer_script script = p->script;
    size_t listed = p->ncoins;
    if (script == FAKE_PEER_BY_TICKET) {
        uint32_t ticket = ticket_of(c->request);
        script = (enum fake_peer_script)(ticket >> 24);
        listed = ticket & 0xFFFFFFu;
        if ((script != FAKE_PEER_LISTS && script != FAKE_PEER_STALLED) || listed > p->ncoins)
            return -1;
    }
    int first;
    switch (script) {
    case FAKE_PEER_HONEST:
        first = p->answered++ == 0;
        return compose(c, first ? RAIDA_STATUS_SUCCESS : RAIDA_STATUS_TICKET_CLAIMED_ALREADY,
                       listed);
    case FAKE_PEER_LISTS:
        return compose(c, RAIDA_STATUS_SUCCESS, listed);
    case FAKE_PEER_STALLED:
        pthread_mutex_lock(&p->mtx);
        c->held = 1;
        p->held++;
        pthread_mutex_unlock(&p->mtx);
        return 0;
    case FAKE_PEER_SLOW_ACCEPT: {
        struct fake_peer_conn *waiting = p->waiting;
        if (!waiting) {
            p->waiting = c;
            return 0;
        }
        p->waiting = NULL;
        if (compose(waiting, RAIDA_STATUS_SUCCESS, listed) == 0)
            answer(l, waiting);
        else
            drop(l, waiting, 0);
        return compose(c, RAIDA_STATUS_TICKET_CLAIMED_ALREADY, listed);
    }
    case FAKE_PEER_DECLINED:
        return compose(c, RAIDA_STATUS_NO_TICKET_FOUND, listed);
    case FAKE_PEER_LYING_SIZE:
    case FAKE_PEER_TRUNCATED:
    case FAKE_PEER_BAD_TRAILER:
    case FAKE_PEER_WRONG_ECHO:
    case FAKE_PEER_WRONG_INDEX:
        break;
    default:
        return -1;
    }
    if (compose(c, RAIDA_STATUS_SUCCESS, listed) != 0)
        return -1;
    size_t body = c->out_size - HEADER_BYTES;
    switch (script) {
    case FAKE_PEER_LYING_SIZE:
        announce(c->out, 2 + COIN_BYTES * 4097);
        break;
    case FAKE_PEER_TRUNCATED:
        announce(c->out, 17);
        c->out_size = HEADER_BYTES + (body < 7 ? body : 7);
        break;
    case FAKE_PEER_BAD_TRAILER:
        c->out[c->out_size - 1] = 0x3F;
        break;
    case FAKE_PEER_WRONG_ECHO:
        c->out[16 + 3] ^= 0x80;
        break;
    default: /* FAKE_PEER_WRONG_INDEX */
        c->out[0] = 99;
        break;
    }
    return 0;
}

/* Only a validate_ticket request for this peer counts. */
static int is_request_for(const struct fake_peer *p, const unsigned char *request)
{
    return request[0] == 1 && request[2] == p->raida && request[5] == 50;
}

static void on_readable(struct fake_peer_loop *l, struct fake_peer_conn *c)
{
    struct fake_peer *p = c->peer;
    for (;;) {
        unsigned char scratch[256];
        int whole = c->got >= FAKE_PEER_REQUEST_BYTES;
        unsigned char *into = whole ? scratch : c->request + c->got;
        size_t room = whole ? sizeof scratch : FAKE_PEER_REQUEST_BYTES - c->got;
        ssize_t r = recv(c->fd, into, room, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            drop(l, c, 1); /* the client hung up */
            return;
        }
        if (whole)
            continue; /* a held connection swallows anything more */
        c->got += (size_t)r;
        if (c->got < FAKE_PEER_REQUEST_BYTES)
            continue;
        if (!is_request_for(p, c->request)) {
            drop(l, c, 0);
            return;
        }
        pthread_mutex_lock(&p->mtx);
        if (p->requests < FAKE_PEER_KEPT)
            memcpy(p->request[p->requests], c->request, FAKE_PEER_REQUEST_BYTES);
        p->requests++;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->mtx);
        if (respond(l, c) != 0) {
            drop(l, c, 0);
            return;
        }
        if (c->out) {
            answer(l, c);
            return;
        }
    }
}

static void on_acceptable(struct fake_peer_loop *l, struct fake_peer_conn *listener)
{
    for (;;) {
        int fd = accept4(listener->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        loop_add(l, listener->peer, fd, 0);
    }
}

/* Serves until the wake pipe (a watched socket without a peer) becomes readable. */
static void serve(struct fake_peer_loop *l)
{
    struct epoll_event events[64];
    for (;;) {
        int n = epoll_wait(l->epoll_fd, events, 64, -1);
        if (n < 0 && errno != EINTR)
            die("fake_peer: epoll_wait");
        for (int k = 0; k < n; k++) {
            struct fake_peer_conn *c = events[k].data.ptr;
            if (c->fd < 0)
                continue; /* dropped earlier in this batch */
            if (!c->peer) {
                bury(l);
                return;
            }
            if (c->listening)
                on_acceptable(l, c);
            else if (c->out && (events[k].events & EPOLLOUT))
                answer(l, c);
            else
                on_readable(l, c);
        }
        bury(l);
    }
}

static struct fake_peer_loop *loop_new(void)
{
    struct fake_peer_loop *l = calloc(1, sizeof *l);
    if (!l)
        die("fake_peer: calloc");
    l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epoll_fd < 0)
        die("fake_peer: epoll_create1");
    return l;
}

static void loop_free(struct fake_peer_loop *l)
{
    while (l->conns)
        drop(l, l->conns, 0);
    bury(l);
    close(l->epoll_fd);
    free(l);
}

static void peer_init(struct fake_peer *p, int raida, enum fake_peer_script script,
                      unsigned char *list, size_t ncoins, int listen_fd, uint16_t port)
{
    memset(p, 0, sizeof *p);
    p->raida = raida;
    p->script = script;
    p->list = list;
    p->ncoins = ncoins;
    p->listen_fd = listen_fd;
    p->port = port;
    p->wake[0] = p->wake[1] = -1;
    pthread_mutex_init(&p->mtx, NULL);
    pthread_cond_init(&p->changed, NULL);
}

static unsigned char *copy_list(const unsigned char *coins_wire, size_t ncoins)
{
    unsigned char *list = malloc(ncoins * COIN_BYTES + 1);
    if (!list)
        die("fake_peer: malloc");
    if (ncoins)
        memcpy(list, coins_wire, ncoins * COIN_BYTES);
    return list;
}

/* A socket on 127.0.0.1 (listening unless backlog < 0) and its port; -1 on failure. */
static int open_listener(uint16_t *port, int backlog, int flags)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sin;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        (backlog >= 0 && listen(fd, backlog) != 0) ||
        getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
        perror("fake_peer: listen on 127.0.0.1");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(sin.sin_port);
    return fd;
}

int fake_peer_listen(uint16_t *port, int backlog)
{
    int fd = open_listener(port, backlog, 0);
    if (fd < 0)
        exit(2);
    return fd;
}

static void *peer_thread(void *arg)
{
    struct fake_peer_loop *l = arg;
    serve(l);
    loop_free(l);
    return NULL;
}

void fake_peer_start(struct fake_peer *peer, int raida, enum fake_peer_script script,
                     const unsigned char *coins_wire, size_t ncoins)
{
    uint16_t port;
    int fd = open_listener(&port, 128, SOCK_NONBLOCK);
    if (fd < 0)
        exit(2);
    peer_init(peer, raida, script, copy_list(coins_wire, ncoins), ncoins, fd, port);
    if (pipe2(peer->wake, O_CLOEXEC) != 0)
        die("fake_peer: pipe2");
    struct fake_peer_loop *l = loop_new();
    loop_add(l, peer, fd, 1);
    loop_add(l, NULL, peer->wake[0], 1);
    if (pthread_create(&peer->thread, NULL, peer_thread, l) != 0)
        die("fake_peer: pthread_create");
}

void fake_peer_stop(struct fake_peer *peer)
{
    if (write(peer->wake[1], "x", 1) != 1)
        perror("fake_peer: wake");
    pthread_join(peer->thread, NULL);
    close(peer->wake[0]);
    close(peer->wake[1]);
    close(peer->listen_fd);
    free(peer->list);
    pthread_cond_destroy(&peer->changed);
    pthread_mutex_destroy(&peer->mtx);
}

int fake_peer_requests(struct fake_peer *peer)
{
    pthread_mutex_lock(&peer->mtx);
    int n = peer->requests;
    pthread_mutex_unlock(&peer->mtx);
    return n;
}

int fake_peer_request(struct fake_peer *peer, int q, unsigned char out[FAKE_PEER_REQUEST_BYTES])
{
    pthread_mutex_lock(&peer->mtx);
    int ok = q >= 0 && q < FAKE_PEER_KEPT && q < peer->requests;
    if (ok)
        memcpy(out, peer->request[q], FAKE_PEER_REQUEST_BYTES);
    pthread_mutex_unlock(&peer->mtx);
    return ok ? 0 : -1;
}

int fake_peer_held_all_closed(struct fake_peer *peer)
{
    pthread_mutex_lock(&peer->mtx);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20 * (peer->held > 0 ? peer->held : 1);
    while (peer->held_closed < peer->held &&
           pthread_cond_timedwait(&peer->changed, &peer->mtx, &until) != ETIMEDOUT) {
    }
    int all = peer->held_closed == peer->held;
    pthread_mutex_unlock(&peer->mtx);
    return all;
}

int fake_peer_contacted(int listen_fd)
{
    fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            return 0;
        struct timeval safety = { 5, 0 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &safety, sizeof safety);
        unsigned char head[6];
        int is_request = recv(fd, head, sizeof head, MSG_WAITALL) == (ssize_t)sizeof head &&
                         head[0] == 1 && head[4] == 2 && head[5] == 50;
        close(fd);
        if (is_request)
            return 1;
    }
}

int fake_peers_start(struct fake_peers *peers, int self, enum fake_peer_script script,
                     const unsigned char *coins_wire, size_t ncoins)
{
    int listen_fd[25];
    memset(peers, 0, sizeof *peers);
    for (int i = 0; i < 25; i++) {
        listen_fd[i] = -1;
        if (i == self)
            continue;
        listen_fd[i] = open_listener(&peers->port[i], 128, SOCK_NONBLOCK);
        if (listen_fd[i] < 0) {
            for (int j = 0; j < i; j++)
                if (listen_fd[j] >= 0)
                    close(listen_fd[j]);
            return -1;
        }
    }
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fake_peers: fork");
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(0);
        alarm(LIFETIME_SECONDS);
        static struct fake_peer peer[25];
        unsigned char *list = copy_list(coins_wire, ncoins);
        struct fake_peer_loop *l = loop_new();
        for (int i = 0; i < 25; i++) {
            if (listen_fd[i] < 0)
                continue;
            peer_init(&peer[i], i, script, list, ncoins, listen_fd[i], peers->port[i]);
            loop_add(l, &peer[i], listen_fd[i], 1);
        }
        serve(l); /* until SIGTERM: there is no wake pipe */
        _exit(0);
    }
    for (int i = 0; i < 25; i++)
        if (listen_fd[i] >= 0)
            close(listen_fd[i]);
    peers->pid = pid;
    return 0;
}

void fake_peers_stop(struct fake_peers *peers)
{
    if (peers->pid <= 0)
        return;
    kill(peers->pid, SIGTERM);
    waitpid(peers->pid, NULL, 0);
    peers->pid = 0;
}
