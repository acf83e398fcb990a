/* A process that IS a RAIDA server as far as the library can tell: it defines the host
 * symbols (get_page_by_sn_lock, unlock_page, config) the way the legacy server does, and
 * links libraida_healing. raida_healing_open must refuse to open a second store here.
 *
 * Usage: standalone_host_present DIR
 * Prints "<code> <last_error>" and exits 0 when the code is RAIDA_HEALING_E_SERVER_PRESENT.
 */
#include <stdio.h>
#include <string.h>

#include "raida_healing.h"

struct page_s;

/* The server's page cache: never called here (open must not get that far). */
struct page_s *get_page_by_sn_lock(int8_t den, uint32_t sn);
void unlock_page(struct page_s *page);

struct page_s *get_page_by_sn_lock(int8_t den, uint32_t sn) {
    (void)den;
    (void)sn;
    return NULL;
}

void unlock_page(struct page_s *page) { (void)page; }

/* The server's global config_s (544 bytes, align 8); only its address matters here. */
_Alignas(8) unsigned char config[544];

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    int code = raida_healing_open(argv[1]);
    printf("%d %s\n", code, raida_healing_last_error());
    if (code == 0) {
        raida_healing_close();
    }
    return code == RAIDA_HEALING_E_SERVER_PRESENT ? 0 : 1;
}
