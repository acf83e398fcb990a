/*
 * install_probe.c: the smallest program a packager's user would build against an
 * installed libraida_healing (make install-test compiles it with pkg-config's flags).
 * It defines none of the server's symbols, so the library has no coin store and must
 * answer ERROR_INTERNAL (252) without a body.
 */
#include <stdio.h>
#include <string.h>

#include <raida_healing.h>

int main(void)
{
    unsigned char body[16 + 37 + 2] = { 0 };
    conn_info_t ci;
    memset(&ci, 0, sizeof ci);
    ci.body = body;
    ci.body_size = (int)sizeof body;
    cmd_find(&ci);
    if (ci.command_status != RAIDA_STATUS_INTERNAL || ci.output != NULL || ci.output_size != 0) {
        printf("install probe: status %d, output_size %d; want 252 and no output\n",
               ci.command_status, ci.output_size);
        return 1;
    }
    printf("install probe: cmd_find answered %d without a server\n", ci.command_status);
    return 0;
}
