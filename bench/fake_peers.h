/*
 * fake_peers.h: loopback RAIDA peers for the fix benchmark.
 *
 * One child process serves up to 25 listening sockets on 127.0.0.1 with epoll, one
 * thread, and answers the 55-byte validate_ticket request a fixing server sends
 * (docs/wire-protocol.md) the way a legacy peer does: a 32-byte header (byte 0 its index,
 * byte 2 status 250, bytes 9-11 the body size, bytes 16-31 the request's challenge),
 * then n x (den, sn) and 3E 3E, then it closes the connection.
 *
 * What a peer answers is chosen by the ticket the fixer sends it, so one server covers
 * every scenario: FAKE_PEER_TICKET(FAKE_PEER_HONEST, n) lists the first n coins of the
 * list given to fake_peers_start; FAKE_PEER_TICKET(FAKE_PEER_STALL, 0) accepts, reads
 * the request and never answers (the connection is closed when the fixer closes it).
 */
#ifndef RAIDA_BENCH_FAKE_PEERS_H
#define RAIDA_BENCH_FAKE_PEERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FAKE_PEER_HONEST 1u
#define FAKE_PEER_STALL 2u
/* A ticket id that tells a fake peer how to behave; never 0. */
#define FAKE_PEER_TICKET(mode, n) (((uint32_t)(mode) << 24) | (uint32_t)(n))

struct fake_peers {
    pid_t pid;                /* the serving child */
    uint16_t port[25];        /* port of peer i on 127.0.0.1; 0 for `self` */
};

/* Starts peers 0..24 except `self`; `coins_wire` holds ncoins x 5 bytes (den, sn BE)
 * and is copied. Returns 0, or -1 with a message on stderr. */
int fake_peers_start(struct fake_peers *peers, int self, const unsigned char *coins_wire,
                     size_t ncoins);
/* Stops the child and reaps it. */
void fake_peers_stop(struct fake_peers *peers);

#endif /* RAIDA_BENCH_FAKE_PEERS_H */
