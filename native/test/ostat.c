/* Order statistics (native/ostat.c) against a walk of the same snapshot.
 *
 * A seeded workload changes four tables - plain, integer keys, dupsort (values
 * in sub-pages and nested trees) and dupsort+dupfixed - with puts in bulk
 * (splits), deletes of single entries and of runs (merges), nested
 * transactions that commit or abort, and write transactions that abort. Small
 * pages (512 bytes) make the trees four or five levels deep. After every step
 * the counts, ranks, positions and cursor seeks of tm_ostat_* are compared with
 * a cursor walk of the same transaction: inside the write transaction (dirty
 * pages, counted but not memoised), in its nested transactions, after the
 * commit, and in readers pinned at older snapshots while the memo moves on.
 * A pass with a tiny memo budget makes the memo turn over all the time, and
 * one runs with MDBX_WRITEMAP (dirty pages in the map itself).
 *
 * Also: a warm rank reads exactly `height` pages (the memo is what makes the
 * descent O(log n)), and a memo entry is never used across files (a second
 * environment with other contents at the same page numbers and txnids).
 *
 * TURBOMDBX_SEED replays a run; TURBOMDBX_SOAK=1 runs longer. */
#include "harness.h"

#include <sys/wait.h>

int tm_ostat_rank(const MDBX_txn *txn, uint32_t dbi, uint32_t flags, const void *key, uint32_t klen, const void *val,
                  uint32_t vlen, double *out);
int tm_ostat_count(const MDBX_txn *txn, uint32_t dbi, uint32_t flags, const void *lo, uint32_t lolen, const void *hi,
                   uint32_t hilen, double *out);
int tm_ostat_at(MDBX_cursor *cur, uint32_t flags, double index, uint8_t *out, uint32_t cap);
int tm_ostat_seek(MDBX_cursor *cur, uint32_t flags, double index);
void tm_ostat_stats(MDBX_env *env, double *out);
int tm_ostat_configure(MDBX_env *env, double budget, int32_t clear);
void tm_ostat_test_disable(uint32_t mask);

/* the wrappers return libmdbx codes negated when positive (errno values), as they are otherwise */
static inline int OS(int r) { return r >= 0 ? MDBX_SUCCESS : r <= -30000 ? r : -r; }

enum { OS_KEYS = 1, OS_HAS_LO = 2, OS_LO_EXCL = 4, OS_HAS_HI = 8, OS_HI_INCL = 16, OS_LE = 32 };

#define NT 4
static const char *names[NT] = {"plain", "intkey", "dups", "fixed"};
static const MDBX_db_flags_t tflags[NT] = {MDBX_CREATE, MDBX_CREATE | MDBX_INTEGERKEY, MDBX_CREATE | MDBX_DUPSORT,
                                          MDBX_CREATE | MDBX_DUPSORT | MDBX_DUPFIXED};
static MDBX_dbi dbis[NT];

/* ---------------------------------------------------------------- model --- */

typedef struct {
  size_t n, cap;
  MDBX_val *k, *v;
  uint8_t *buf;
  size_t blen, bcap;
  size_t *kstart; /* index of each distinct key's first entry */
  size_t nkeys;
} walk_t;

static void walk_free(walk_t *w) {
  free(w->k);
  free(w->v);
  free(w->buf);
  free(w->kstart);
  memset(w, 0, sizeof(*w));
}

static size_t walk_copy(walk_t *w, const MDBX_val *x) {
  if (w->blen + x->iov_len > w->bcap) {
    w->bcap = (w->blen + x->iov_len) * 2 + 4096;
    w->buf = xrealloc(w->buf, w->bcap);
  }
  memcpy(w->buf + w->blen, x->iov_base, x->iov_len);
  w->blen += x->iov_len;
  return w->blen - x->iov_len;
}

