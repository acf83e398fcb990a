/*
 * node_pages.c: page files for the node. See node_pages.h.
 */
#define _GNU_SOURCE
#include "node_pages.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"
#include "node_io.h"

int node_page_path(const char *folder, int8_t den, uint16_t page_no, char *out, size_t out_len)
{
    int n = snprintf(out, out_len, "%s/Data/%02x/%02x/%04x.bin", folder, (unsigned)(uint8_t)den,
                     (unsigned)(page_no >> 8), (unsigned)page_no);
    return (n < 0 || (size_t)n >= out_len) ? -1 : 0;
}

int node_page_load(int8_t den, uint16_t page_no, unsigned char *data, void *ctx)
{
    const char *folder = ctx;
    char path[PATH_MAX];
    if (node_page_path(folder, den, page_no, path, sizeof path) != 0)
        return 1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            error("raida_node: cannot open %s: %s", path, strerror(errno));
        return 1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size != HOST_PAGE_DATA_BYTES) {
        error("raida_node: %s is not a page file of %d bytes; treating the page as missing", path,
              HOST_PAGE_DATA_BYTES);
        close(fd);
        return 1;
    }
    size_t got = 0;
    while (got < HOST_PAGE_DATA_BYTES) {
        ssize_t n = read(fd, data + got, HOST_PAGE_DATA_BYTES - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            error("raida_node: short read of %s; treating the page as missing", path);
            close(fd);
            return 1;
        }
        got += (size_t)n;
    }
    close(fd);
    return 0;
}

/* The folder part of path into dir (PATH_MAX bytes); 0 when path has no folder part. */
static int parent_of(const char *path, char *dir)
{
    snprintf(dir, PATH_MAX, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    return 1;
}

/* mkdir -p of the folders above a page file. */
static int make_parents(const char *path)
{
    char dir[PATH_MAX];
    if (!parent_of(path, dir))
        return 0;
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return (mkdir(dir, 0755) != 0 && errno != EEXIST) ? -1 : 0;
}

static void sync_parent(const char *path)
{
    char dir[PATH_MAX];
    if (!parent_of(path, dir))
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int node_page_write(const char *folder, int8_t den, uint16_t page_no, const unsigned char *data)
{
    char path[PATH_MAX], temp[PATH_MAX + 32];
    if (node_page_path(folder, den, page_no, path, sizeof path) != 0) {
        error("raida_node: page path of %d/%u too long", den, page_no);
        return -1;
    }
    snprintf(temp, sizeof temp, "%s.tmp-%ld", path, (long)getpid());
    if (make_parents(path) != 0) {
        error("raida_node: cannot create the folders of %s: %s", path, strerror(errno));
        return -1;
    }
    int fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        error("raida_node: cannot create %s: %s", temp, strerror(errno));
        return -1;
    }
    if (node_write_all(fd, data, HOST_PAGE_DATA_BYTES, NULL) != 0 || fsync(fd) != 0) {
        error("raida_node: cannot write %s: %s", temp, strerror(errno));
        close(fd);
        unlink(temp);
        return -1;
    }
    if (close(fd) != 0 || rename(temp, path) != 0) {
        error("raida_node: cannot replace %s: %s", path, strerror(errno));
        unlink(temp);
        return -1;
    }
    sync_parent(path);
    return 0;
}

struct flush_ctx {
    const char *folder;
    struct node_flush_result result;
};

static void flush_page(struct page_s *page, void *arg)
{
    struct flush_ctx *ctx = arg;
    if (!page->is_dirty)
        return;
    if (node_page_write(ctx->folder, page->denomination, page->no, page->data) == 0) {
        page->is_dirty = 0;
        ctx->result.written++;
    } else {
        ctx->result.failed++;
    }
}

struct node_flush_result node_flush_dirty_pages(const char *folder)
{
    struct flush_ctx ctx = {.folder = folder};
    host_for_each_page(flush_page, &ctx);
    return ctx.result;
}
