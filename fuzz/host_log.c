/*
 * The server's log functions, as the fuzz host defines them: lines are counted, and
 * printed to stderr only when FUZZ_LOG is set (printing every line would slow the fuzzer).
 * The library binds its weak references to these because the executable defines them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

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

void debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
unsigned long fuzz_host_log_lines(void);

void debug(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit("debug", fmt, ap);
    va_end(ap);
}

void warning(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit("warning", fmt, ap);
    va_end(ap);
}

void error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit("error", fmt, ap);
    va_end(ap);
}

/* Lines logged so far (all levels). */
unsigned long fuzz_host_log_lines(void)
{
    return __atomic_load_n(&log_lines, __ATOMIC_RELAXED);
}