/* Every entry of the table in this transaction, in order (the reference). */
static void walk(MDBX_txn *txn, MDBX_dbi dbi, walk_t *w) {
  memset(w, 0, sizeof(*w));
  MDBX_cursor *c;
  CHECK(mdbx_cursor_open(txn, dbi, &c));
  MDBX_val k, v;
  size_t *koff = NULL, *voff = NULL;
  int rc = mdbx_cursor_get(c, &k, &v, MDBX_FIRST);
  while (rc == MDBX_SUCCESS) {
    if (w->n == w->cap) {
      w->cap = w->cap * 2 + 64;
      koff = xrealloc(koff, w->cap * sizeof(size_t));
      voff = xrealloc(voff, w->cap * sizeof(size_t));
      w->k = xrealloc(w->k, w->cap * sizeof(MDBX_val));
      w->v = xrealloc(w->v, w->cap * sizeof(MDBX_val));
      w->kstart = xrealloc(w->kstart, w->cap * sizeof(size_t));
    }
    int newkey = 1;
    if (w->n) {
      const MDBX_val prev = {w->buf + koff[w->n - 1], w->k[w->n - 1].iov_len};
      newkey = mdbx_cmp(txn, dbi, &k, &prev) != 0;
    }
    koff[w->n] = walk_copy(w, &k);
    voff[w->n] = walk_copy(w, &v);
    w->k[w->n].iov_len = k.iov_len;
    w->v[w->n].iov_len = v.iov_len;
    if (newkey)
      w->kstart[w->nkeys++] = w->n;
    w->n++;
    rc = mdbx_cursor_get(c, &k, &v, MDBX_NEXT);
  }
  if (rc != MDBX_NOTFOUND)
    fail("walk: %s", mdbx_strerror(rc));
  for (size_t i = 0; i < w->n; i++) {
    w->k[i].iov_base = w->buf + koff[i];
    w->v[i].iov_base = w->buf + voff[i];
  }
  free(koff);
  free(voff);
  mdbx_cursor_close(c);
}

/* Entries (or keys) with key < probe, or <= probe. */
static size_t model_rank(MDBX_txn *txn, MDBX_dbi dbi, const walk_t *w, const MDBX_val *probe, int le, int keys) {
  size_t r = 0;
  const size_t n = keys ? w->nkeys : w->n;
  for (size_t i = 0; i < n; i++) {
    const MDBX_val *k = &w->k[keys ? w->kstart[i] : i];
    const int c = mdbx_cmp(txn, dbi, k, probe);
    if (c < 0 || (le && c == 0))
      r++;
    else
      break;
  }
  return r;
}

static int val_eq(const MDBX_val *a, const void *b, size_t blen) {
  return a->iov_len == blen && (blen == 0 || memcmp(a->iov_base, b, blen) == 0);
}

/* ------------------------------------------------------------- the checks --- */

static uint8_t outbuf[1 << 16];
static size_t checks;

/* A probe key: an existing key, or a random one of the table's key shape. */
static MDBX_val probe_key(int t, const walk_t *w, uint8_t *room) {
  if (w->n && chance(60)) {
    MDBX_val k = w->k[below(w->n)];
    memcpy(room, k.iov_base, k.iov_len);
    k.iov_base = room;
    /* sometimes one past it in the last byte (a key that may be absent) */
    if (chance(30) && k.iov_len)
      room[k.iov_len - 1]++;
    return k;
  }
  MDBX_val k = {room, 8};
  if (t == 1) {
    uint64_t x = below(4000);
    memcpy(room, &x, 8);
  } else
    put_be64(room, below(t >= 2 ? 300 : 4000));
  return k;
}

