/* fake_peers.c: see fake_peers.h. */
#define _GNU_SOURCE
#include "fake_peers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define REQUEST_BYTES 55   /* 32-byte header + 23-byte body */
#define HEADER_BYTES 32
#define CHALLENGE_AT 32    /* the body's first 16 bytes */
#define TICKET_AT 49       /* header, challenge (16), claimer index (1) */
#define MAX_FDS 4096
/* The server gives up by itself, in case its parent dies without stopping it. */
#define LIFETIME_SECONDS 600

struct conn {
    int peer;        /* -1: slot unused */
    int stalled;
    unsigned char request[REQUEST_BYTES];
    size_t got;
    unsigned char *response;
    size_t response_size, sent;
};

static struct conn conns[MAX_FDS];
static int listener_peer[MAX_FDS]; /* peer index of a listening fd, -1 otherwise */

static void drop(int epoll_fd, int fd)
{
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(conns[fd].response);
    memset(&conns[fd], 0, sizeof conns[fd]);
    conns[fd].peer = -1;
}

/* Builds what peer `peer` answers to the request in `c`; 0, or -1 to hang up (no vote). */
static int build_answer(struct conn *c, const unsigned char *coins_wire, size_t ncoins)
{
    const unsigned char *t = c->request + TICKET_AT;
    uint32_t ticket = (uint32_t)t[0] << 24 | (uint32_t)t[1] << 16 | (uint32_t)t[2] << 8 | t[3];
    uint32_t mode = ticket >> 24, n = ticket & 0xFFFFFFu;
    if (mode == FAKE_PEER_STALL) {
        c->stalled = 1;
        return 0;
    }
    if (mode != FAKE_PEER_HONEST || n > ncoins)
        return -1;
    size_t body = (size_t)n * 5 + 2;
    c->response_size = HEADER_BYTES + body;
    c->response = calloc(1, c->response_size);
    if (!c->response)
        return -1;
    unsigned char *h = c->response;
    h[0] = (unsigned char)c->peer;
    h[2] = 250;                 /* STATUS_SUCCESS */
    h[3] = 2;                   /* command group */
    h[5] = 1;
    h[6] = c->request[30];      /* echo bytes */
    h[7] = c->request[31];
    h[9] = (unsigned char)(body >> 16);
    h[10] = (unsigned char)(body >> 8);
    h[11] = (unsigned char)body;
    memcpy(h + 16, c->request + CHALLENGE_AT, 16);
    memcpy(h + HEADER_BYTES, coins_wire, (size_t)n * 5);
    h[c->response_size - 2] = 0x3E;
    h[c->response_size - 1] = 0x3E;
    return 0;
}

/* Sends what is left of the answer; 1 when all is sent, 0 to wait, -1 on error. */
static int flush_answer(int fd, struct conn *c)
{
    while (c->sent < c->response_size) {
        ssize_t w = send(fd, c->response + c->sent, c->response_size - c->sent, MSG_NOSIGNAL);
        if (w < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        c->sent += (size_t)w;
    }
    return 1;
}

static void on_readable(int epoll_fd, int fd, const unsigned char *coins_wire, size_t ncoins)
{
    struct conn *c = &conns[fd];
    for (;;) {
        unsigned char scratch[256];
        unsigned char *into = c->got < REQUEST_BYTES ? c->request + c->got : scratch;
        size_t room = c->got < REQUEST_BYTES ? REQUEST_BYTES - c->got : sizeof scratch;
        ssize_t r = recv(fd, into, room, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            drop(epoll_fd, fd); /* the fixer hung up */
            return;
        }
        if (r < 0)
            return;
        if (c->got >= REQUEST_BYTES)
            continue; /* a stalled peer swallows anything more */
        c->got += (size_t)r;
        if (c->got < REQUEST_BYTES)
            continue;
        if (build_answer(c, coins_wire, ncoins) != 0) {
            drop(epoll_fd, fd);
            return;
        }
        if (c->stalled)
            continue;
        int done = flush_answer(fd, c);
        if (done != 0) {
            drop(epoll_fd, fd); /* a legacy peer closes after its answer */
            return;
        }
        struct epoll_event ev = { .events = EPOLLOUT, .data.fd = fd };
        epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &ev);
        return;
    }
}

static void on_acceptable(int epoll_fd, int listen_fd)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (fd >= MAX_FDS) {
            close(fd);
            continue;
        }
        memset(&conns[fd], 0, sizeof conns[fd]);
        conns[fd].peer = listener_peer[listen_fd];
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            conns[fd].peer = -1;
        }
    }
}

static void serve(const int *listen_fd, const unsigned char *coins_wire, size_t ncoins)
{
    int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0)
        _exit(2);
    for (int i = 0; i < 25; i++) {
        if (listen_fd[i] < 0)
            continue;
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = listen_fd[i] };
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd[i], &ev) != 0)
            _exit(2);
    }
    struct epoll_event events[64];
    for (;;) {
        int n = epoll_wait(epoll_fd, events, 64, -1);
        if (n < 0 && errno != EINTR)
            _exit(2);
        for (int k = 0; k < n; k++) {
            int fd = events[k].data.fd;
            if (listener_peer[fd] >= 0) {
                on_acceptable(epoll_fd, fd);
            } else if (conns[fd].peer >= 0 && (events[k].events & EPOLLOUT)) {
                if (flush_answer(fd, &conns[fd]) != 0)
                    drop(epoll_fd, fd);
            } else if (conns[fd].peer >= 0) {
                on_readable(epoll_fd, fd, coins_wire, ncoins);
            }
        }
    }
}

int fake_peers_start(struct fake_peers *peers, int self, const unsigned char *coins_wire,
                     size_t ncoins)
{
    int listen_fd[25];
    memset(peers, 0, sizeof *peers);
    for (int i = 0; i < MAX_FDS; i++) {
        listener_peer[i] = -1;
        conns[i].peer = -1;
    }
    for (int i = 0; i < 25; i++) {
        listen_fd[i] = -1;
        if (i == self)
            continue;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_in addr = { .sin_family = AF_INET,
                                    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof addr;
        if (fd < 0 || fd >= MAX_FDS || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
            listen(fd, 128) != 0 || getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
            perror("fake_peers: listen on 127.0.0.1");
            for (int j = 0; j <= i; j++)
                if (listen_fd[j] >= 0)
                    close(listen_fd[j]);
            if (fd >= 0)
                close(fd);
            return -1;
        }
        listen_fd[i] = fd;
        listener_peer[fd] = i;
        peers->port[i] = ntohs(addr.sin_port);
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
        serve(listen_fd, coins_wire, ncoins);
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
