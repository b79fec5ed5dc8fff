/* The native get() cache (native/cache.c) under a seeded workload.
 *
 * Every cached read is compared with an uncached mdbx_get of the same key in
 * the same transaction: single reads (tm_cache_get), batches (tm_get_many) and
 * reads inside write transactions of tables they did not change. The workload
 * changes a model of the tables at random - puts of small and large values,
 * deletes, clears, commits that fail, nested transactions, in-place defrag -
 * while readers at older snapshots stay open, so that entries are inserted,
 * go stale, are found stale and are evicted. A bounded table runs beside an
 * unbounded one, and a second pass runs with MDBX_WRITEMAP.
 *
 * Commits of another process (a forked child with an environment of its own)
 * are checked too.
 *
 * Then the negative controls: each validity check of the cache is turned off
 * in turn (tm_cache_test_disable) in a child process, and the same workload
 * (or a targeted one: the page-header check, other processes' commits) must
 * then see wrong answers (or crash). A check that could be removed without a failure would not be
 * tested by this file.
 *
 * TURBOMDBX_SEED replays a run; TURBOMDBX_SOAK=1 runs ten times longer. */
#include "harness.h"
#include "codes.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct tm_cache tm_cache;
typedef struct tm_ctable tm_ctable;
/* native/cache.c and native/turbomdbx.c (exported by libturbomdbx) */
tm_cache *tm_cache_open(MDBX_env *env, int32_t shared, int32_t *rc);
int tm_cache_close(MDBX_env *env, tm_cache *c);
double tm_cache_sync(tm_cache *c, const MDBX_txn *txn, double snap);
int tm_cache_info(tm_cache *c, double *out);
void tm_cache_test_disable(tm_cache *c, uint32_t mask);
tm_ctable *tm_ctable_open(tm_cache *c, uint32_t dbi, double max, const uint8_t *name, uint32_t namelen, int32_t *rc);
void tm_ctable_stats(const tm_ctable *t, double *out);
int tm_cache_get(tm_ctable *t, const MDBX_txn *txn, uint32_t dbi, double snap, const uint8_t *key, uint32_t klen,
                 uint8_t *out, uint32_t cap);
int tm_get_many(tm_ctable *t, const MDBX_txn *txn, uint32_t dbi, double snap, const uint8_t *keys,
                const uint32_t *koff, uint32_t ksize, uint32_t first, uint32_t n, uint8_t *out, uint32_t at,
                uint32_t cap, int32_t *pos);
int tm_txn_commit(MDBX_txn *txn);
int tm_env_defrag(MDBX_env *env, double atleast, double time_atleast_s, double enough, double time_limit_s,
                  double *res);

enum {
  TC_TEST_NO_VERSION = 1,
  TC_TEST_NO_RETIRED = 2,
  TC_TEST_NO_HEADER = 4,
  TC_TEST_NO_KEY = 8,
  TC_TEST_NO_SYNC = 16,
  TC_TEST_ONE_HASH = 32,
  TC_TEST_NO_PUBLISH = 64,
};

#define NKEYS 600
#define MAXV 6000
#define READERS 3

typedef struct {
  MDBX_txn *txn;
  uint64_t snap;
} reader_t;

static MDBX_env *env;
static bool writemap_on; /* MDBX_WRITEMAP: no nested transactions */
static tm_cache *cache;
static MDBX_dbi dbi[2];
static tm_ctable *ct[2];
static reader_t readers[READERS];
static size_t mismatches, compared, hits_seen;
static uint8_t out[MAXV + 16], want_buf[MAXV + 16];

static uint32_t key_of(uint32_t i, uint8_t *k) {
  /* 6 to 40 bytes: most keys short, some long; unique per i */
  const uint32_t len = 6 + (i * 7919u) % 35;
  memset(k, 'k', len);
  put_be32(k, i);
  k[4] = (uint8_t)(i * 31);
  return len;
}

static uint32_t value_of(uint64_t stamp, uint8_t *v) {
  const uint32_t len = chance(4) ? (uint32_t)between(2100, MAXV) : (uint32_t)below(300);
  for (uint32_t j = 0; j < len; j++)
    v[j] = (uint8_t)(stamp * 131 + j);
  if (len >= 8)
    put_be64(v, stamp);
  return len;
}