static void verify(MDBX_txn *txn, int t, const char *where) {
  const MDBX_dbi dbi = dbis[t];
  const int dup = t >= 2;
  walk_t w;
  walk(txn, dbi, &w);
  MDBX_cursor *cur;
  CHECK(mdbx_cursor_open(txn, dbi, &cur));
  double o[3];
  for (int keys = 0; keys <= (dup ? 1 : 0); keys++) {
    const uint32_t kf = keys ? OS_KEYS : 0;
    const size_t n = keys ? w.nkeys : w.n;
    /* the whole table */
    CHECK(OS(tm_ostat_count(txn, dbi, kf, NULL, 0, NULL, 0, o)));
    if (o[0] != (double)n || o[2] != (double)n)
      fail("%s %s%s: count of all %.0f (total %.0f), walk %zu", where, names[t], keys ? " keys" : "", o[0], o[2], n);
    /* ranks and bounded counts */
    for (int i = 0; i < 12; i++) {
      uint8_t ra[64], rb[64];
      MDBX_val a = probe_key(t, &w, ra), b = probe_key(t, &w, rb);
      const int le = (int)below(2);
      CHECK(OS(tm_ostat_rank(txn, dbi, kf | (le ? OS_LE : 0), a.iov_base, (uint32_t)a.iov_len, NULL, 0, o)));
      const size_t want = model_rank(txn, dbi, &w, &a, le, keys);
      if (o[0] != (double)want)
        fail("%s %s%s: rank (%s) %.0f, walk %zu", where, names[t], keys ? " keys" : "", le ? "<=" : "<", o[0], want);
      const uint32_t bf = (uint32_t)below(4);
      const uint32_t f = kf | OS_HAS_LO | OS_HAS_HI | ((bf & 1) ? OS_LO_EXCL : 0) | ((bf & 2) ? OS_HI_INCL : 0);
      CHECK(OS(tm_ostat_count(txn, dbi, f, a.iov_base, (uint32_t)a.iov_len, b.iov_base, (uint32_t)b.iov_len, o)));
      const size_t lo = model_rank(txn, dbi, &w, &a, (bf & 1) != 0, keys);
      const size_t hi = model_rank(txn, dbi, &w, &b, (bf & 2) != 0, keys);
      if (o[0] != (double)(hi > lo ? hi - lo : 0) || o[1] != (double)lo)
        fail("%s %s: count %.0f from %.0f, walk %zu from %zu", where, names[t], o[0], o[1], hi > lo ? hi - lo : 0,
             lo);
      checks += 2;
    }
    /* positions: both ends, one past, random ones */
    for (int i = 0; i < 14; i++) {
      size_t at = i == 0 ? 0 : i == 1 ? n - 1 : i == 2 ? n : below(n + 1);
      if (n == 0 && i < 2)
        at = 0;
      const int rc = tm_ostat_at(cur, kf, (double)at, outbuf, sizeof(outbuf));
      if (at >= n) {
        if (rc != MDBX_NOTFOUND)
          fail("%s %s: at(%zu) of %zu gave %d, not NOTFOUND", where, names[t], at, n, rc);
        continue;
      }
      if (rc < 0)
        fail("%s %s: at(%zu): %s", where, names[t], at, mdbx_strerror(OS(rc)));
      const size_t e = keys ? w.kstart[at] : at;
      uint32_t kl, vl;
      memcpy(&kl, outbuf, 4);
      memcpy(&vl, outbuf + 4, 4);
      if (!val_eq(&w.k[e], outbuf + 12, kl) || !val_eq(&w.v[e], outbuf + 12 + kl, vl))
        fail("%s %s%s: at(%zu) gave another entry", where, names[t], keys ? " keys" : "", at);
      /* seek + the cursor's own view */
      CHECK(OS(tm_ostat_seek(cur, kf, (double)at)));
      MDBX_val k, v;
      CHECK(mdbx_cursor_get(cur, &k, &v, MDBX_GET_CURRENT));
      if (!val_eq(&w.k[e], k.iov_base, k.iov_len) || !val_eq(&w.v[e], v.iov_base, v.iov_len))
        fail("%s %s: seek(%zu) stands elsewhere", where, names[t], at);
      checks += 2;
    }
  }
  mdbx_cursor_close(cur);
  walk_free(&w);
}

static void verify_all(MDBX_txn *txn, const char *where) {
  for (int t = 0; t < NT; t++)
    verify(txn, t, where);
}

/* ----------------------------------------------------------- the workload --- */

static void make_key(int t, uint64_t x, uint8_t *k) {
  if (t == 1)
    memcpy(k, &x, 8);
  else
    put_be64(k, x);
}

