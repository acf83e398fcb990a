/*
 * check.h: the C tests' tiny framework. CHECK counts a passed or failed expectation
 * (thread-safe); run_group runs a group of tests in a forked child, so that each group
 * starts with a fresh ticket pool and a crash is reported as a failure, not as the end of
 * the run; check_summary prints the closing line "N passed, M failed" that CI reads.
 */
#ifndef RAIDA_CHECK_H
#define RAIDA_CHECK_H

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int check_passed;
static atomic_int check_failed;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (cond) {                                                             \
            atomic_fetch_add(&check_passed, 1);                                 \
        } else {                                                                \
            atomic_fetch_add(&check_failed, 1);                                 \
            fprintf(stderr, "FAIL %s:%d: (%s) ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

#define CHECK_INT(got, want)                                                    \
    do {                                                                        \
        long long check_got_ = (long long)(got), check_want_ = (long long)(want); \
        CHECK(check_got_ == check_want_, "%s = %lld, want %lld", #got, check_got_, \
              check_want_);                                                     \
    } while (0)

static inline void check_hex(FILE *f, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n && i < 64; i++)
        fprintf(f, "%02x", p[i]);
    if (n > 64)
        fprintf(f, "...(%zu bytes)", n);
}

/* Expects exactly want_n bytes equal to want (got may be NULL only when want_n is 0). */
#define CHECK_BYTES(got, got_n, want, want_n)                                   \
    do {                                                                        \
        const unsigned char *check_g_ = (const unsigned char *)(got);           \
        const unsigned char *check_w_ = (const unsigned char *)(want);          \
        size_t check_gn_ = (size_t)(got_n), check_wn_ = (size_t)(want_n);      \
        int check_ok_ = check_gn_ == check_wn_ &&                               \
                        (check_wn_ == 0 || (check_g_ && memcmp(check_g_, check_w_, check_wn_) == 0)); \
        CHECK(check_ok_, "bytes of %s differ", #got);                           \
        if (!check_ok_) {                                                       \
            fprintf(stderr, "    got  ");                                       \
            if (check_g_) check_hex(stderr, check_g_, check_gn_);               \
            else fprintf(stderr, "NULL");                                       \
            fprintf(stderr, "\n    want ");                                     \
            check_hex(stderr, check_w_, check_wn_);                             \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

/* Runs fn in a forked child and adds its counts; a child that dies or exits non-zero
 * (a sanitizer or valgrind report, a crash) counts as one failure. */
static inline void run_group(const char *name, void (*fn)(void))
{
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        exit(2);
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        close(fds[0]);
        atomic_store(&check_passed, 0);
        atomic_store(&check_failed, 0);
        fn();
        int counts[2] = { atomic_load(&check_passed), atomic_load(&check_failed) };
        if (write(fds[1], counts, sizeof counts) != (ssize_t)sizeof counts)
            _exit(3);
        close(fds[1]);
        exit(0); /* exit, not _exit: leak checkers run at exit */
    }
    close(fds[1]);
    int counts[2] = { 0, 0 };
    ssize_t got = read(fds[0], counts, sizeof counts);
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) { /* e.g. ECHILD: no status to wait for; count it as a failure */
            perror("waitpid");
            status = -1;
            break;
        }
    }
    int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (got == (ssize_t)sizeof counts) {
        atomic_fetch_add(&check_passed, counts[0]);
        atomic_fetch_add(&check_failed, counts[1]);
    }
    CHECK(clean && got == (ssize_t)sizeof counts,
          "group %s: child exit status %d (signal %d), %zd count bytes", name,
          WIFEXITED(status) ? WEXITSTATUS(status) : -1,
          WIFSIGNALED(status) ? WTERMSIG(status) : 0, got);
    fprintf(stderr, "group %-20s %s (%d passed, %d failed)\n", name, clean && counts[1] == 0 ? "ok" : "FAILED",
            counts[0], counts[1]);
}

/* Prints the closing line and returns the process exit status. */
static inline int check_summary(void)
{
    int passed = atomic_load(&check_passed), failed = atomic_load(&check_failed);
    printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout);
    return failed == 0 && passed > 0 ? 0 : 1;
}

#endif /* RAIDA_CHECK_H */