static void mismatch(const char *what, uint32_t i, uint64_t snap) {
  if (mismatches++ < 5)
    fprintf(stderr, "  %s: key %u at snapshot %" PRIu64 " differs from mdbx_get\n", what, i, snap);
}

/* Compares reads of keys through the cache of table t with mdbx_get, in txn at snapshot snap. */
static void compare_reads(MDBX_txn *txn, uint64_t snap, int t, size_t n) {
  uint8_t keys[32 * 40];
  uint32_t koff[33], idx[32];
  int32_t pos[64];
  static uint8_t many[32 * (MAXV + 8)];
  for (size_t round = 0; round < n; round++) {
    /* single reads, each twice (a fill, then a hit when it can be cached) */
    uint8_t k[64];
    const uint32_t i = (uint32_t)below(NKEYS), kl = key_of(i, k);
    MDBX_val kv = {k, kl}, d;
    const int rc = mdbx_get(txn, dbi[t], &kv, &d);
    if (rc != MDBX_SUCCESS && rc != MDBX_NOTFOUND)
      fail("mdbx_get: %s", mdbx_strerror(rc));
    if (rc == MDBX_SUCCESS)
      memcpy(want_buf, d.iov_base, d.iov_len);
    for (int twice = 0; twice < 2; twice++) {
      const int r = tm_cache_get(ct[t], txn, dbi[t], (double)snap, k, kl, out, sizeof(out));
      compared++;
      if (rc == MDBX_NOTFOUND ? r != MDBX_NOTFOUND : (r != (int)d.iov_len || memcmp(out, want_buf, d.iov_len)))
        mismatch("tm_cache_get", i, snap);
    }
    /* a batch, now and then, with repeated keys */
    if (round % 8 == 0) {
      const uint32_t m = (uint32_t)between(1, 32);
      koff[0] = 0;
      for (uint32_t j = 0; j < m; j++) {
        idx[j] = j > 0 && chance(10) ? idx[j - 1] : (uint32_t)below(NKEYS);
        koff[j + 1] = koff[j] + key_of(idx[j], keys + koff[j]);
      }
      const int r = tm_get_many(ct[t], txn, dbi[t], (double)snap, keys, koff, 0, 0, m, many, 0, sizeof(many), pos);
      if (r != (int)m)
        fail("tm_get_many returned %d of %u", r, m);
      for (uint32_t j = 0; j < m; j++) {
        MDBX_val bk = {keys + koff[j], koff[j + 1] - koff[j]}, bd;
        const int brc = mdbx_get(txn, dbi[t], &bk, &bd);
        compared++;
        if (brc == MDBX_NOTFOUND ? pos[2 * j + 1] != -1
                                 : (brc != MDBX_SUCCESS || pos[2 * j + 1] != (int32_t)bd.iov_len ||
                                    memcmp(many + pos[2 * j], bd.iov_base, bd.iov_len)))
          mismatch("tm_get_many", idx[j], snap);
      }
    }
  }
}

/* The snapshot a transaction reads the cache with (0 while the newest commit is being confirmed). */
static uint64_t cache_snap(MDBX_txn *txn, uint64_t snap) {
  const double s = tm_cache_sync(cache, txn, (double)snap);
  if (s < 0)
    fail("tm_cache_sync: %s", mdbx_strerror((int)s));
  return (uint64_t)s;
}

static void begin_reader(reader_t *r) {
  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_RDONLY, &r->txn));
  r->snap = cache_snap(r->txn, mdbx_txn_id(r->txn));
}

/* One write transaction: random changes to one table (the other is read through
 * the cache inside it, as an untouched table), committed, failed or aborted. */
