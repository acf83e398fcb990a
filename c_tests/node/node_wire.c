/*
 * node_wire.c: legacy framing for the node. See node_wire.h.
 */
#include "node_wire.h"

#include <pthread.h>
#include <string.h>

#define CLOUD_ID 1
#define SPLIT_ID 0
#define MAX_SHARD 3

static uint32_t crc_table[256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void fill_crc_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t node_crc32(const unsigned char *data, size_t len)
{
    pthread_once(&crc_table_once, fill_crc_table);
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++)
        crc = crc_table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}

void node_parse_header(const unsigned char header[NODE_HEADER_BYTES], struct node_request_header *out)
{
    out->raida = header[2];
    out->shard = header[3];
    out->group = header[4];
    out->command = header[5];
    out->coin_id = (uint16_t)(header[6] << 8 | header[7]);
    out->encryption_type = header[16];
    out->body_size = (uint16_t)(header[22] << 8 | header[23]);
    out->echo[0] = header[30];
    out->echo[1] = header[31];
}

static int is_healing_command(uint8_t command)
{
    return command == 40 || command == 50 || command == 60 || command == 80;
}

enum node_status node_check_header(const unsigned char header[NODE_HEADER_BYTES], int raida_no,
                                   uint16_t coin_id)
{
    struct node_request_header h;
    node_parse_header(header, &h);
    if (header[0] != CLOUD_ID)
        return NODE_ERR_CLOUD_ID;
    if (header[1] != SPLIT_ID)
        return NODE_ERR_SPLIT_ID;
    if (h.raida != raida_no)
        return NODE_ERR_WRONG_RAIDA;
    if (h.group != NODE_HEALING_GROUP)
        return NODE_ERR_COMMAND_GROUP;
    if (h.shard > MAX_SHARD)
        return NODE_ERR_SHARD_ID;
    if (!is_healing_command(h.command))
        return NODE_ERR_COMMAND;
    if (h.coin_id != coin_id)
        return NODE_ERR_COIN_ID;
    if (h.encryption_type != 0)
        return NODE_ERR_ENCRYPTION;
    return NODE_OK;
}

enum node_status node_check_body(const unsigned char *body, size_t body_size)
{
    if (body_size < NODE_TRAILER_BYTES)
        return NODE_ERR_LENGTH;
    if (body[body_size - 2] != 0x3E || body[body_size - 1] != 0x3E)
        return NODE_ERR_EOF;
    if (body_size < NODE_MIN_BODY_BYTES)
        return NODE_ERR_LENGTH;
    uint32_t crc = node_crc32(body, 12);
    const unsigned char expected[4] = {(unsigned char)(crc >> 24), (unsigned char)(crc >> 16),
                                       (unsigned char)(crc >> 8), (unsigned char)crc};
    if (memcmp(body + 12, expected, 4) != 0)
        return NODE_ERR_CRC;
    return NODE_OK;
}

void node_response_header(unsigned char out[NODE_HEADER_BYTES], int raida_no, uint8_t status,
                          uint8_t group, const uint8_t echo[2], uint32_t body_size,
                          uint32_t exec_micros, const unsigned char *challenge)
{
    memset(out, 0, NODE_HEADER_BYTES);
    out[0] = (unsigned char)raida_no;
    out[1] = 0;
    out[2] = status;
    out[3] = group;
    out[4] = 0;
    out[5] = 1;
    out[6] = echo[0];
    out[7] = echo[1];
    out[8] = 0;
    out[9] = (unsigned char)(body_size >> 16);
    out[10] = (unsigned char)(body_size >> 8);
    out[11] = (unsigned char)body_size;
    out[12] = (unsigned char)(exec_micros >> 24);
    out[13] = (unsigned char)(exec_micros >> 16);
    out[14] = (unsigned char)(exec_micros >> 8);
    out[15] = (unsigned char)exec_micros;
    if (challenge)
        memcpy(out + 16, challenge, NODE_CHALLENGE_BYTES);
}
