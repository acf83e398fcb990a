/*
 * The server's log functions, as the fuzz host defines them: lines are counted, and
 * printed to stderr only when FUZZ_LOG is set (printing every line would slow the fuzzer).
 * The library binds its weak references to these because the executable defines them;
 * c_tests/log_functions.h defines the three over emit(), as it does for the test harness.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "../c_tests/log_functions.h"

static unsigned long log_lines;

static void emit(const char *level, const char *fmt, va_list ap)
{
    __atomic_fetch_add(&log_lines, 1, __ATOMIC_RELAXED);
    if (getenv("FUZZ_LOG") != NULL) {
        fprintf(stderr, "[host %s] ", level);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
    }
}

unsigned long fuzz_host_log_lines(void);

HOST_LOG_FUNCTIONS(emit)

/* Lines logged so far (all levels). */
unsigned long fuzz_host_log_lines(void)
{
    return __atomic_load_n(&log_lines, __ATOMIC_RELAXED);
}