static void write_round(uint64_t *stamp) {
  MDBX_txn *w;
  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_READWRITE, &w));
  const uint64_t base = cache_snap(w, mdbx_txn_id(w) - 1);
  const int t = (int)below(2);
  compare_reads(w, base, 1 - t, 4); /* the other table is untouched: the cache answers for it */
  MDBX_txn *tx = w;
  const bool nested = !writemap_on && chance(15);
  if (nested)
    CHECK(mdbx_txn_begin(env, w, MDBX_TXN_READWRITE, &tx));
  static uint8_t v[MAXV];
  const size_t ops = chance(3) ? 400 : between(1, 40);
  for (size_t o = 0; o < ops; o++) {
    uint8_t k[64];
    const uint32_t i = (uint32_t)below(NKEYS), kl = key_of(i, k);
    MDBX_val kv = {k, kl};
    if (chance(70)) {
      MDBX_val d = {v, value_of(++*stamp, v)};
      CHECK(mdbx_put(tx, dbi[t], &kv, &d, MDBX_UPSERT));
    } else {
      const int rc = mdbx_del(tx, dbi[t], &kv, NULL);
      if (rc != MDBX_SUCCESS && rc != MDBX_NOTFOUND)
        fail("mdbx_del: %s", mdbx_strerror(rc));
    }
  }
  if (chance(1))
    CHECK(mdbx_drop(tx, dbi[t], false));
  if (nested) {
    if (chance(50))
      CHECK(mdbx_txn_commit(tx));
    else
      CHECK(mdbx_txn_abort(tx));
  }
  if (chance(5))
    CHECK(mdbx_txn_abort(w));
  else
    CHECK(-tm_txn_commit(w));
}

/* The random workload: rounds of writes, with readers kept open across them. */
static void workload(size_t rounds) {
  uint64_t stamp = 0;
  for (size_t round = 0; round < rounds; round++) {
    step_no = round;
    write_round(&stamp);
    if (chance(3)) {
      double res[8];
      phase = "defrag";
      const int rc = tm_env_defrag(env, 0, 0, 0, 0.05, res);
      if (rc < 0 && rc != MDBX_LAGGARD_READER && rc != MDBX_RESULT_TRUE)
        fail("defrag: %s", mdbx_strerror(-rc));
      phase = "workload";
    }
    /* replace a reader now and then: the others stay at older snapshots */
    reader_t *r = &readers[below(READERS)];
    if (r->txn && chance(40)) {
      mdbx_txn_abort(r->txn);
      r->txn = NULL;
    }
    if (!r->txn)
      begin_reader(r);
    for (int j = 0; j < READERS; j++)
      if (readers[j].txn)
        compare_reads(readers[j].txn, readers[j].snap, (int)below(2), 12);
  }
  for (int j = 0; j < READERS; j++)
    if (readers[j].txn) {
      mdbx_txn_abort(readers[j].txn);
      readers[j].txn = NULL;
    }
}

/* The page-header check: a reader whose snapshot comes after a page's
 * retirement, while the page is reused and retired again. One leaf page of
 * fixed-size entries is rewritten by every commit, so its pages are retired and
 * reused quickly and every key keeps its offset; a cached location of key 0 then
 * points at a newer version of the same node in a reused page. */
static void reused_page(void) {
  phase = "reused page";
  uint8_t k[64], v[32];
  MDBX_txn *w;
  uint64_t stamp = 1000000;
  /* The reader must start after the page was retired and before it is reused;
   * when exactly that is depends on the GC, so several starting points are tried. */
  for (int round = 0; round < 24; round++) {
    CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_READWRITE, &w));
    CHECK(mdbx_drop(w, dbi[0], false));
    for (uint32_t i = 0; i < 5; i++) {
      MDBX_val kv = {k, key_of(i, k)}, d = {v, sizeof(v)};
      memset(v, (int)(stamp++), sizeof(v));
      CHECK(mdbx_put(w, dbi[0], &kv, &d, MDBX_UPSERT));
    }
    CHECK(-tm_txn_commit(w));
    reader_t r0, r1;
    begin_reader(&r0);
    compare_reads(r0.txn, r0.snap, 0, 40); /* caches key locations in the current page */
    mdbx_txn_abort(r0.txn);
    for (int c = 0; c < 40; c++) {
      if (c == 1 + round % 6)
        begin_reader(&r1); /* after the first retirements; those pages may be reused under it */
      CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_READWRITE, &w));
      for (uint32_t i = 0; i < 5; i++) {
        MDBX_val kv = {k, key_of(i, k)}, d = {v, sizeof(v)};
        memset(v, (int)(stamp++), sizeof(v));
        CHECK(mdbx_put(w, dbi[0], &kv, &d, MDBX_UPSERT));
      }
      CHECK(-tm_txn_commit(w));
    }
    compare_reads(r1.txn, r1.snap, 0, 40);
    mdbx_txn_abort(r1.txn);
  }
}

static char env_path[4200];

/* Another process's commits: this process caches every key's location, then a
 * child process (its own environment on the same file, no cache) rewrites
 * every value in one commit. A reader of this process that starts after
 * them must not be answered from the locations cached before (tm_cache_sync
 * drops the tables another process changed). */