static void change(MDBX_txn *txn, int t, int ops) {
  const MDBX_dbi dbi = dbis[t];
  uint8_t kb[8], vb[64];
  for (int i = 0; i < ops; i++) {
    const unsigned what = (unsigned)below(100);
    if (what < 60) {
      /* a run of puts (splits): keys close together */
      const uint64_t base = below(t >= 2 ? 300 : 4000);
      const int run = (int)between(1, 40);
      for (int j = 0; j < run; j++) {
        make_key(t, t >= 2 ? base : base + (uint64_t)j, kb);
        size_t vl = t == 3 ? 8 : between(t >= 2 ? 4 : 0, t >= 2 ? 12 : 40);
        for (size_t b = 0; b < vl; b++)
          vb[b] = (uint8_t)rnd();
        if (t >= 2)
          put_be32(vb, (uint32_t)below(t == 3 ? 100000 : 5000)); /* distinct-ish values per key */
        MDBX_val k = {kb, 8}, v = {vb, vl};
        const int rc = mdbx_put(txn, dbi, &k, &v, MDBX_UPSERT);
        if (rc != MDBX_SUCCESS && rc != MDBX_KEYEXIST)
          fail("put: %s", mdbx_strerror(rc));
      }
    } else if (what < 85) {
      /* delete one entry (or one key with all its values) */
      MDBX_cursor *c;
      CHECK(mdbx_cursor_open(txn, dbi, &c));
      make_key(t, below(t >= 2 ? 300 : 4000), kb);
      MDBX_val k = {kb, 8}, v;
      int rc = mdbx_cursor_get(c, &k, &v, MDBX_SET_RANGE);
      if (rc == MDBX_SUCCESS)
        CHECK(mdbx_cursor_del(c, t >= 2 && chance(50) ? MDBX_ALLDUPS : MDBX_CURRENT));
      else if (rc != MDBX_NOTFOUND)
        fail("seek: %s", mdbx_strerror(rc));
      mdbx_cursor_close(c);
    } else {
      /* delete a run (merges) */
      MDBX_cursor *c;
      CHECK(mdbx_cursor_open(txn, dbi, &c));
      make_key(t, below(t >= 2 ? 300 : 4000), kb);
      MDBX_val k = {kb, 8}, v;
      int rc = mdbx_cursor_get(c, &k, &v, MDBX_SET_RANGE);
      for (int j = (int)between(5, 120); j > 0 && rc == MDBX_SUCCESS; j--) {
        memcpy(kb, k.iov_base, 8);
        CHECK(mdbx_cursor_del(c, MDBX_CURRENT));
        k.iov_base = kb;
        k.iov_len = 8;
        rc = mdbx_cursor_get(c, &k, &v, MDBX_SET_RANGE);
      }
      if (rc != MDBX_SUCCESS && rc != MDBX_NOTFOUND && rc != MDBX_ENODATA)
        fail("run delete: %s", mdbx_strerror(rc));
      mdbx_cursor_close(c);
    }
  }
}

#define PINNED 3

