/* A library that claims another conn_info_t size and lacks the handlers: what
 * `raida_healing.py check` must reject (a build for another server ABI). */
#include <stddef.h>

const char *raida_healing_version(void);
size_t raida_healing_conn_info_size(void);

const char *raida_healing_version(void) { return "9.9.9-wrong-abi"; }

size_t raida_healing_conn_info_size(void) { return 320; }
