/* Shared by the C tests under native/test/: the seed (TURBOMDBX_SEED), a
 * temporary folder (TURBOMDBX_KEEP_DB keeps it), failure reporting, the
 * random source and byte helpers. A test sets `phase` and `step_no` as it goes;
 * fail() prints them with the seed that replays the run.
 *
 * Everything is static: each test is one translation unit. */
#ifndef TURBOMDBX_TEST_HARNESS_H
#define TURBOMDBX_TEST_HARNESS_H

#include "mdbx.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *test_name = "test";
static uint64_t seed;
static char db_dir[4096];
static bool keep_db;
/* what the test is doing, and its round or step: printed on failure */
static const char *phase = "setup";
static size_t step_no;

static void cleanup_dir(void) {
  if (!db_dir[0] || keep_db)
    return;
  DIR *d = opendir(db_dir);
  if (d) {
    struct dirent *e;
    char path[4400];
    while ((e = readdir(d)) != NULL) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
        continue;
      snprintf(path, sizeof(path), "%s/%s", db_dir, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  rmdir(db_dir);
  db_dir[0] = 0;
}

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...) {
  va_list ap;
  fflush(stdout);
  fprintf(stderr, "%s: FAIL at step %zu (%s): ", test_name, step_no, phase);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n%s: replay with TURBOMDBX_SEED=%" PRIu64 "%s\n", test_name, seed,
          keep_db ? "" : " (TURBOMDBX_KEEP_DB=1 keeps the databases)");
  if (keep_db && db_dir[0])
    fprintf(stderr, "%s: databases kept in %s\n", test_name, db_dir);
  cleanup_dir();
  exit(1);
}

#define CHECK(expr)                                                                                                    \
  do {                                                                                                                 \
    int rc_ = (expr);                                                                                                  \
    if (rc_ != MDBX_SUCCESS)                                                                                           \
      fail("%s:%d: %s: %s", __FILE__, __LINE__, #expr, mdbx_strerror(rc_));                                            \
  } while (0)

static inline void *xrealloc(void *p, size_t n) {
  void *r = realloc(p, n ? n : 1);
  if (!r)
    fail("out of memory (%zu bytes)", n);
  return r;
}

static uint64_t rng;
static inline uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}
static inline uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }
static inline uint64_t between(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }
static inline bool chance(unsigned percent) { return below(100) < percent; }

static inline void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}
static inline void put_be64(uint8_t *p, uint64_t v) {
  put_be32(p, (uint32_t)(v >> 32));
  put_be32(p + 4, (uint32_t)v);
}
static inline uint32_t get_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t get_be64(const uint8_t *p) { return (uint64_t)get_be32(p) << 32 | get_be32(p + 4); }

/* The seed (TURBOMDBX_SEED, or from the clock), the random source, TURBOMDBX_KEEP_DB. */
static void harness_seed(const char *name) {
  test_name = name;
  const char *s = getenv("TURBOMDBX_SEED");
  if (s && *s)
    seed = strtoull(s, NULL, 0);
  else {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    seed = ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    seed %= UINT64_C(1000000000000);
  }
  rng = seed;
  keep_db = getenv("TURBOMDBX_KEEP_DB") && *getenv("TURBOMDBX_KEEP_DB");
}

/* Makes db_dir: a fresh folder under $TMPDIR (or /tmp), turbomdbx-<name>-c-XXXXXX. */
static void harness_tempdir(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(db_dir, sizeof(db_dir), "%s/turbomdbx-%s-c-XXXXXX", tmp && *tmp ? tmp : "/tmp", test_name);
  if (!mkdtemp(db_dir)) {
    db_dir[0] = 0;
    fail("mkdtemp: %s", strerror(errno));
  }
}

#endif /* TURBOMDBX_TEST_HARNESS_H */
