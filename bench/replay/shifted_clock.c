/* The replay's calendar: every process of the province reads the wall clock shifted by one
 * offset, kept in a file the load generator writes and every process maps. Loaded with
 * LD_PRELOAD; only CLOCK_REALTIME (and what is built on it: gettimeofday, time) moves, so
 * monotonic clocks, sleeps and timers stay true and a step of the calendar is seen by every
 * process at the same instant (the mapped page is shared), which the axis's timestamp window
 * needs. Why not libfaketime: see bench/quarter/clock.py.
 *
 * The file holds two little-endian int64: a sequence number, odd while the generator writes,
 * and the nanoseconds to add. Readers retry while it is odd or moved (a seqlock): an offset
 * half written is never used. Named by SHIFTED_CLOCK_FILE.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime;
static const volatile int64_t *shared;  /* [0] sequence, [1] offset */

static void load(void) {
    if (real_clock_gettime == NULL) {
        real_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    }
    if (shared == NULL) {
        const char *name = getenv("SHIFTED_CLOCK_FILE");
        if (name == NULL) return;
        int fd = open(name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return;
        void *page = mmap(NULL, 2 * sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
        close(fd);
        if (page != MAP_FAILED) shared = (const volatile int64_t *)page;
    }
}

__attribute__((constructor)) static void init(void) { load(); }

static int64_t offset(void) {
    for (;;) {
        int64_t before = __atomic_load_n(&shared[0], __ATOMIC_ACQUIRE);
        int64_t value = __atomic_load_n(&shared[1], __ATOMIC_ACQUIRE);
        int64_t after = __atomic_load_n(&shared[0], __ATOMIC_ACQUIRE);
        if (before == after && (before & 1) == 0) return value;
    }
}

static void shift(struct timespec *ts) {
    if (shared == NULL) return;
    int64_t by = offset(); /* once: a step between two reads would mix two offsets */
    int64_t ns = (int64_t)ts->tv_nsec + by % 1000000000LL;
    ts->tv_sec += by / 1000000000LL + ns / 1000000000LL;
    ns %= 1000000000LL;
    if (ns < 0) {
        ns += 1000000000LL;
        ts->tv_sec -= 1;
    }
    ts->tv_nsec = (long)ns;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    if (real_clock_gettime == NULL) load();
    if (real_clock_gettime == NULL) return -1;
    int result = real_clock_gettime(id, ts);
    if (result == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) shift(ts);
    return result;
}

int gettimeofday(struct timeval *tv, void *tz) {
    (void)tz;
    struct timespec ts;
    int result = clock_gettime(CLOCK_REALTIME, &ts);
    if (result == 0 && tv != NULL) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return result;
}

time_t time(time_t *out) {
    struct timespec ts = {0, 0};
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return (time_t)-1;
    if (out != NULL) *out = ts.tv_sec;
    return ts.tv_sec;
}