static void other_process(void) {
  phase = "another process";
  uint8_t k[64], v[64];
  MDBX_txn *w;
  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_READWRITE, &w));
  for (uint32_t i = 0; i < 200; i++) {
    MDBX_val kv = {k, key_of(i, k)}, d = {v, sizeof(v)};
    memset(v, 1, sizeof(v));
    CHECK(mdbx_put(w, dbi[0], &kv, &d, MDBX_UPSERT));
  }
  CHECK(-tm_txn_commit(w));
  reader_t r;
  begin_reader(&r);
  compare_reads(r.txn, r.snap, 0, 300);
  mdbx_txn_abort(r.txn);
  fflush(stdout);
  fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0)
    fail("fork: %s", strerror(errno));
  if (pid == 0) {
    MDBX_env *e;
    MDBX_dbi d0;
    int rc = mdbx_env_create(&e);
    if (rc == MDBX_SUCCESS)
      rc = mdbx_env_set_maxdbs(e, 4);
    if (rc == MDBX_SUCCESS)
      rc = mdbx_env_open(e, env_path, MDBX_NOSUBDIR | MDBX_NOSTICKYTHREADS | MDBX_UTTERLY_NOSYNC, 0644);
    for (int c = 0; rc == MDBX_SUCCESS && c < 1; c++) { /* one commit: its retired pages are not reused yet */
      MDBX_txn *x;
      rc = mdbx_txn_begin(e, NULL, MDBX_TXN_READWRITE, &x);
      if (rc == MDBX_SUCCESS)
        rc = mdbx_dbi_open(x, "unbounded", 0, &d0);
      for (uint32_t i = 0; rc == MDBX_SUCCESS && i < 200; i++) {
        MDBX_val kv = {k, key_of(i, k)}, d = {v, sizeof(v)};
        memset(v, 2 + c, sizeof(v));
        rc = mdbx_put(x, d0, &kv, &d, MDBX_UPSERT);
      }
      rc = rc == MDBX_SUCCESS ? mdbx_txn_commit(x) : rc;
    }
    _exit(rc == MDBX_SUCCESS && mdbx_env_close(e) == MDBX_SUCCESS ? 0 : 1);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail("the other process's writes failed (status %d)", status);
  begin_reader(&r);
  compare_reads(r.txn, r.snap, 0, 300);
  mdbx_txn_abort(r.txn);
}

static bool shared_on = true; /* the cache in the sidecar (else private to the process) */

static void open_cache(void) {
  int32_t rc;
  cache = tm_cache_open(env, shared_on, &rc);
  if (!cache)
    fail("tm_cache_open: %d", rc);
  /* one cache per environment: a second user (another Env, another thread) joins it, the other mode is refused,
   * and a user leaving keeps it installed for the others */
  tm_cache *again = tm_cache_open(env, shared_on, &rc);
  if (again != cache)
    fail("a second tm_cache_open of one environment made another cache (%p, %p, rc %d)", (void *)again,
         (void *)cache, rc);
  if (tm_cache_open(env, !shared_on, &rc) != NULL || rc != TM_CACHE_MODE)
    fail("tm_cache_open of the other mode was not refused (rc %d)", rc);
  CHECK(-tm_cache_close(env, again));
  void *ctx = NULL;
  if (mdbx_env_get_relocation_func(env, &ctx) == NULL || ctx != cache)
    fail("a user leaving the cache removed the relocation callback the other user needs");
  double info[4];
  if (tm_cache_info(cache, info) != (shared_on ? 1 : 0))
    fail("the cache is %s, asked for %s (errno %g)", shared_on ? "private" : "shared", shared_on ? "shared" : "private",
         info[0]);
  ct[0] = tm_ctable_open(cache, dbi[0], 0, (const uint8_t *)"unbounded", 9, &rc);
  ct[1] = tm_ctable_open(cache, dbi[1], 50, (const uint8_t *)"bounded", 7, &rc);
  if (!ct[0] || !ct[1])
    fail("tm_ctable_open: %d", rc);
}

