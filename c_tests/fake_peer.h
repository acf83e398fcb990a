/*
 * fake_peer.h: the one fake RAIDA peer of the C tests and the benchmark. Every C program
 * that needs peers uses it: build/test_fix (c_tests/test_fix.c) and build/bench
 * (bench/bench.c).
 *
 * A fake peer listens on 127.0.0.1 and answers the 55-byte validate_ticket request a
 * fixing server sends (docs/wire-protocol.md) the way its script says: the 32-byte
 * response header (byte 0 its index, byte 2 the status, bytes 6-7 the request's echo
 * bytes, bytes 9-11 the body size, bytes 16-31 the request's challenge), then its list of
 * coins (den, sn BE) and 3E 3E, then it closes the connection, as a legacy peer does. A
 * connection that does not carry a validate_ticket request for this peer (a stray
 * connection, one closed unused) is dropped and not counted.
 *
 * Two ways to run peers, one engine (epoll, one thread, non-blocking sockets):
 *  - fake_peer_start: one peer served by a thread of the caller, which can then read what
 *    it received (fake_peer_requests, fake_peer_request) and wait for the connections it
 *    holds to be closed (fake_peer_held_all_closed). The fix tests use this.
 *  - fake_peers_start: peers 0..24 but one, served by one forked child process (out of
 *    the measured process's descriptors and threads). The benchmark uses this, with
 *    FAKE_PEER_BY_TICKET so the ticket the fixer sends picks the answer.
 */
#ifndef RAIDA_TESTS_FAKE_PEER_H
#define RAIDA_TESTS_FAKE_PEER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FAKE_PEER_REQUEST_BYTES 55 /* 32-byte header + 23-byte body */
#define FAKE_PEER_KEPT 8           /* requests kept whole; more are only counted */

enum fake_peer_script {
    FAKE_PEER_HONEST = 1,  /* 250 + its list to the first request, 44 to later ones (a used ticket) */
    FAKE_PEER_LISTS,       /* 250 + its list to every request (only through FAKE_PEER_BY_TICKET) */
    FAKE_PEER_STALLED,     /* reads the request, never answers; holds the connection until closed */
    FAKE_PEER_SLOW_ACCEPT, /* holds the first connection unanswered until a second arrives; then
                            * answers the first 250 + its list and the second 44 */
    FAKE_PEER_LYING_SIZE,  /* announces 2 + 5 * 4097 body bytes, sends its list */
    FAKE_PEER_TRUNCATED,   /* announces 17 body bytes, sends 7, closes */
    FAKE_PEER_BAD_TRAILER, /* its list, ending 3E 3F */
    FAKE_PEER_WRONG_ECHO,  /* its list, one challenge byte flipped */
    FAKE_PEER_WRONG_INDEX, /* its list, byte 0 saying RAIDA 99 */
    FAKE_PEER_DECLINED,    /* status 43, no body */
    FAKE_PEER_BY_TICKET,   /* the ticket in the request picks the script, see FAKE_PEER_TICKET */
};

/* For FAKE_PEER_BY_TICKET: the ticket that makes the peer follow `script` with the first
 * `n` coins of its list (FAKE_PEER_LISTS or FAKE_PEER_STALLED); never 0. A ticket naming
 * another script, or more coins than the list has, gets the connection closed unanswered. */
#define FAKE_PEER_TICKET(script, n) (((uint32_t)(script) << 24) | (uint32_t)(n))

struct fake_peer {
    int raida;
    enum fake_peer_script script;
    uint16_t port;                   /* on 127.0.0.1 */
    int listen_fd;
    unsigned char *list;             /* ncoins x 5 bytes, owned */
    size_t ncoins;
    /* What the peer saw; read through the functions below (the serving thread writes it). */
    pthread_mutex_t mtx;
    pthread_cond_t changed;
    int requests;                    /* validate_ticket requests received */
    unsigned char request[FAKE_PEER_KEPT][FAKE_PEER_REQUEST_BYTES];
    int held, held_closed;           /* stalled connections, and how many the client closed */
    /* The serving thread's own. */
    int answered;                    /* FAKE_PEER_HONEST: 250 answers given */
    struct fake_peer_conn *waiting;  /* FAKE_PEER_SLOW_ACCEPT: the connection held back */
    /* The serving thread (fake_peer_start only). */
    pthread_t thread;
    int wake[2];
};

/* Starts peer `raida` with `script` on a thread; `coins_wire` (ncoins x 5 bytes) is copied.
 * Exits the process with a message if it cannot. */
void fake_peer_start(struct fake_peer *peer, int raida, enum fake_peer_script script,
                     const unsigned char *coins_wire, size_t ncoins);
/* Stops the thread, closes every connection, frees what the peer holds. */
void fake_peer_stop(struct fake_peer *peer);
/* How many validate_ticket requests the peer has received. */
int fake_peer_requests(struct fake_peer *peer);
/* A copy of request `q` (0-based, < FAKE_PEER_KEPT) as received; 0, or -1 if there is none. */
int fake_peer_request(struct fake_peer *peer, int q, unsigned char out[FAKE_PEER_REQUEST_BYTES]);
/* 1 when every connection the peer held unanswered has been closed by the client; waits
 * up to a safety timeout (20 s per held connection) for the closes to show. */
int fake_peer_held_all_closed(struct fake_peer *peer);

/* A listening (backlog >= 0) or only bound (backlog < 0: a connection is refused) socket
 * on 127.0.0.1 that nobody serves. Exits the process with a message if it cannot. */
int fake_peer_listen(uint16_t *port, int backlog);
/* Whether a validate_ticket request was sent to such a listener (reads its backlog). */
int fake_peer_contacted(int listen_fd);

struct fake_peers {
    pid_t pid;                       /* the serving child */
    uint16_t port[25];               /* port of peer i on 127.0.0.1; 0 for `self` */
};

/* Starts peers 0..24 except `self`, all with `script`, in one child process; `coins_wire`
 * (ncoins x 5 bytes) is the list of each. Returns 0, or -1 with a message on stderr. */
int fake_peers_start(struct fake_peers *peers, int self, enum fake_peer_script script,
                     const unsigned char *coins_wire, size_t ncoins);
/* Stops the child and reaps it. */
void fake_peers_stop(struct fake_peers *peers);

#endif /* RAIDA_TESTS_FAKE_PEER_H */
