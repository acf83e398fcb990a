/*
 * node_wire.h: the legacy request/response framing the node speaks (docs/wire-protocol.md,
 * "Request framing"), as pure functions over byte buffers so they can be tested alone.
 *
 * The node answers these statuses by itself, before any handler runs (the legacy
 * server's own codes, see docs/node.md):
 *    1 cloud id (byte 0) is not 1          16 header or body truncated, body < 18 bytes
 *    2 split id (byte 1) is not 0          18 the request is for another RAIDA (byte 2)
 *    4 shard id (byte 3) above 3           33 the body does not end with 3E 3E
 *    5 command group (byte 4) is not 2     34 encryption type (byte 16) is not 0
 *    6 command (byte 5) not 40/50/60/80    37 the challenge's CRC-32 does not match
 *    7 coin id (bytes 6-7) is not ours    252 the node could not run the handler
 */
#ifndef RAIDA_NODE_WIRE_H
#define RAIDA_NODE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define NODE_HEADER_BYTES 32
#define NODE_CHALLENGE_BYTES 16
#define NODE_TRAILER_BYTES 2
/* Challenge and trailer: the smallest legal type-0 body. */
#define NODE_MIN_BODY_BYTES (NODE_CHALLENGE_BYTES + NODE_TRAILER_BYTES)
/* Largest body a response header's 24-bit size can announce. */
#define NODE_MAX_RESPONSE_BODY 0xFFFFFF

#define NODE_HEALING_GROUP 2

enum node_status {
    NODE_OK = 0,
    NODE_ERR_CLOUD_ID = 1,
    NODE_ERR_SPLIT_ID = 2,
    NODE_ERR_SHARD_ID = 4,
    NODE_ERR_COMMAND_GROUP = 5,
    NODE_ERR_COMMAND = 6,
    NODE_ERR_COIN_ID = 7,
    NODE_ERR_LENGTH = 16,
    NODE_ERR_WRONG_RAIDA = 18,
    NODE_ERR_EOF = 33,
    NODE_ERR_ENCRYPTION = 34,
    NODE_ERR_CRC = 37,
    NODE_ERR_INTERNAL = 252,
};

/* What the node takes from a 32-byte request header. */
struct node_request_header {
    uint8_t raida;
    uint8_t shard;
    uint8_t group;
    uint8_t command;
    uint16_t coin_id;
    uint8_t encryption_type;
    uint16_t body_size;
    uint8_t echo[2];
};

/* The IEEE (zlib) CRC-32 of len bytes. */
uint32_t node_crc32(const unsigned char *data, size_t len);

/* Decodes a header (always succeeds: every byte pattern decodes). */
void node_parse_header(const unsigned char header[NODE_HEADER_BYTES], struct node_request_header *out);

/* Checks a header against this node, in the legacy server's order: cloud, split, RAIDA
 * index, group, shard, command, coin id, encryption type. NODE_OK or the status. */
enum node_status node_check_header(const unsigned char header[NODE_HEADER_BYTES], int raida_no,
                                   uint16_t coin_id);

/* Checks a type-0 body: length (16), trailer (33), challenge CRC (37). */
enum node_status node_check_body(const unsigned char *body, size_t body_size);

/* Writes the 32-byte legacy response header: RAIDA index, shard 0, status, group, 00 01,
 * echo bytes, 0, body size (24-bit, trailer included; 0 when there is no body), execution
 * time in microseconds (32-bit, wraps), then the 16 challenge bytes (zeros when NULL). */
void node_response_header(unsigned char out[NODE_HEADER_BYTES], int raida_no, uint8_t status,
                          uint8_t group, const uint8_t echo[2], uint32_t body_size,
                          uint32_t exec_micros, const unsigned char *challenge);

#endif /* RAIDA_NODE_WIRE_H */