static void open_env(bool writemap, bool lifo, const char *name) {
  char *path = env_path;
  snprintf(path, sizeof(env_path), "%s/%s", db_dir, name);
  writemap_on = writemap;
  CHECK(mdbx_env_create(&env));
  CHECK(mdbx_env_set_maxdbs(env, 4));
  CHECK(mdbx_env_set_geometry(env, -1, -1, 1 << 30, 1 << 20, 2 << 20, 4096));
  CHECK(mdbx_env_open(env, path, MDBX_NOSUBDIR | MDBX_NOSTICKYTHREADS | MDBX_UTTERLY_NOSYNC | (writemap ? MDBX_WRITEMAP : 0) |
                                     (lifo ? MDBX_LIFORECLAIM : 0), 0644));
  MDBX_txn *w;
  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_READWRITE, &w));
  CHECK(mdbx_dbi_open(w, "unbounded", MDBX_CREATE, &dbi[0]));
  CHECK(mdbx_dbi_open(w, "bounded", MDBX_CREATE, &dbi[1]));
  CHECK(mdbx_txn_commit(w));
  open_cache();
}


/* Opens the environment of env_path again in a forked child (its own
 * environment on the same file, its own cache in the same sidecar). */
static void reopen_in_child(void) {
  CHECK(mdbx_env_create(&env));
  CHECK(mdbx_env_set_maxdbs(env, 4));
  CHECK(mdbx_env_set_geometry(env, -1, -1, 1 << 30, 1 << 20, 2 << 20, 4096));
  CHECK(mdbx_env_open(env, env_path, MDBX_NOSUBDIR | MDBX_NOSTICKYTHREADS | MDBX_UTTERLY_NOSYNC, 0644));
  MDBX_txn *w;
  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_READWRITE, &w));
  CHECK(mdbx_dbi_open(w, "unbounded", MDBX_CREATE, &dbi[0]));
  CHECK(mdbx_dbi_open(w, "bounded", MDBX_CREATE, &dbi[1]));
  CHECK(mdbx_txn_commit(w));
  open_cache();
  for (int j = 0; j < READERS; j++)
    readers[j].txn = NULL;
}

/* This process reads (fresh readers and readers pinned at older snapshots)
 * while `pid` runs; returns the child's exit status. */
static int read_while(pid_t pid) {
  int status = 0;
  for (size_t round = 0;; round++) {
    step_no = round;
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid)
      break;
    if (w < 0)
      fail("waitpid: %s", strerror(errno));
    reader_t *r = &readers[below(READERS)];
    if (r->txn && chance(30)) {
      mdbx_txn_abort(r->txn);
      r->txn = NULL;
    }
    if (!r->txn)
      begin_reader(r);
    for (int j = 0; j < READERS; j++)
      if (readers[j].txn)
        compare_reads(readers[j].txn, readers[j].snap, (int)below(2), 8);
  }
  for (int j = 0; j < READERS; j++)
    if (readers[j].txn) {
      mdbx_txn_abort(readers[j].txn);
      readers[j].txn = NULL;
    }
  return status;
}

/* Another turbomdbx process with the cache (the same sidecar) commits a random
 * workload, reading through the shared cache itself, while this one reads:
 * its retirements reach this process through the sidecar, so its commits drop
 * no table here. `publish` false is the negative control: the child confirms
 * its commits but publishes no retirement, and this process must then see
 * wrong answers. Returns the mismatches this process saw. */
