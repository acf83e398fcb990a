/*
 * log_functions.h: the legacy server's three log functions (debug, warning, error: printf
 * style, no newline), defined over one sink of the host that includes this. Both C hosts
 * of the library use it: the test harness (c_tests/host.c) and the fuzz host
 * (fuzz/host_log.c).
 *
 * HOST_LOG_FUNCTIONS(sink) defines the three, each calling
 * `static void sink(const char *level, const char *fmt, va_list ap)` with its level name
 * ("debug", "warning", "error").
 */
#ifndef RAIDA_TESTS_LOG_FUNCTIONS_H
#define RAIDA_TESTS_LOG_FUNCTIONS_H

#include <stdarg.h>

void debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define HOST_LOG_FUNCTION(level, sink)                                          \
    void level(const char *fmt, ...)                                            \
    {                                                                           \
        va_list ap;                                                             \
        va_start(ap, fmt);                                                      \
        sink(#level, fmt, ap);                                                  \
        va_end(ap);                                                             \
    }

#define HOST_LOG_FUNCTIONS(sink)                                                \
    HOST_LOG_FUNCTION(debug, sink)                                              \
    HOST_LOG_FUNCTION(warning, sink)                                            \
    HOST_LOG_FUNCTION(error, sink)

#endif /* RAIDA_TESTS_LOG_FUNCTIONS_H */
