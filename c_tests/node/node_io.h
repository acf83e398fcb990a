/*
 * node_io.h: the node's bounded I/O. A connection thread reads and writes with a
 * deadline (CLOCK_MONOTONIC) so a slow or silent client cannot hold it; page files are
 * written whole, blocking.
 */
#ifndef RAIDA_NODE_IO_H
#define RAIDA_NODE_IO_H

#include <stddef.h>
#include <time.h>

/* CLOCK_MONOTONIC now + ms. */
struct timespec node_deadline_after(long ms);
/* Waits until fd is ready for `events` (poll(2) events) or the deadline passes: 1 ready
 * (or an error or hang-up to be seen by the next recv/send), 0 deadline passed. */
int node_wait_ready(int fd, short events, const struct timespec *until);
/* Reads up to len bytes from a socket; returns how many arrived before EOF, an error or
 * the deadline. Bytes already received are always taken, even past the deadline (a
 * connection thread that starts late must not refuse a request that came in time). */
size_t node_read_up_to(int fd, unsigned char *buf, size_t len, const struct timespec *until);
/* Writes all len bytes; 0, or -1. With `until`, fd is a socket and the bytes must be
 * taken before the deadline (-1 when the client left or read too slowly); with NULL, fd
 * is a file and each write may block. */
int node_write_all(int fd, const unsigned char *buf, size_t len, const struct timespec *until);

#endif /* RAIDA_NODE_IO_H */