static size_t other_turbomdbx(size_t rounds, bool publish) {
  phase = publish ? "another turbomdbx process" : "another process that does not publish";
  fflush(stdout);
  fflush(stderr);
  const size_t before = mismatches;
  const pid_t pid = fork();
  if (pid < 0)
    fail("fork: %s", strerror(errno));
  if (pid == 0) {
    rng = seed ^ 0x5151;
    reopen_in_child();
    if (!publish)
      tm_cache_test_disable(cache, TC_TEST_NO_PUBLISH);
    mismatches = 0;
    uint64_t stamp = 5000000;
    for (size_t round = 0; round < rounds; round++) {
      write_round(&stamp);
      reader_t r;
      begin_reader(&r);
      compare_reads(r.txn, r.snap, (int)below(2), 8);
      mdbx_txn_abort(r.txn);
    }
    _exit(mismatches > 0 && publish ? 3 : 0);
  }
  const int status = read_while(pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail("the other turbomdbx process failed (status %d%s)", status,
         WIFEXITED(status) && WEXITSTATUS(status) == 3 ? ": its cached reads differed" : "");
  return mismatches - before;
}

/* kill -9 of a process in the middle of its commits: a child commits in a
 * tight loop (most of its time is inside commits, some after it published
 * retirements and before it confirmed), is killed at a random moment, and this
 * process goes on reading and writing exactly; a process that opens the
 * database afterwards too. */
static void killed_writer(void) {
  phase = "kill -9 mid-commit";
  for (int k = 0; k < 6; k++) {
    fflush(stdout);
    fflush(stderr);
    const pid_t pid = fork();
    if (pid < 0)
      fail("fork: %s", strerror(errno));
    if (pid == 0) {
      rng = seed ^ (uint64_t)(0x77 + k);
      reopen_in_child();
      uint64_t stamp = 9000000 + (uint64_t)k * 100000;
      for (;;)
        write_round(&stamp);
    }
    /* read while it writes, then kill it */
    const uint64_t until = (uint64_t)between(3, 40);
    for (uint64_t i = 0; i < until; i++) {
      reader_t r;
      begin_reader(&r);
      compare_reads(r.txn, r.snap, (int)below(2), 4);
      mdbx_txn_abort(r.txn);
      usleep(1000);
    }
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    /* this process goes on: reads, its own commits (libmdbx recovers the write lock), reads again */
    uint64_t stamp = 20000000 + (uint64_t)k * 1000;
    for (int round = 0; round < 5; round++) {
      reader_t r;
      begin_reader(&r);
      compare_reads(r.txn, r.snap, (int)below(2), 20);
      mdbx_txn_abort(r.txn);
      write_round(&stamp);
    }
  }
  /* a process that starts now shares the sidecar the killed ones used, and reads exactly */
  const pid_t pid = fork();
  if (pid == 0) {
    reopen_in_child();
    mismatches = 0;
    for (int round = 0; round < 20; round++) {
      reader_t r;
      begin_reader(&r);
      compare_reads(r.txn, r.snap, (int)below(2), 20);
      mdbx_txn_abort(r.txn);
    }
    _exit(mismatches ? 3 : 0);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail("a process started after the kills read wrong answers or failed (status %d)", status);
}

/* Threads of one process on one environment (MDBX_NOSTICKYTHREADS): two
 * readers read through the one cache while this thread writes. */
typedef struct {
  pthread_t tid;
  uint64_t rng;
  size_t compared, mismatches;
  volatile int *stop;
} thread_ctx;

static uint64_t trand(thread_ctx *x) {
  x->rng ^= x->rng << 13;
  x->rng ^= x->rng >> 7;
  x->rng ^= x->rng << 17;
  return x->rng;
}

/* A table that grows while the threads read it: its entries move to larger regions under them. */
#define GROW_KEYS 20000
static MDBX_dbi grow_dbi;
static tm_ctable *grow_ct;

static void *thread_reader(void *arg) {
  thread_ctx *x = arg;
  static _Thread_local uint8_t o1[MAXV + 16], many[8 * (MAXV + 8)];
  while (!__atomic_load_n(x->stop, __ATOMIC_ACQUIRE)) {
    MDBX_txn *txn;
    if (mdbx_txn_begin(env, NULL, MDBX_TXN_RDONLY, &txn) != MDBX_SUCCESS) {
      x->mismatches++;
      break;
    }
    const double sd = tm_cache_sync(cache, txn, (double)mdbx_txn_id(txn));
    const uint64_t snap = sd < 0 ? 0 : (uint64_t)sd;
    for (int n = 0; n < 200; n++) {
      const int t = (int)(trand(x) % 3);
      const MDBX_dbi tdbi = t == 2 ? grow_dbi : dbi[t];
      tm_ctable *const tct = t == 2 ? grow_ct : ct[t];
      uint8_t k[64];
      const uint32_t i = (uint32_t)(trand(x) % (t == 2 ? GROW_KEYS : NKEYS)), kl = key_of(i, k);
      MDBX_val kv = {k, kl}, d;
      const int rc = mdbx_get(txn, tdbi, &kv, &d);
      for (int twice = 0; twice < 2; twice++) {
        const int r = tm_cache_get(tct, txn, tdbi, (double)snap, k, kl, o1, sizeof(o1));
        __atomic_store_n(&x->compared, x->compared + 1, __ATOMIC_RELAXED);
        if (rc == MDBX_NOTFOUND ? r != MDBX_NOTFOUND : (r != (int)d.iov_len || memcmp(o1, d.iov_base, d.iov_len)))
          x->mismatches++;
      }
      uint8_t keys[8 * 40];
      uint32_t koff[9];
      int32_t pos[16];
      koff[0] = 0;
      for (int j = 0; j < 8; j++)
        koff[j + 1] = koff[j] + key_of((uint32_t)(trand(x) % (t == 2 ? GROW_KEYS : NKEYS)), keys + koff[j]);
      if (tm_get_many(tct, txn, tdbi, (double)snap, keys, koff, 0, 0, 8, many, 0, sizeof(many), pos) != 8)
        x->mismatches++;
      for (int j = 0; j < 8; j++) {
        MDBX_val bk = {keys + koff[j], koff[j + 1] - koff[j]}, bd;
        const int brc = mdbx_get(txn, tdbi, &bk, &bd);
        __atomic_store_n(&x->compared, x->compared + 1, __ATOMIC_RELAXED);
        if (brc == MDBX_NOTFOUND ? pos[2 * j + 1] != -1
                                 : (pos[2 * j + 1] != (int32_t)bd.iov_len || memcmp(many + pos[2 * j], bd.iov_base, bd.iov_len)))
          x->mismatches++;
      }
    }
    mdbx_txn_abort(txn);
  }
  return NULL;
}

static void threads(size_t rounds) {
  phase = "threads";
  {
    MDBX_txn *w;
    CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_READWRITE, &w));
    CHECK(mdbx_dbi_open(w, "grow", MDBX_CREATE, &grow_dbi));
    uint8_t k[64], v[16];
    for (uint32_t i = 0; i < GROW_KEYS; i++) {
      MDBX_val kv = {k, key_of(i, k)}, d = {v, sizeof(v)};
      memset(v, (int)i, sizeof(v));
      CHECK(mdbx_put(w, grow_dbi, &kv, &d, MDBX_UPSERT));
    }
    CHECK(-tm_txn_commit(w));
    int32_t rc;
    grow_ct = tm_ctable_open(cache, grow_dbi, 0, (const uint8_t *)"grow", 4, &rc);
    if (!grow_ct)
      fail("tm_ctable_open: %d", rc);
  }
  volatile int stop = 0;
  thread_ctx x[2];
  for (int i = 0; i < 2; i++) {
    memset(&x[i], 0, sizeof(x[i]));
    x[i].rng = seed * 2654435761u + (uint64_t)i * 97 + 1;
    x[i].stop = &stop;
    if (pthread_create(&x[i].tid, NULL, thread_reader, &x[i]) != 0)
      fail("pthread_create");
  }
  uint64_t stamp = 30000000;
  /* the readers must overlap the writes: go on writing until each has compared a good number of reads */
  for (size_t round = 0; round < rounds || __atomic_load_n(&x[0].compared, __ATOMIC_RELAXED) < 20000 ||
                         __atomic_load_n(&x[1].compared, __ATOMIC_RELAXED) < 20000;
       round++)
    write_round(&stamp);
  __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < 2; i++) {
    pthread_join(x[i].tid, NULL);
    compared += x[i].compared;
    if (x[i].mismatches)
      fail("reader thread %d: %zu of %zu cached reads differ from mdbx_get", i, x[i].mismatches, x[i].compared);
    if (x[i].compared == 0)
      fail("reader thread %d compared nothing", i);
  }
  double st[8];
  tm_ctable_stats(grow_ct, st);
  if (st[5] <= 1024)
    fail("the table read by the threads did not grow (capacity %g)", st[5]);
}

