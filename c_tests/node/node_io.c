/*
 * node_io.c: bounded I/O for the node. See node_io.h.
 */
#define _GNU_SOURCE
#include "node_io.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

struct timespec node_deadline_after(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

int node_wait_ready(int fd, short events, const struct timespec *until)
{
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long left_ms = (long long)(until->tv_sec - now.tv_sec) * 1000 +
                            (until->tv_nsec - now.tv_nsec) / 1000000;
        if (left_ms <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left_ms > INT_MAX ? INT_MAX : (int)left_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != 0)
            return 1;
    }
}

size_t node_read_up_to(int fd, unsigned char *buf, size_t len, const struct timespec *until)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(fd, buf + got, len - got, MSG_DONTWAIT);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK))
            break; /* end of stream or an error */
        if (errno != EINTR && !node_wait_ready(fd, POLLIN, until))
            break; /* nothing more before the deadline */
    }
    return got;
}

int node_write_all(int fd, const unsigned char *buf, size_t len, const struct timespec *until)
{
    while (len > 0) {
        if (until && !node_wait_ready(fd, POLLOUT, until))
            return -1;
        ssize_t n = until ? send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT) : write(fd, buf, len);
        if (n < 0 && (errno == EINTR || (until && (errno == EAGAIN || errno == EWOULDBLOCK))))
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}