static void run_pass(const char *name, double budget, int rounds, MDBX_env_flags_t extra) {
  char path[4200];
  snprintf(path, sizeof(path), "%s/%s", db_dir, name);
  MDBX_env *env;
  CHECK(mdbx_env_create(&env));
  CHECK(mdbx_env_set_option(env, MDBX_opt_max_db, 8));
  CHECK(mdbx_env_set_option(env, MDBX_opt_max_readers, 32));
  CHECK(mdbx_env_set_geometry(env, -1, -1, 256 << 20, -1, -1, 512));
  CHECK(mdbx_env_open(env, path, MDBX_NOSUBDIR | MDBX_NOSTICKYTHREADS | MDBX_LIFORECLAIM | extra, 0644));
  CHECK(OS(tm_ostat_configure(env, budget, 1)));
  MDBX_txn *txn;
  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_READWRITE, &txn));
  for (int t = 0; t < NT; t++)
    CHECK(mdbx_dbi_open(txn, names[t], tflags[t], &dbis[t]));
  CHECK(mdbx_txn_commit(txn));

  MDBX_txn *pinned[PINNED] = {0};
  phase = name;
  for (int r = 0; r < rounds; r++) {
    step_no = (size_t)r;
    CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_READWRITE, &txn));
    for (int t = 0; t < NT; t++)
      change(txn, t, (int)between(1, r < 3 ? 30 : 8));
    if (chance(50))
      verify_all(txn, "write txn");
    if (!(extra & MDBX_WRITEMAP) /* no nested transactions there */ && chance(40)) {
      MDBX_txn *nested;
      CHECK(mdbx_txn_begin(env, txn, MDBX_TXN_READWRITE, &nested));
      for (int t = 0; t < NT; t++)
        change(nested, t, (int)between(1, 6));
      verify_all(nested, "nested txn");
      if (chance(50))
        CHECK(mdbx_txn_commit(nested));
      else
        mdbx_txn_abort(nested);
      verify_all(txn, "after nested");
    }
    if (chance(10)) {
      mdbx_txn_abort(txn);
    } else
      CHECK(mdbx_txn_commit(txn));
    MDBX_txn *ro;
    CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_RDONLY, &ro));
    verify_all(ro, "committed");
    /* pin some snapshots; check an old one */
    const int slot = (int)below(PINNED);
    if (chance(40)) {
      if (pinned[slot])
        mdbx_txn_abort(pinned[slot]);
      pinned[slot] = ro;
    } else
      mdbx_txn_abort(ro);
    const int old = (int)below(PINNED);
    if (pinned[old])
      verify_all(pinned[old], "pinned snapshot");
  }
  for (int i = 0; i < PINNED; i++)
    if (pinned[i])
      mdbx_txn_abort(pinned[i]);
  double st[8];
  tm_ostat_stats(env, st);
  printf("ostat %s: %d rounds, memo %.0f entries %.0f bytes, %.0f hits %.0f misses, %.0f turnovers\n", name, rounds,
         st[0], st[1], st[2], st[3], st[6]);
  if (st[2] == 0)
    fail("%s: the memo was never hit", name);
  if (budget > 0 && budget < 8192 && st[6] == 0)
    fail("%s: a tiny budget never turned the memo over", name);
  CHECK(mdbx_env_close(env));
}

/* A warm rank reads one page per level; a cold one more. */
static void check_log_cost(void) {
  phase = "warm cost";
  char path[4200];
  snprintf(path, sizeof(path), "%s/cost", db_dir);
  MDBX_env *env;
  CHECK(mdbx_env_create(&env));
  CHECK(mdbx_env_set_geometry(env, -1, -1, 256 << 20, -1, -1, 512));
  CHECK(mdbx_env_open(env, path, MDBX_NOSUBDIR | MDBX_NOSTICKYTHREADS, 0644));
  MDBX_txn *txn;
  MDBX_dbi dbi;
  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_READWRITE, &txn));
  CHECK(mdbx_dbi_open(txn, NULL, 0, &dbi));
  uint8_t kb[8];
  for (uint64_t i = 0; i < 20000; i++) {
    put_be64(kb, i * 2);
    MDBX_val k = {kb, 8}, v = {kb, 8};
    CHECK(mdbx_put(txn, dbi, &k, &v, MDBX_APPEND));
  }
  CHECK(mdbx_txn_commit(txn));
  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_RDONLY, &txn));
  MDBX_stat stat;
  CHECK(mdbx_dbi_stat(txn, dbi, &stat, sizeof(stat)));
  double st0[8], st1[8], o[1];
  put_be64(kb, 12345);
  CHECK(OS(tm_ostat_rank(txn, dbi, 0, kb, 8, NULL, 0, o))); /* cold: computes every branch on the way */
  if (o[0] != 6173)
    fail("rank of 12345 among even numbers: %.0f, not 6173", o[0]);
  tm_ostat_stats(env, st0);
  if (st0[5] <= stat.ms_depth)
    fail("a cold rank read only %.0f pages", st0[5]);
  for (int i = 0; i < 100; i++) {
    put_be64(kb, below(40000));
    CHECK(OS(tm_ostat_rank(txn, dbi, 0, kb, 8, NULL, 0, o)));
  }
  tm_ostat_stats(env, st1);
  if (st1[5] - st0[5] != 100.0 * stat.ms_depth)
    fail("100 warm ranks read %.0f pages, not 100 x depth %u", st1[5] - st0[5], stat.ms_depth);
  if (st1[4] != st0[4])
    fail("warm ranks computed %.0f branch pages", st1[4] - st0[4]);
  printf("ostat cost: depth %u, cold rank read %.0f pages, warm ranks %u pages each\n", stat.ms_depth, st0[5],
         stat.ms_depth);
  mdbx_txn_abort(txn);
  CHECK(mdbx_env_close(env));
}