static void close_env(void) {
  double s[8];
  for (int t = 0; t < 2; t++) {
    tm_ctable_stats(ct[t], s);
    hits_seen += (size_t)s[0];
  }
  CHECK(-tm_cache_close(env, cache));
  CHECK(mdbx_env_close(env));
}

/* One negative control in a child process: returns whether the workload with
 * `mask` turned off saw wrong answers (or crashed). */
static bool detected(uint32_t mask, const char *name, size_t rounds) {
  fflush(stdout);
  fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0)
    fail("fork: %s", strerror(errno));
  if (pid == 0) {
    freopen("/dev/null", "w", stderr);
    open_env(false, mask == TC_TEST_NO_HEADER, name); /* LIFO: freed pages come back at once */
    tm_cache_test_disable(cache, mask);
    if (mask == TC_TEST_NO_HEADER) {
      /* whether a page is reused under the reader depends on the GC's timing:
       * repeat the scenario (each run starts from the pages the last one left)
       * until a wrong answer shows, up to a bound */
      for (int rep = 0; rep < 16 && mismatches == 0; rep++)
        reused_page();
    }
    else if (mask == TC_TEST_NO_SYNC)
      other_process();
    else
      workload(rounds);
    _exit(mismatches > 0 ? 0 : 1);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid)
    fail("waitpid: %s", strerror(errno));
  return WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void) {
  harness_seed("cache");
  const char *soak = getenv("TURBOMDBX_SOAK");
  const size_t rounds = (soak && *soak && strcmp(soak, "0")) ? 3000 : 300;
  fprintf(stderr, "cache: seed %" PRIu64 " (TURBOMDBX_SEED to replay), %zu rounds\n", seed, rounds);
  harness_tempdir();
  mdbx_setup_debug(MDBX_LOG_ERROR, MDBX_DBG_DONTCHANGE, MDBX_LOGGER_DONTCHANGE);

  for (int writemap = 0; writemap < 2; writemap++) {
    phase = writemap ? "workload (writemap)" : "workload";
    shared_on = !writemap; /* the shared sidecar, then a private cache (with MDBX_WRITEMAP) */
    open_env(writemap, seed & 1, writemap ? "writemap.db" : "plain.db");
    workload(rounds);
    reused_page();
    if (!writemap) {
      other_process();
      if (other_turbomdbx(rounds / 3, true))
        fail("%zu cached reads differ from mdbx_get while another turbomdbx process committed", mismatches);
      killed_writer();
      threads(rounds / 3);
    } else
      threads(rounds / 6);
    close_env();
    if (mismatches)
      fail("%zu of %zu cached reads differ from mdbx_get", mismatches, compared);
  }
  if (hits_seen < compared / 8)
    fail("only %zu cache hits in %zu compared reads: the cache was hardly exercised", hits_seen, compared);
  fprintf(stderr, "cache: %zu reads compared, %zu cache hits, 0 differences\n", compared, hits_seen);

  /* negative controls */
  phase = "negative controls";
  const struct {
    uint32_t mask;
    const char *name;
  } controls[] = {
      {TC_TEST_NO_VERSION, "no version check"},
      {TC_TEST_NO_RETIRED, "no retired-page check"},
      {TC_TEST_NO_HEADER, "no page-header check"},
      {TC_TEST_ONE_HASH | TC_TEST_NO_KEY, "no key check (with colliding hashes)"},
      {TC_TEST_NO_SYNC, "no check of other processes' commits"},
  };
  for (size_t i = 0; i < sizeof(controls) / sizeof(controls[0]); i++) {
    char name[64];
    snprintf(name, sizeof(name), "control%zu.db", i);
    if (!detected(controls[i].mask, name, rounds))
      fail("with the %s the workload still saw no wrong answer: the check is not tested", controls[i].name);
    fprintf(stderr, "cache: negative control '%s': wrong answers seen, as they must be\n", controls[i].name);
  }
  /* retirements published by another process are load-bearing: a child that confirms its commits without
   * publishing them makes this process's reads wrong */
  {
    fflush(stdout);
    fflush(stderr);
    const pid_t pid = fork();
    if (pid == 0) {
      freopen("/dev/null", "w", stderr);
      shared_on = true;
      open_env(false, true, "control-publish.db");
      size_t seen = 0;
      for (int rep = 0; rep < 8 && seen == 0; rep++)
        seen += other_turbomdbx(rounds / 3, false);
      _exit(seen > 0 ? 0 : 1);
    }
    int status = 0;
    /* wrong answers, or a crash (a page read past the end of a shrunk file: SIGBUS) */
    if (pid < 0 || waitpid(pid, &status, 0) != pid ||
        !(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0)))
      fail("with another process's retirements unpublished this process still saw no wrong answer (status %d): "
           "the sidecar's retired pages are not tested", status);
    fprintf(stderr, "cache: negative control 'another process publishes no retirements': wrong answers seen, as "
                    "they must be\n");
  }
  /* and the same child with nothing turned off sees none */
  if (detected(0, "control-none.db", rounds))
    fail("the negative-control child reports wrong answers with every check on");
  cleanup_dir();
  return 0;
}
