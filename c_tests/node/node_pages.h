/*
 * node_pages.h: the node's page files, in the legacy layout (docs/abi.md):
 * <folder>/Data/<den as 2 hex digits of its byte>/<page >> 8 as 2 hex>/<page as 4 hex>.bin,
 * each exactly 17,408 bytes (1024 records of AN 16 bytes + MFS 1 byte).
 *
 * Pages are read on demand through the harness's page loader; a missing file is a missing
 * page. Dirty pages are written back whole and atomically (a temporary file in the same
 * folder, fsync, rename over the old one), so a crash leaves either the old or the new page.
 */
#ifndef RAIDA_NODE_PAGES_H
#define RAIDA_NODE_PAGES_H

#include <stddef.h>
#include <stdint.h>

/* "<folder>/Data/..../xxxx.bin" for (den, page_no); 0, or -1 when it does not fit. */
int node_page_path(const char *folder, int8_t den, uint16_t page_no, char *out, size_t out_len);

/* A host_page_loader_fn: ctx is the node folder (a NUL-terminated path). 0 when the page
 * file exists and has the right size; 1 otherwise (a wrong size or an I/O error is logged). */
int node_page_load(int8_t den, uint16_t page_no, unsigned char *data, void *ctx);

/* Writes one page file atomically, creating its folders. 0, or -1 (logged). */
int node_page_write(const char *folder, int8_t den, uint16_t page_no, const unsigned char *data);

struct node_flush_result {
    int written; /* dirty pages written back and marked clean */
    int failed;  /* dirty pages whose write failed; they stay dirty for the next flush */
};

/* Writes back every dirty cached page (each under its page lock, so no handler changes it
 * meanwhile) and clears its is_dirty. */
struct node_flush_result node_flush_dirty_pages(const char *folder);

#endif /* RAIDA_NODE_PAGES_H */