/* Same page numbers and txnids, other contents: a memo must not cross files. */
static void check_per_env(void) {
  phase = "per environment";
  MDBX_env *envs[2];
  MDBX_dbi dbi = 0;
  for (int e = 0; e < 2; e++) {
    char path[4200];
    snprintf(path, sizeof(path), "%s/twin%d", db_dir, e);
    CHECK(mdbx_env_create(&envs[e]));
    CHECK(mdbx_env_set_geometry(envs[e], -1, -1, 64 << 20, -1, -1, 512));
    CHECK(mdbx_env_open(envs[e], path, MDBX_NOSUBDIR | MDBX_NOSTICKYTHREADS, 0644));
    MDBX_txn *txn;
    CHECK(mdbx_txn_begin(envs[e], NULL, MDBX_TXN_READWRITE, &txn));
    CHECK(mdbx_dbi_open(txn, NULL, 0, &dbi));
    uint8_t kb[8];
    /* one commit each, same shape of tree, every other leaf fuller in the second */
    for (uint64_t i = 0; i < 3000; i++) {
      if (e == 1 && i % 7 == 3)
        continue;
      put_be64(kb, i);
      MDBX_val k = {kb, 8}, v = {kb, 8};
      CHECK(mdbx_put(txn, dbi, &k, &v, MDBX_APPEND));
    }
    CHECK(mdbx_txn_commit(txn));
  }
  for (int round = 0; round < 2; round++)
    for (int e = 0; e < 2; e++) {
      MDBX_txn *txn;
      CHECK(mdbx_txn_begin(envs[e], NULL, MDBX_TXN_RDONLY, &txn));
      double o[3];
      CHECK(OS(tm_ostat_count(txn, dbi, OS_HAS_HI, NULL, 0, "\0\0\0\0\0\0\x0b\xb8", 8, o))); /* keys < 3000 */
      const double want = e == 0 ? 3000 : 3000 - 429;
      if (o[0] != want)
        fail("environment %d: %.0f keys below 3000, not %.0f", e, o[0], want);
      mdbx_txn_abort(txn);
    }
  for (int e = 0; e < 2; e++)
    CHECK(mdbx_env_close(envs[e]));
}

/* The negative control: with dirty pages memoised (a write transaction's
 * mutable pages taken for committed versions) the same workload must see wrong
 * answers. Run in a child, since the first wrong answer ends the process. */
static void check_negative_control(void) {
  phase = "negative control";
  fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0)
    fail("fork: %s", strerror(errno));
  if (pid == 0) {
    /* quiet: the child is expected to fail */
    if (!freopen("/dev/null", "w", stderr) || !freopen("/dev/null", "w", stdout))
      _exit(3);
    tm_ostat_test_disable(1);
    run_pass("negative", 0, 60, 0);
    _exit(0);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid)
    fail("waitpid: %s", strerror(errno));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    fail("memoising dirty pages went unnoticed: the differential check is not load-bearing");
  printf("ostat negative control: memoising dirty pages was caught (child status %d)\n", status);
}

int main(void) {
  harness_seed("ostat");
  mdbx_setup_debug(MDBX_LOG_ERROR, MDBX_DBG_DONTCHANGE, MDBX_LOGGER_DONTCHANGE);
  harness_tempdir();
  const int soak = getenv("TURBOMDBX_SOAK") && *getenv("TURBOMDBX_SOAK");
  printf("ostat: seed %" PRIu64 "\n", seed);
  check_log_cost();
  check_per_env();
  run_pass("default", 0, soak ? 400 : 60, 0);
  run_pass("tiny-budget", 4096, soak ? 200 : 30, 0);
  /* dirty pages live in the map itself (and are written in place): still never memoised */
  run_pass("writemap", 0, soak ? 200 : 40, MDBX_WRITEMAP);
  check_negative_control();
  printf("ostat: ok (%zu checks)\n", checks);
  cleanup_dir();
  return 0;
}
