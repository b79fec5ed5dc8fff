/* rebuild: checks the API of native/patches/0003-rebuild-support.patch.
 *
 *  1. mdbx_txn_diff(A, B, dbi). A seeded random workload over several tables
 *     (plain with values from 1 byte to large pages, INTEGERKEY, DUPSORT with
 *     keys of hundreds of values in nested trees, keys in the main table;
 *     tables created, cleared, dropped and renamed; single, cursor and bulk
 *     (mdbx_cursor_delete_range) range deletes) runs in rounds: a read
 *     snapshot A is kept open while 1..60 transactions commit (sometimes with
 *     mdbx_env_defrag() after them, or only a defrag; sometimes B is the still
 *     uncommitted write transaction), then every table present in A or B is
 *     diffed, and
 *       - every key whose presence, value or set of values differs between
 *         full scans of A and B must have been reported;
 *       - replay: a compacting copy of A (mdbx_txn_copy2pathname_ex), updated
 *         for each reported key from B (tables created and dropped from the
 *         MDBX_DIFF_TABLE reports of the main table), must equal B;
 *       - negative control: the same replay without the MDBX_DIFF_OLDER
 *         reports must leave a difference (on rounds that delete keys);
 *       - a callback that returns non-zero stops the diff with that value.
 *     A scans its tables when it begins, so tables dropped and re-created or
 *     renamed meanwhile leave A with stale handle states.
 *     Defrag: the pages mdbx_env_defrag() writes (0002's WRITTEN events) must
 *     carry a txnid newer than A on their headers, read through
 *     mdbx_env_get_mapping(); a deterministic round frees half of a big table
 *     and defrags between two snapshots.
 *     Efficiency: after one small commit on a table of 200k keys the diff
 *     reports < 1000 keys and reads < 1/4 of the table's pages (in fact ~15).
 *  2. mdbx_txn_copy2pathname_ex: progress is monotonic, ends at
 *     pages_copied == pages_total == the used pages of the copy; a callback
 *     that returns MDBX_EINTR cancels the copy (compacting: mid-way or at the
 *     first report; as-is: at the last report) and the destination is removed.
 *  3. mdbx_txn_leaf_order: > 0 leaves out of order after random inserts and
 *     deletes (leaf count == ms_leaf_pages), 0 on a compacting copy.
 *
 *   TURBOMDBX_SEED=<n>     replay a run (the seed is printed)
 *   TURBOMDBX_SOAK=1       600 rounds instead of 60
 *   TURBOMDBX_KEEP_DB=1    keep the temporary folder
 *
 * Exit status 0 = pass; otherwise the first failure is printed on stderr. */
#define _GNU_SOURCE
#include "harness.h"

#include <sys/stat.h>

#define PAGESIZE 4096u
#define MAIN_TABLE 1u /* the handle of the main table (MAIN_DBI inside libmdbx) */
#define PH_TXNID 0    /* page header: txnid (8 bytes) */
#define PH_PGNO 16    /* page header: pgno (4 bytes) */

static double now_sec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void path_in_dir(char *out, size_t size, const char *name) { snprintf(out, size, "%s/%s", db_dir, name); }

static void remove_db_file(const char *path) {
  char lck[4400];
  snprintf(lck, sizeof(lck), "%s-lck", path);
  unlink(path);
  unlink(lck);
}

static bool file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static MDBX_env *open_env(const char *path, MDBX_env_flags_t flags, bool lifo) {
  MDBX_env *env;
  CHECK(mdbx_env_create(&env));
  CHECK(mdbx_env_set_maxdbs(env, 16));
  if (!(flags & MDBX_NOSUBDIR))
    CHECK(mdbx_env_set_geometry(env, -1, -1, (intptr_t)1 << 30, 1 << 20, 4 << 20, PAGESIZE));
  CHECK(mdbx_env_open(env, path, flags | MDBX_NOSTICKYTHREADS | MDBX_UTTERLY_NOSYNC | (lifo ? MDBX_LIFORECLAIM : 0),
                      0644));
  return env;
}

/*------------------------------------------------------------------ tables */

typedef struct {
  const char *name; /* NULL: the main table */
  MDBX_db_flags_t flags;
  bool dynamic; /* created and dropped by the workload */
} tdef_t;

enum { T_MAIN, T_PLAIN, T_INTS, T_DUPS, T_TMP0, T_TMP1, T_TMP2, T_TMP3, T_COUNT };
static const tdef_t tdefs[T_COUNT] = {
    {NULL, MDBX_DB_DEFAULTS, false},     {"plain", MDBX_DB_DEFAULTS, false}, {"ints", MDBX_INTEGERKEY, false},
    {"dups", MDBX_DUPSORT, false},       {"tmp0", MDBX_DB_DEFAULTS, true},   {"tmp1", MDBX_DUPSORT, true},
    {"tmp2", MDBX_INTEGERKEY, true},     {"tmp3", MDBX_DB_DEFAULTS, true}};
static const char *tlabel(int t) { return tdefs[t].name ? tdefs[t].name : "(main)"; }

static int table_of_name(const void *p, size_t len) {
  for (int t = 1; t < T_COUNT; ++t)
    if (strlen(tdefs[t].name) == len && !memcmp(tdefs[t].name, p, len))
      return t;
  return -1;
}

static int enum_find(void *ctx, const MDBX_txn *txn, const MDBX_val *name, MDBX_db_flags_t flags,
                     const struct MDBX_stat *stat, MDBX_dbi dbi) {
  (void)txn, (void)flags, (void)stat, (void)dbi;
  const char *want = ctx;
  return (name->iov_len == strlen(want) && !memcmp(name->iov_base, want, name->iov_len)) ? MDBX_RESULT_TRUE
                                                                                         : MDBX_SUCCESS;
}

/* Whether table t exists in the txn's snapshot. (mdbx_dbi_open() alone does
 * not tell: a handle created by an aborted write transaction stays bound to
 * its name, and opening that name again returns it even where the table does
 * not exist; the handle then fails with MDBX_BAD_DBI.) */
static bool table_exists(MDBX_txn *txn, int t) {
  if (t == T_MAIN)
    return true;
  const int rc = mdbx_enumerate_tables(txn, enum_find, (void *)tdefs[t].name);
  if (rc != MDBX_SUCCESS && rc != MDBX_RESULT_TRUE)
    fail("mdbx_enumerate_tables: %s", mdbx_strerror(rc));
  return rc == MDBX_RESULT_TRUE;
}

/* The handle of table t in txn, or MDBX_NOTFOUND if the table is absent. */
static int open_table(MDBX_txn *txn, int t, bool create, MDBX_dbi *dbi) {
  if (t == T_MAIN) {
    *dbi = MAIN_TABLE;
    return MDBX_SUCCESS;
  }
  if (!create && !table_exists(txn, t))
    return MDBX_NOTFOUND;
  return mdbx_dbi_open(txn, tdefs[t].name, tdefs[t].flags | (create ? MDBX_CREATE : 0), dbi);
}

/*------------------------------------------------------------------ byte strings */

typedef struct {
  uint8_t *p;
  size_t n, cap;
} buf_t;

static size_t buf_add(buf_t *b, const void *src, size_t len) {
  if (b->n + len > b->cap) {
    b->cap = (b->n + len) * 2 + 4096;
    b->p = xrealloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, src, len);
  b->n += len;
  return b->n - len;
}

static int bytes_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
  const int c = memcmp(a, b, al < bl ? al : bl);
  return c ? c : (al < bl ? -1 : al > bl);
}

static void hex(char *out, size_t size, const void *p, size_t len) {
  size_t w = 0;
  for (size_t i = 0; i < len && w + 3 < size; ++i)
    w += (size_t)snprintf(out + w, size - w, "%02x", ((const uint8_t *)p)[i]);
  if (len * 2 + 1 > size && size > 4)
    strcpy(out + size - 4, "..");
}

/*------------------------------------------------------------------ full scans */

typedef struct {
  size_t k, kl, v, vl;
} ent_t;

typedef struct {
  bool present;
  ent_t *e;
  size_t n, cap;
  buf_t b;
} scan_t;

static const uint8_t *sort_base;
static int ent_cmp(const void *pa, const void *pb) {
  const ent_t *a = pa, *b = pb;
  const int c = bytes_cmp(sort_base + a->k, a->kl, sort_base + b->k, b->kl);
  return c ? c : bytes_cmp(sort_base + a->v, a->vl, sort_base + b->v, b->vl);
}

/* All pairs of table t in txn, sorted by (key, value) bytes; the main table
 * without the named-table records. */
static void scan_table(MDBX_txn *txn, int t, scan_t *s) {
  s->n = 0;
  s->b.n = 0;
  MDBX_dbi dbi;
  int rc = open_table(txn, t, false, &dbi);
  if (rc == MDBX_NOTFOUND) {
    s->present = false;
    return;
  }
  if (rc != MDBX_SUCCESS)
    fail("scan %s: mdbx_dbi_open: %s", tlabel(t), mdbx_strerror(rc));
  s->present = true;
  MDBX_cursor *cur;
  CHECK(mdbx_cursor_open(txn, dbi, &cur));
  MDBX_val k, v;
  for (rc = mdbx_cursor_get(cur, &k, &v, MDBX_FIRST); rc != MDBX_NOTFOUND; rc = mdbx_cursor_get(cur, &k, &v, MDBX_NEXT)) {
    if (rc != MDBX_SUCCESS)
      fail("scan %s: %s", tlabel(t), mdbx_strerror(rc));
    if (t == T_MAIN && table_of_name(k.iov_base, k.iov_len) >= 0)
      continue; /* a named-table record */
    if (s->n == s->cap) {
      s->cap = s->cap ? s->cap * 2 : 4096;
      s->e = xrealloc(s->e, s->cap * sizeof(ent_t));
    }
    ent_t *e = &s->e[s->n++];
    e->k = buf_add(&s->b, k.iov_base, e->kl = k.iov_len);
    e->v = buf_add(&s->b, v.iov_base, e->vl = v.iov_len);
  }
  mdbx_cursor_close(cur);
  sort_base = s->b.p;
  qsort(s->e, s->n, sizeof(ent_t), ent_cmp);
}

static void scan_free(scan_t *s) {
  free(s->e);
  free(s->b.p);
  memset(s, 0, sizeof(*s));
}

/* End of the group of entries with the key of entry i. */
static size_t group_end(const scan_t *s, size_t i) {
  size_t j = i + 1;
  while (j < s->n && !bytes_cmp(s->b.p + s->e[j].k, s->e[j].kl, s->b.p + s->e[i].k, s->e[i].kl))
    ++j;
  return j;
}

/* Index of the first entry with this key, or s->n. */
static size_t scan_find(const scan_t *s, const uint8_t *key, size_t kl) {
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (bytes_cmp(s->b.p + s->e[mid].k, s->e[mid].kl, key, kl) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return (lo < s->n && !bytes_cmp(s->b.p + s->e[lo].k, s->e[lo].kl, key, kl)) ? lo : s->n;
}

typedef void diff_key_func(void *ctx, const uint8_t *key, size_t kl, size_t na, size_t nb);

/* Calls func for every key whose presence or set of values differs; returns the count. */
static size_t scan_differences(const scan_t *a, const scan_t *b, diff_key_func *func, void *ctx) {
  size_t i = 0, j = 0, count = 0;
  while (i < a->n || j < b->n) {
    const int c = (i == a->n)   ? 1
                  : (j == b->n) ? -1
                                : bytes_cmp(a->b.p + a->e[i].k, a->e[i].kl, b->b.p + b->e[j].k, b->e[j].kl);
    if (c < 0) {
      const size_t ie = group_end(a, i);
      if (func)
        func(ctx, a->b.p + a->e[i].k, a->e[i].kl, ie - i, 0);
      count += 1;
      i = ie;
    } else if (c > 0) {
      const size_t je = group_end(b, j);
      if (func)
        func(ctx, b->b.p + b->e[j].k, b->e[j].kl, 0, je - j);
      count += 1;
      j = je;
    } else {
      const size_t ie = group_end(a, i), je = group_end(b, j);
      bool same = ie - i == je - j;
      for (size_t x = 0; same && x < ie - i; ++x)
        same = !bytes_cmp(a->b.p + a->e[i + x].v, a->e[i + x].vl, b->b.p + b->e[j + x].v, b->e[j + x].vl);
      if (!same) {
        if (func)
          func(ctx, a->b.p + a->e[i].k, a->e[i].kl, ie - i, je - j);
        count += 1;
      }
      i = ie;
      j = je;
    }
  }
  return count;
}

/*------------------------------------------------------------------ diff reports */

typedef struct {
  size_t k, kl;
  unsigned flags;
} rep_t;

typedef struct {
  buf_t b;
  rep_t *r;
  size_t n, cap;
  size_t calls;
  int stop_after; /* negative test of the stop path: return this many calls later */
} repset_t;

static int on_diff(void *ctx, const MDBX_val *key, MDBX_diff_flags_t flags) {
  repset_t *rs = ctx;
  rs->calls += 1;
  if (flags & ~(MDBX_DIFF_OLDER | MDBX_DIFF_NEWER | MDBX_DIFF_TABLE) ||
      ((flags & MDBX_DIFF_OLDER) != 0) == ((flags & MDBX_DIFF_NEWER) != 0))
    fail("mdbx_txn_diff reported flags 0x%x", (unsigned)flags);
  if (rs->stop_after > 0 && (size_t)rs->stop_after == rs->calls)
    return MDBX_RESULT_TRUE + 43; /* an arbitrary non-zero value */
  if (rs->n == rs->cap) {
    rs->cap = rs->cap ? rs->cap * 2 : 1024;
    rs->r = xrealloc(rs->r, rs->cap * sizeof(rep_t));
  }
  rep_t *r = &rs->r[rs->n++];
  r->k = buf_add(&rs->b, key->iov_base, r->kl = key->iov_len);
  r->flags = (unsigned)flags;
  return MDBX_SUCCESS;
}

static const uint8_t *rep_base;
static int rep_cmp(const void *pa, const void *pb) {
  const rep_t *a = pa, *b = pb;
  return bytes_cmp(rep_base + a->k, a->kl, rep_base + b->k, b->kl);
}

/* Sorts and merges duplicate keys (OR of their flags). */
static void rep_finish(repset_t *rs) {
  rep_base = rs->b.p;
  qsort(rs->r, rs->n, sizeof(rep_t), rep_cmp);
  size_t w = 0;
  for (size_t i = 0; i < rs->n; ++i) {
    if (w && !rep_cmp(&rs->r[w - 1], &rs->r[i]))
      rs->r[w - 1].flags |= rs->r[i].flags;
    else
      rs->r[w++] = rs->r[i];
  }
  rs->n = w;
}

static unsigned rep_lookup(const repset_t *rs, const uint8_t *key, size_t kl) {
  size_t lo = 0, hi = rs->n;
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    const int c = bytes_cmp(rs->b.p + rs->r[mid].k, rs->r[mid].kl, key, kl);
    if (!c)
      return rs->r[mid].flags;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}

static void rep_clear(repset_t *rs) {
  rs->n = rs->b.n = rs->calls = 0;
  rs->stop_after = 0;
}

/*------------------------------------------------------------------ the diff check */

static uint64_t stat_reported, stat_changed, stat_pages, stat_diffs, stat_main_table_reports;
static uint64_t stat_write_b_rounds, stat_defrag_rounds, stat_defrag_moved, stat_defrag_only_reports;
static uint64_t stat_defrag_pages_checked, stat_defrag_laggard;

typedef struct {
  int t;
  const repset_t *rs;
  size_t missed;
} miss_ctx_t;

static void check_reported(void *ctx, const uint8_t *key, size_t kl, size_t na, size_t nb) {
  miss_ctx_t *m = ctx;
  stat_changed += 1;
  if (rep_lookup(m->rs, key, kl))
    return;
  if (m->missed++ < 8) {
    char h[80];
    hex(h, sizeof(h), key, kl);
    fprintf(stderr, "rebuild: %s: key %s (%zu value(s) in A, %zu in B) differs but was not reported\n", tlabel(m->t),
            h, na, nb);
  }
}

/* Puts B's values of key (none: deleted) into table dbi of the copy. */
static void replay_key(MDBX_txn *ctxn, MDBX_dbi dbi, const scan_t *sb, const uint8_t *key, size_t kl) {
  static uint64_t kbuf[64], vbuf[2048]; /* aligned copies (INTEGERKEY) */
  if (kl > sizeof(kbuf))
    fail("key of %zu bytes", kl);
  memcpy(kbuf, key, kl);
  MDBX_val k = {kbuf, kl};
  int rc = mdbx_del(ctxn, dbi, &k, NULL);
  if (rc != MDBX_SUCCESS && rc != MDBX_NOTFOUND)
    fail("replay: mdbx_del: %s", mdbx_strerror(rc));
  for (size_t i = scan_find(sb, key, kl); i < sb->n && !bytes_cmp(sb->b.p + sb->e[i].k, sb->e[i].kl, key, kl); ++i) {
    if (sb->e[i].vl > sizeof(vbuf))
      fail("value of %zu bytes", sb->e[i].vl);
    memcpy(vbuf, sb->b.p + sb->e[i].v, sb->e[i].vl);
    MDBX_val v = {vbuf, sb->e[i].vl};
    CHECK(mdbx_put(ctxn, dbi, &k, &v, MDBX_UPSERT));
  }
}

/* Applies the reports to the copy of A; without_older leaves out the keys
 * reported only with MDBX_DIFF_OLDER (the negative control). */
static void replay(MDBX_env *cenv, const scan_t *sb, const repset_t *rs, bool without_older) {
  MDBX_txn *ctxn;
  CHECK(mdbx_txn_begin(cenv, NULL, MDBX_TXN_READWRITE, &ctxn));
  /* tables created and dropped, from the named-table records of the main table */
  for (size_t i = 0; i < rs[T_MAIN].n; ++i) {
    const rep_t *r = &rs[T_MAIN].r[i];
    if (!(r->flags & MDBX_DIFF_TABLE))
      continue;
    if (without_older && !(r->flags & MDBX_DIFF_NEWER))
      continue;
    const int t = table_of_name(rs[T_MAIN].b.p + r->k, r->kl);
    if (t < 0)
      fail("MDBX_DIFF_TABLE report of an unknown table name");
    MDBX_dbi dbi;
    const int rc = open_table(ctxn, t, false, &dbi);
    if (rc != MDBX_SUCCESS && rc != MDBX_NOTFOUND)
      fail("replay: open %s: %s", tlabel(t), mdbx_strerror(rc));
    if (sb[t].present && rc == MDBX_NOTFOUND)
      CHECK(open_table(ctxn, t, true, &dbi));
    else if (!sb[t].present && rc == MDBX_SUCCESS)
      CHECK(mdbx_drop(ctxn, dbi, true));
  }
  for (int t = 0; t < T_COUNT; ++t) {
    if (!sb[t].present)
      continue;
    MDBX_dbi dbi;
    const int rc = open_table(ctxn, t, false, &dbi);
    if (rc == MDBX_NOTFOUND)
      continue; /* the comparison will tell */
    CHECK(rc);
    for (size_t i = 0; i < rs[t].n; ++i) {
      const rep_t *r = &rs[t].r[i];
      if ((r->flags & MDBX_DIFF_TABLE) || (without_older && !(r->flags & MDBX_DIFF_NEWER)))
        continue;
      replay_key(ctxn, dbi, &sb[t], rs[t].b.p + r->k, r->kl);
    }
  }
  CHECK(mdbx_txn_commit(ctxn));
}

/* Number of tables and keys in which the copy differs from B. */
static size_t compare_copy(MDBX_env *cenv, const scan_t *sb, bool quiet) {
  MDBX_txn *txn;
  CHECK(mdbx_txn_begin(cenv, NULL, MDBX_TXN_RDONLY, &txn));
  scan_t sc = {0};
  size_t differences = 0;
  for (int t = 0; t < T_COUNT; ++t) {
    scan_table(txn, t, &sc);
    if (sc.present != sb[t].present) {
      if (!quiet)
        fprintf(stderr, "rebuild: table %s is %s in the replayed copy but %s in B\n", tlabel(t),
                sc.present ? "present" : "absent", sb[t].present ? "present" : "absent");
      differences += 1;
      continue;
    }
    const size_t d = scan_differences(&sc, &sb[t], NULL, NULL);
    if (d && !quiet)
      fprintf(stderr, "rebuild: table %s: %zu keys differ between the replayed copy and B\n", tlabel(t), d);
    differences += d;
  }
  scan_free(&sc);
  CHECK(mdbx_txn_abort(txn));
  return differences;
}

/*------------------------------------------------------------------ copy progress */

typedef struct {
  size_t calls;
  uint64_t last_copied, first_total, last_total;
  size_t cancel_at; /* return MDBX_EINTR at this call (0: never) */
  bool cancel_at_end;
  char bad[256];
} progress_t;

static int on_progress(void *ctx, uint64_t pages_copied, uint64_t pages_total) {
  progress_t *p = ctx;
  p->calls += 1;
  if (p->calls == 1)
    p->first_total = pages_total;
  if (pages_copied < p->last_copied && !p->bad[0])
    snprintf(p->bad, sizeof(p->bad), "pages_copied went down from %" PRIu64 " to %" PRIu64, p->last_copied,
             pages_copied);
  if (pages_copied > pages_total && !p->bad[0])
    snprintf(p->bad, sizeof(p->bad), "pages_copied %" PRIu64 " > pages_total %" PRIu64, pages_copied, pages_total);
  p->last_copied = pages_copied;
  p->last_total = pages_total;
  if (p->cancel_at && p->calls == p->cancel_at)
    return MDBX_EINTR;
  if (p->cancel_at_end && pages_copied == pages_total)
    return MDBX_EINTR;
  return MDBX_SUCCESS;
}

/* Used pages of the database file at path (mi_last_pgno + 1). */
static uint64_t used_pages(const char *path) {
  MDBX_env *env = open_env(path, MDBX_NOSUBDIR | MDBX_RDONLY, false);
  MDBX_envinfo info;
  CHECK(mdbx_env_info_ex(env, NULL, &info, sizeof(info)));
  CHECK(mdbx_env_close(env));
  return info.mi_last_pgno + 1;
}

/* A copy of txn's snapshot to path, with the progress checks. */
static void copy_checked(MDBX_txn *txn, const char *path, MDBX_copy_flags_t flags) {
  progress_t p = {0};
  CHECK(mdbx_txn_copy2pathname_ex(txn, path, flags, on_progress, &p));
  if (p.bad[0])
    fail("copy progress: %s", p.bad);
  if (!p.calls)
    fail("copy progress: the callback was never called");
  if (p.last_copied != p.last_total)
    fail("copy progress: the last call has pages_copied %" PRIu64 " != pages_total %" PRIu64, p.last_copied,
         p.last_total);
  const uint64_t used = used_pages(path);
  if (p.last_total != used)
    fail("copy progress: pages_total %" PRIu64 ", but the copy has %" PRIu64 " used pages", p.last_total, used);
  if ((flags & MDBX_CP_COMPACT) && p.first_total != p.last_total)
    fail("copy progress: pages_total changed from %" PRIu64 " to %" PRIu64 " (no page leaks here)", p.first_total,
         p.last_total);
}

/*------------------------------------------------------------------ workload */

static uint8_t valbuf[16384];

static MDBX_val random_value(size_t len) {
  for (size_t i = 0; i < len; i += 8) {
    const uint64_t r = rnd();
    memcpy(valbuf + i, &r, len - i < 8 ? len - i : 8);
  }
  return (MDBX_val){valbuf, len};
}

static size_t plain_size(void) {
  const unsigned c = (unsigned)below(100);
  return c < 60 ? between(1, 100) : c < 90 ? between(101, 1500) : between(2100, 9000);
}

#define PLAIN_KEYS 3000u
#define INT_KEYS 40000u
#define DUP_KEYS 200u
#define HEAVY_DUP_KEYS 8u
#define MAIN_KEYS 600u

static MDBX_dbi wdbi[T_COUNT]; /* handles of the write transaction in progress */

static void put_plain(MDBX_txn *txn, int t, uint64_t key, size_t vlen) {
  uint8_t kb[8];
  put_be64(kb, key);
  MDBX_val k = {kb, 8}, v = random_value(vlen);
  CHECK(mdbx_put(txn, wdbi[t], &k, &v, MDBX_UPSERT));
}

static void put_int(MDBX_txn *txn, int t, uint64_t key) {
  MDBX_val k = {&key, 8}, v = random_value(between(8, 40));
  CHECK(mdbx_put(txn, wdbi[t], &k, &v, MDBX_UPSERT));
}

static MDBX_val dup_value(uint32_t id, uint8_t *buf) {
  const size_t len = 4 + id % 29;
  put_be32(buf, id);
  for (size_t i = 4; i < len; ++i)
    buf[i] = (uint8_t)(id * 7 + i);
  return (MDBX_val){buf, len};
}

static void put_dup(MDBX_txn *txn, int t, uint32_t key, uint32_t id) {
  uint8_t kb[4], vb[40];
  put_be32(kb, key);
  MDBX_val k = {kb, 4}, v = dup_value(id, vb);
  CHECK(mdbx_put(txn, wdbi[t], &k, &v, MDBX_UPSERT));
}

static void put_main(MDBX_txn *txn, unsigned key) {
  char kb[16];
  const int kl = snprintf(kb, sizeof(kb), "~%05u", key);
  MDBX_val k = {kb, (size_t)kl}, v = random_value(between(1, 120));
  CHECK(mdbx_put(txn, MAIN_TABLE, &k, &v, MDBX_UPSERT));
}

static void del_key(MDBX_txn *txn, MDBX_dbi dbi, const void *key, size_t kl) {
  uint64_t kb[8];
  memcpy(kb, key, kl);
  MDBX_val k = {kb, kl};
  const int rc = mdbx_del(txn, dbi, &k, NULL);
  if (rc != MDBX_SUCCESS && rc != MDBX_NOTFOUND)
    fail("mdbx_del: %s", mdbx_strerror(rc));
}

/* The key number idx of table t (the workload's key spaces). */
static void make_key(int t, uint64_t idx, uint8_t *kb, size_t *kl) {
  switch (t) {
  case T_MAIN:
    *kl = (size_t)snprintf((char *)kb, 16, "~%05u", (unsigned)(idx % 100000));
    break;
  case T_INTS:
  case T_TMP2:
    memcpy(kb, &idx, 8);
    *kl = 8;
    break;
  case T_DUPS:
  case T_TMP1:
    put_be32(kb, (uint32_t)idx);
    *kl = 4;
    break;
  default:
    put_be64(kb, idx);
    *kl = 8;
  }
}

static uint64_t key_space(int t) {
  return t == T_MAIN ? MAIN_KEYS : (t == T_INTS || t == T_TMP2) ? INT_KEYS : (t == T_DUPS || t == T_TMP1) ? DUP_KEYS
                                                                                                          : PLAIN_KEYS;
}

static size_t bulk_deletes;

/* Deletes a range of keys (with all their values) from a random key on: up to
 * n keys one by one, or, half of the time, the key range [k, k + n) at once
 * with mdbx_cursor_delete_range() (which cuts whole subtrees out). */
static void range_delete(MDBX_txn *txn, int t, size_t n) {
  uint8_t kb[16];
  size_t kl;
  const uint64_t first = below(key_space(t));
  make_key(t, first, kb, &kl);
  MDBX_cursor *cur;
  CHECK(mdbx_cursor_open(txn, wdbi[t], &cur));
  MDBX_val k = {kb, kl}, v;
  int rc = mdbx_cursor_get(cur, &k, &v, MDBX_SET_RANGE);
  if (chance(50)) {
    uint8_t kb2[16];
    size_t kl2;
    make_key(t, first + (t == T_DUPS || t == T_TMP1 ? n / 8 + 1 : n), kb2, &kl2);
    MDBX_cursor *end;
    CHECK(mdbx_cursor_open(txn, wdbi[t], &end));
    MDBX_val k2 = {kb2, kl2};
    const int rc2 = mdbx_cursor_get(end, &k2, &v, MDBX_SET_RANGE);
    if (rc == MDBX_SUCCESS && rc2 == MDBX_SUCCESS) {
      uint64_t removed = 0;
      rc = mdbx_cursor_delete_range(cur, end, false, &removed);
      if (rc != MDBX_SUCCESS && rc != MDBX_ENODATA /* an empty range */)
        fail("mdbx_cursor_delete_range(%s): %s", tlabel(t), mdbx_strerror(rc));
      bulk_deletes += 1;
    } else if ((rc != MDBX_SUCCESS && rc != MDBX_NOTFOUND) || (rc2 != MDBX_SUCCESS && rc2 != MDBX_NOTFOUND))
      fail("range delete: %s", mdbx_strerror(rc != MDBX_SUCCESS ? rc : rc2));
    mdbx_cursor_close(end);
    mdbx_cursor_close(cur);
    return;
  }
  uint64_t keys[512][2];
  size_t lens[512], count = 0;
  while (rc == MDBX_SUCCESS && count < n && count < 512) {
    if (k.iov_len <= 16 && (t != T_MAIN || ((const char *)k.iov_base)[0] == '~')) {
      memcpy(keys[count], k.iov_base, k.iov_len);
      lens[count++] = k.iov_len;
    }
    rc = mdbx_cursor_get(cur, &k, &v, MDBX_NEXT_NODUP);
  }
  if (rc != MDBX_SUCCESS && rc != MDBX_NOTFOUND)
    fail("range delete: %s", mdbx_strerror(rc));
  mdbx_cursor_close(cur);
  for (size_t i = 0; i < count; ++i)
    del_key(txn, wdbi[t], keys[i], lens[i]);
}

/* Deletes a few random values of a dupsort key. */
static void dup_delete_some(MDBX_txn *txn, int t, uint32_t key, size_t n) {
  uint8_t kb[4];
  put_be32(kb, key);
  for (size_t i = 0; i < n; ++i) {
    MDBX_cursor *cur;
    CHECK(mdbx_cursor_open(txn, wdbi[t], &cur));
    MDBX_val k = {kb, 4}, v;
    int rc = mdbx_cursor_get(cur, &k, &v, MDBX_SET_KEY);
    if (rc == MDBX_NOTFOUND) {
      mdbx_cursor_close(cur);
      return;
    }
    CHECK(rc);
    size_t count = 0;
    CHECK(mdbx_cursor_count(cur, &count));
    for (size_t skip = below(count); skip && rc == MDBX_SUCCESS; --skip)
      rc = mdbx_cursor_get(cur, &k, &v, MDBX_NEXT_DUP);
    CHECK(rc);
    CHECK(mdbx_cursor_del(cur, MDBX_UPSERT));
    mdbx_cursor_close(cur);
  }
}

static uint64_t table_entries(MDBX_txn *txn, int t) {
  MDBX_stat st;
  CHECK(mdbx_dbi_stat(txn, wdbi[t], &st, sizeof(st)));
  return st.ms_entries;
}

static void fill_tmp(MDBX_txn *txn, int t, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (t == T_TMP1)
      put_dup(txn, t, (uint32_t)below(DUP_KEYS), (uint32_t)below(100000));
    else if (t == T_TMP2)
      put_int(txn, t, below(INT_KEYS));
    else
      put_plain(txn, t, below(PLAIN_KEYS), between(1, 200));
  }
}

static size_t tmp_creates, tmp_drops, tmp_clears, tmp_renames, fixed_clears;

/* A change of a dynamic table: create and fill, drop, clear, or modify. */
static void tmp_op(MDBX_txn *txn) {
  const int t = (int)between(T_TMP0, T_TMP3);
  const int rc = open_table(txn, t, false, &wdbi[t]);
  if (rc == MDBX_NOTFOUND) {
    CHECK(open_table(txn, t, true, &wdbi[t]));
    fill_tmp(txn, t, between(20, 300));
    tmp_creates += 1;
    return;
  }
  CHECK(rc);
  const unsigned c = (unsigned)below(100);
  if (c < 25) {
    CHECK(mdbx_drop(txn, wdbi[t], true));
    tmp_drops += 1;
  } else if (c < 35) {
    CHECK(mdbx_drop(txn, wdbi[t], false));
    tmp_clears += 1;
  } else if (c < 75)
    fill_tmp(txn, t, between(1, 50));
  else
    range_delete(txn, t, between(1, 40));
}

static void random_op(MDBX_txn *txn) {
  const unsigned c = (unsigned)below(100);
  if (c < 22)
    put_plain(txn, T_PLAIN, below(PLAIN_KEYS), plain_size());
  else if (c < 30) {
    uint8_t kb[8];
    put_be64(kb, below(PLAIN_KEYS));
    del_key(txn, wdbi[T_PLAIN], kb, 8);
  } else if (c < 36) {
    static const int range_tables[] = {T_PLAIN, T_INTS, T_DUPS, T_MAIN};
    const int t = range_tables[below(4)];
    range_delete(txn, t, between(2, t == T_INTS ? 300 : 40));
  } else if (c < 50)
    put_int(txn, T_INTS, below(INT_KEYS));
  else if (c < 55) {
    const uint64_t key = below(INT_KEYS);
    del_key(txn, wdbi[T_INTS], &key, 8);
  } else if (c < 67) {
    const uint32_t key = (uint32_t)below(DUP_KEYS);
    if (table_entries(txn, T_DUPS) > 30000)
      dup_delete_some(txn, T_DUPS, key, between(1, 200));
    else
      for (size_t n = key < HEAVY_DUP_KEYS ? between(50, 300) : between(1, 10); n; --n)
        put_dup(txn, T_DUPS, key, (uint32_t)below(100000));
  } else if (c < 75) {
    const uint32_t key = (uint32_t)below(DUP_KEYS);
    if (chance(25)) {
      uint8_t kb[4];
      put_be32(kb, key);
      del_key(txn, wdbi[T_DUPS], kb, 4);
    } else
      dup_delete_some(txn, T_DUPS, key, key < HEAVY_DUP_KEYS ? between(10, 200) : between(1, 3));
  } else if (c < 86)
    put_main(txn, (unsigned)below(MAIN_KEYS));
  else if (c < 90) {
    char kb[16];
    const int kl = snprintf(kb, sizeof(kb), "~%05u", (unsigned)below(MAIN_KEYS));
    del_key(txn, MAIN_TABLE, kb, (size_t)kl);
  } else
    tmp_op(txn);
}

/* Begins a write transaction with the handles of the fixed tables. */
static MDBX_txn *begin_write(MDBX_env *env) {
  MDBX_txn *txn;
  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_READWRITE, &txn));
  for (int t = 0; t <= T_DUPS; ++t)
    CHECK(open_table(txn, t, true, &wdbi[t]));
  return txn;
}

/* Renames tmp0 to tmp3 or back (the same flags), if one exists and the other
 * does not: the tree then belongs to another name, whose tree in A it is not.
 * Only as the first change of a transaction that commits: libmdbx 0.14.3
 * renames the handle in the environment at once (not undone by an abort), and
 * a handle dropped in the same transaction still holds the target name until
 * the commit, so opening that name there binds a second handle to the renamed
 * tree. */
static void rename_op(MDBX_txn *txn) {
  const int t = chance(50) ? T_TMP0 : T_TMP3, other = t == T_TMP0 ? T_TMP3 : T_TMP0;
  if (!table_exists(txn, t) || table_exists(txn, other))
    return;
  CHECK(open_table(txn, t, false, &wdbi[t]));
  CHECK(mdbx_dbi_rename(txn, wdbi[t], tdefs[other].name));
  tmp_renames += 1;
}

/* One write transaction of random size; left open (returned) if keep_open. */
static MDBX_txn *one_commit(MDBX_env *env, bool keep_open) {
  MDBX_txn *txn = begin_write(env);
  if (!keep_open && chance(12))
    rename_op(txn);
  const unsigned c = (unsigned)below(100);
  size_t ops = c < 50 ? between(1, 3) : c < 85 ? between(5, 60) : between(100, 400);
  if (chance(1)) {
    const int t = (int)between(T_PLAIN, T_DUPS);
    CHECK(mdbx_drop(txn, wdbi[t], false));
    fixed_clears += 1;
  }
  while (ops--)
    random_op(txn);
  if (keep_open)
    return txn;
  CHECK(mdbx_txn_commit(txn));
  return NULL;
}

static void initial_fill(MDBX_env *env) {
  MDBX_txn *txn = begin_write(env);
  for (size_t i = 0; i < 2000; ++i)
    put_plain(txn, T_PLAIN, below(PLAIN_KEYS), plain_size());
  for (size_t i = 0; i < 12000; ++i)
    put_int(txn, T_INTS, below(INT_KEYS));
  for (uint32_t key = 0; key < DUP_KEYS; ++key)
    for (size_t n = key < HEAVY_DUP_KEYS ? between(300, 700) : between(1, 20); n; --n)
      put_dup(txn, T_DUPS, key, (uint32_t)below(100000));
  for (unsigned i = 0; i < MAIN_KEYS / 2; ++i)
    put_main(txn, (unsigned)below(MAIN_KEYS));
  for (int t = T_TMP0; t <= T_TMP1; ++t) {
    CHECK(open_table(txn, t, true, &wdbi[t]));
    fill_tmp(txn, t, 200);
  }
  CHECK(mdbx_txn_commit(txn));
}

/*------------------------------------------------------------------ defrag */

/* WRITTEN reports of a defrag run (0002's relocation events): the pages it
 * wrote and the txnid of the transaction that wrote them. */
static struct {
  uint32_t pgno[65536];
  uint64_t txnid[65536];
  size_t n;
} dfw;

static void on_relocation(void *ctx, uint64_t txnid, MDBX_relocation_kind_t kind, uint32_t pgno, uint32_t npages) {
  (void)ctx;
  (void)npages;
  if (kind == MDBX_RELOCATION_WRITTEN && dfw.n < sizeof(dfw.pgno) / sizeof(dfw.pgno[0])) {
    dfw.pgno[dfw.n] = pgno;
    dfw.txnid[dfw.n++] = txnid;
  }
}

/* Runs mdbx_env_defrag() and checks, on the page headers in the map, that
 * every page it wrote carries the txnid of the transaction that wrote it (or a
 * later one), newer than snapshot A: a moved page does not keep its old txnid,
 * so "txnid <= A's txnid" still means "the page A has" after a defrag. (The
 * diff itself needs less: a moved page has a new pgno.) */
static void defrag_checked(MDBX_env *env, uint64_t txnid_a) {
  dfw.n = 0;
  CHECK(mdbx_env_set_relocation_func(env, on_relocation, NULL));
  MDBX_defrag_result_t res;
  const int rc = mdbx_env_defrag(env, 0, 0, 0, 3 << 16, -1, chance(50) ? 0 : (intptr_t)between(4, 64), NULL, NULL,
                                 &res);
  CHECK(mdbx_env_set_relocation_func(env, NULL, NULL));
  if (rc == MDBX_LAGGARD_READER) /* snapshot A holds the pages it would need */
    stat_defrag_laggard += 1;
  else if (rc != MDBX_SUCCESS && rc != MDBX_RESULT_TRUE)
    fail("mdbx_env_defrag: %s (stopping reasons 0x%x)", mdbx_strerror(rc), res.stopping_reasons);
  stat_defrag_moved += res.pages_moved;
  void *base = NULL;
  size_t current = 0;
  CHECK(mdbx_env_get_mapping(env, &base, NULL, &current));
  MDBX_txn *txn;
  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_RDONLY, &txn));
  MDBX_envinfo info;
  CHECK(mdbx_env_info_ex(env, txn, &info, sizeof(info)));
  for (size_t i = 0; i < dfw.n; ++i) {
    if (dfw.pgno[i] > info.mi_last_pgno || ((size_t)dfw.pgno[i] + 1) * PAGESIZE > current)
      continue;
    const uint8_t *page = (const uint8_t *)base + (size_t)dfw.pgno[i] * PAGESIZE;
    uint64_t ptxnid;
    uint32_t ppgno;
    memcpy(&ptxnid, page + PH_TXNID, 8);
    memcpy(&ppgno, page + PH_PGNO, 4);
    if (ppgno != dfw.pgno[i])
      continue; /* not a page header (a later page of a large value) */
    if (ptxnid < dfw.txnid[i] || ptxnid <= txnid_a)
      fail("defrag wrote page %u in txnid %" PRIu64 ", but its header has txnid %" PRIu64 " (snapshot A is %" PRIu64
           "): a moved page keeps an old txnid",
           dfw.pgno[i], dfw.txnid[i], ptxnid, txnid_a);
    stat_defrag_pages_checked += 1;
  }
  CHECK(mdbx_txn_abort(txn));
}

/*------------------------------------------------------------------ one round */

static size_t control_done;

static void diff_round(MDBX_env *env, size_t gap, bool write_b, bool defrag) {
  static scan_t sa[T_COUNT], sb[T_COUNT];
  static repset_t rs[T_COUNT];
  char cpath[4400], cpath2[4400];

  if (defrag) {
    /* pages freed before A can be reused while A is open: room for defrag */
    phase = "workload before A";
    for (size_t i = between(2, 8); i; --i)
      one_commit(env, false);
  }
  phase = "snapshot A";
  MDBX_txn *A;
  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_RDONLY, &A));
  const uint64_t txnid_a = mdbx_txn_id(A);
  /* Scanned now, so A uses the handles: a table dropped and created again
   * below gets its handle closed and re-opened, which A must survive. */
  for (int t = 0; t < T_COUNT; ++t)
    scan_table(A, t, &sa[t]);
  path_in_dir(cpath, sizeof(cpath), "copy.mdbx");
  path_in_dir(cpath2, sizeof(cpath2), "control.mdbx");
  phase = "compacting copy of A";
  copy_checked(A, cpath, MDBX_CP_COMPACT | (chance(80) ? MDBX_CP_DONT_FLUSH : 0));
  const bool want_control = control_done < 2;
  if (want_control)
    copy_checked(A, cpath2, MDBX_CP_COMPACT | MDBX_CP_DONT_FLUSH | (chance(50) ? MDBX_CP_FORCE_DYNAMIC_SIZE : 0));

  phase = "workload";
  MDBX_txn *B = NULL;
  for (size_t i = 0; i < gap; ++i)
    B = one_commit(env, write_b && i + 1 == gap);
  if (defrag) {
    phase = "defrag";
    defrag_checked(env, txnid_a);
    stat_defrag_rounds += 1;
  }
  if (!B)
    CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_RDONLY, &B));
  else
    stat_write_b_rounds += 1;

  phase = write_b ? "diff (B = uncommitted write txn)" : "diff";
  for (int t = 0; t < T_COUNT; ++t)
    scan_table(B, t, &sb[t]);
  size_t round_reported = 0;
  for (int t = 0; t < T_COUNT; ++t) {
    rep_clear(&rs[t]);
    if (!sa[t].present && !sb[t].present)
      continue;
    MDBX_dbi dbi;
    int rc = open_table(sb[t].present ? B : A, t, false, &dbi);
    if (rc != MDBX_SUCCESS)
      fail("open %s in %s: %s", tlabel(t), sb[t].present ? "B" : "A", mdbx_strerror(rc));
    uint64_t pages = 0;
    rc = mdbx_txn_diff(A, B, dbi, on_diff, &rs[t], &pages);
    if (rc != MDBX_SUCCESS)
      fail("mdbx_txn_diff(%s): %s", tlabel(t), mdbx_strerror(rc));
    rep_finish(&rs[t]);
    stat_pages += pages;
    stat_diffs += 1;
    stat_reported += rs[t].n;
    round_reported += rs[t].n;
    if (t != T_MAIN)
      for (size_t i = 0; i < rs[t].n; ++i)
        if (rs[t].r[i].flags & MDBX_DIFF_TABLE)
          fail("%s: MDBX_DIFF_TABLE reported for a table other than the main one", tlabel(t));
    for (size_t i = 0; t == T_MAIN && i < rs[t].n; ++i)
      if (rs[t].r[i].flags & MDBX_DIFF_TABLE) {
        stat_main_table_reports += 1;
        if (table_of_name(rs[t].b.p + rs[t].r[i].k, rs[t].r[i].kl) < 0)
          fail("MDBX_DIFF_TABLE reported for a key that is not a table name");
      }
    miss_ctx_t m = {t, &rs[t], 0};
    scan_differences(&sa[t], &sb[t], check_reported, &m);
    if (m.missed)
      fail("mdbx_txn_diff(%s) missed %zu changed keys (gap %zu commits%s%s; A txnid %" PRIu64 ", B txnid %" PRIu64 ")",
           tlabel(t), m.missed, gap, write_b ? ", B uncommitted" : "", defrag ? ", defrag" : "", txnid_a,
           mdbx_txn_id(B));
    /* a table created or dropped in between is a changed named-table record */
    if (t != T_MAIN && sa[t].present != sb[t].present &&
        !(rep_lookup(&rs[T_MAIN], (const uint8_t *)tdefs[t].name, strlen(tdefs[t].name)) & MDBX_DIFF_TABLE))
      fail("table %s was %s, but the main table's diff did not report its record", tlabel(t),
           sb[t].present ? "created" : "dropped");
  }
  if (defrag && gap == 0)
    stat_defrag_only_reports += round_reported;

  /* The stop path: a non-zero answer ends the walk and is returned. */
  if (step_no % 7 == 3 && rs[T_DUPS].n > 3 && sa[T_DUPS].present && sb[T_DUPS].present) {
    repset_t stop = {0};
    stop.stop_after = 2;
    MDBX_dbi dbi;
    CHECK(open_table(B, T_DUPS, false, &dbi));
    const int rc = mdbx_txn_diff(A, B, dbi, on_diff, &stop, NULL);
    if (rc != MDBX_RESULT_TRUE + 43 || stop.calls != 2)
      fail("a diff callback returning %d after 2 calls: mdbx_txn_diff returned %d after %zu calls",
           MDBX_RESULT_TRUE + 43, rc, stop.calls);
    free(stop.b.p);
    free(stop.r);
  }

  phase = "replay into the copy of A";
  MDBX_env *cenv = open_env(cpath, MDBX_NOSUBDIR, false);
  replay(cenv, sb, rs, false);
  const size_t differences = compare_copy(cenv, sb, false);
  CHECK(mdbx_env_close(cenv));
  remove_db_file(cpath);
  if (differences)
    fail("the copy of A with the reported keys replayed from B differs from B in %zu tables/keys", differences);

  if (want_control) {
    /* Negative control: without the OLDER reports, deleted keys stay. */
    size_t deleted = 0;
    for (int t = 0; t < T_COUNT; ++t)
      for (size_t i = 0; i < sa[t].n; i = group_end(&sa[t], i))
        if (!sb[t].present ||
            scan_find(&sb[t], sa[t].b.p + sa[t].e[i].k, sa[t].e[i].kl) == sb[t].n)
          deleted += 1;
    if (deleted) {
      phase = "negative control";
      MDBX_env *c2 = open_env(cpath2, MDBX_NOSUBDIR, false);
      replay(c2, sb, rs, true);
      const size_t d2 = compare_copy(c2, sb, true);
      CHECK(mdbx_env_close(c2));
      if (!d2)
        fail("negative control: the replay without the MDBX_DIFF_OLDER reports (%zu keys deleted in B) still equals B",
             deleted);
      control_done += 1;
    }
    remove_db_file(cpath2);
  }

  if (write_b)
    CHECK(chance(80) ? mdbx_txn_commit(B) : mdbx_txn_abort(B));
  else
    CHECK(mdbx_txn_abort(B));
  CHECK(mdbx_txn_abort(A));
}

/*------------------------------------------------------------------ big table: efficiency, progress, leaf order */

static void big_tests(void) {
  char path[4400], cpath[4400];
  phase = "big table setup";
  path_in_dir(path, sizeof(path), "big.mdbx");
  MDBX_env *env = open_env(path, MDBX_NOSUBDIR, false);
  MDBX_txn *txn;
  MDBX_dbi big, order;
  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_READWRITE, &txn));
  CHECK(mdbx_dbi_open(txn, "big", MDBX_CREATE, &big));
  CHECK(mdbx_dbi_open(txn, "order", MDBX_CREATE, &order));
  const uint64_t nbig = 200000, norder = 120000;
  uint8_t kb[8];
  for (uint64_t i = 0; i < nbig; ++i) {
    put_be64(kb, i * 2);
    MDBX_val k = {kb, 8}, v = random_value(32);
    CHECK(mdbx_put(txn, big, &k, &v, MDBX_APPEND));
  }
  /* "order": random inserts, then random deletes */
  for (uint64_t i = 0; i < norder; ++i) {
    put_be64(kb, rnd() % (norder * 8));
    MDBX_val k = {kb, 8}, v = random_value(between(16, 48));
    CHECK(mdbx_put(txn, order, &k, &v, MDBX_UPSERT));
  }
  for (uint64_t i = 0; i < norder / 4; ++i) {
    put_be64(kb, rnd() % (norder * 8));
    MDBX_val k = {kb, 8};
    const int rc = mdbx_del(txn, order, &k, NULL);
    if (rc != MDBX_SUCCESS && rc != MDBX_NOTFOUND)
      fail("mdbx_del: %s", mdbx_strerror(rc));
  }
  CHECK(mdbx_txn_commit(txn));

  /* Efficiency: one small commit on the big table. */
  phase = "diff efficiency";
  MDBX_txn *A, *B;
  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_RDONLY, &A));
  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_READWRITE, &txn));
  const uint64_t upd = 2 * below(nbig), ins = 2 * below(nbig) + 1, del = 2 * below(nbig);
  put_be64(kb, upd);
  MDBX_val k = {kb, 8}, v = random_value(32);
  CHECK(mdbx_put(txn, big, &k, &v, MDBX_UPSERT));
  put_be64(kb, ins);
  v = random_value(32);
  CHECK(mdbx_put(txn, big, &k, &v, MDBX_UPSERT));
  put_be64(kb, del);
  const int drc = mdbx_del(txn, big, &k, NULL);
  if (drc != MDBX_SUCCESS && drc != MDBX_NOTFOUND)
    fail("mdbx_del: %s", mdbx_strerror(drc));
  CHECK(mdbx_txn_commit(txn));
  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_RDONLY, &B));
  MDBX_stat st;
  CHECK(mdbx_dbi_stat(B, big, &st, sizeof(st)));
  repset_t rs = {0};
  uint64_t pages = 0;
  CHECK(mdbx_txn_diff(A, B, big, on_diff, &rs, &pages));
  rep_finish(&rs);
  const uint64_t table_pages = st.ms_branch_pages + st.ms_leaf_pages;
  const uint64_t want[3] = {upd, ins, del};
  for (int i = 0; i < 3; ++i) {
    put_be64(kb, want[i]);
    if (!rep_lookup(&rs, kb, 8))
      fail("the changed key %" PRIu64 " of the big table was not reported", want[i]);
  }
  if (rs.n >= 1000 || pages * 4 >= table_pages)
    fail("one small commit on %" PRIu64 " keys (%" PRIu64 " pages, depth %u): %zu keys reported, %" PRIu64
         " pages read - not proportional to the change",
         nbig, table_pages, st.ms_depth, rs.n, pages);
  const size_t eff_reported = rs.n;
  const uint64_t eff_pages = pages;
  rep_clear(&rs);
  CHECK(mdbx_txn_diff(A, B, order, on_diff, &rs, &pages));
  if (rs.n || pages)
    fail("an unchanged table: %zu keys reported, %" PRIu64 " pages read (want the fast path: none)", rs.n, pages);
  rep_clear(&rs);
  CHECK(mdbx_txn_diff(A, B, MAIN_TABLE, on_diff, &rs, &pages));
  rep_finish(&rs);
  if (!(rep_lookup(&rs, (const uint8_t *)"big", 3) & MDBX_DIFF_TABLE))
    fail("main table diff: the record of the changed table \"big\" was not reported with MDBX_DIFF_TABLE");
  /* argument checks */
  if (mdbx_txn_diff(B, A, big, on_diff, &rs, NULL) != MDBX_EINVAL)
    fail("mdbx_txn_diff(newer, older) did not return MDBX_EINVAL");
  if (mdbx_txn_diff(A, B, big, NULL, NULL, NULL) != MDBX_EINVAL)
    fail("mdbx_txn_diff without a callback did not return MDBX_EINVAL");
  if (mdbx_txn_diff(A, B, 200, on_diff, &rs, NULL) != MDBX_BAD_DBI)
    fail("mdbx_txn_diff with an invalid handle did not return MDBX_BAD_DBI");
  CHECK(mdbx_txn_abort(B));

  /* Copy progress and cancellation, from A. */
  phase = "copy progress";
  path_in_dir(cpath, sizeof(cpath), "bigcopy.mdbx");
  for (int compact = 1; compact >= 0; --compact) {
    const MDBX_copy_flags_t flags = compact ? MDBX_CP_COMPACT : MDBX_CP_DEFAULTS;
    progress_t p = {0};
    p.cancel_at = compact ? 3 : 0;
    p.cancel_at_end = !compact;
    const int rc = mdbx_txn_copy2pathname_ex(A, cpath, flags, on_progress, &p);
    if (rc != MDBX_EINTR)
      fail("%s copy with a callback that returns MDBX_EINTR: got %d (%s)", compact ? "compacting" : "as-is", rc,
           mdbx_strerror(rc));
    if (file_exists(cpath))
      fail("%s copy cancelled by the callback left the destination file", compact ? "compacting" : "as-is");
    if (compact && p.calls != 3)
      fail("the compacting copy went on after the callback returned MDBX_EINTR (%zu calls)", p.calls);
    if (compact && !(p.last_copied < p.last_total))
      fail("cancel at call 3 of a compacting copy came at the end (%" PRIu64 " of %" PRIu64 " pages)",
           p.last_copied, p.last_total);
  }
  {
    progress_t p = {0};
    p.cancel_at = 1;
    if (mdbx_txn_copy2pathname_ex(A, cpath, MDBX_CP_COMPACT, on_progress, &p) != MDBX_EINTR || file_exists(cpath))
      fail("a compacting copy cancelled at the first report");
  }
  progress_t pc = {0};
  CHECK(mdbx_txn_copy2pathname_ex(A, cpath, MDBX_CP_COMPACT, on_progress, &pc));
  remove_db_file(cpath);
  copy_checked(A, cpath, MDBX_CP_DEFAULTS);
  remove_db_file(cpath);
  copy_checked(A, cpath, MDBX_CP_COMPACT);
  if (pc.calls < 8)
    fail("a compacting copy of %" PRIu64 " pages reported progress only %zu times", pc.last_total, pc.calls);
  const size_t progress_calls = pc.calls;
  const uint64_t progress_pages = pc.last_total;

  /* Leaf order: the source is out of order, the compacted copy is not. */
  phase = "leaf order";
  uint64_t leaves = 0, bad = 0;
  CHECK(mdbx_txn_leaf_order(A, order, &leaves, &bad));
  CHECK(mdbx_dbi_stat(A, order, &st, sizeof(st)));
  if (leaves != st.ms_leaf_pages)
    fail("source: mdbx_txn_leaf_order counted %" PRIu64 " leaves, ms_leaf_pages %" PRIu64, leaves,
         (uint64_t)st.ms_leaf_pages);
  if (st.ms_entries < 100000 || bad == 0)
    fail("source table of %" PRIu64 " keys after random inserts and deletes: out_of_order %" PRIu64 " (want > 0)",
         (uint64_t)st.ms_entries, bad);
  const uint64_t source_bad = bad, source_leaves = leaves;
  CHECK(mdbx_txn_abort(A));

  /* Defrag between two snapshots: free the low pages of the big table, let
   * the GC record them, keep a snapshot A2, defrag (moving pages down), and
   * diff A2 with B2. No key changes: every report is a moved leaf's key. */
  phase = "defrag between snapshots";
  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_READWRITE, &txn));
  {
    MDBX_cursor *b, *e;
    CHECK(mdbx_cursor_open(txn, big, &b));
    CHECK(mdbx_cursor_open(txn, big, &e));
    MDBX_val k1, k2, v1;
    CHECK(mdbx_cursor_get(b, &k1, &v1, MDBX_FIRST));
    put_be64(kb, nbig); /* the middle */
    k2 = (MDBX_val){kb, 8};
    CHECK(mdbx_cursor_get(e, &k2, &v1, MDBX_SET_RANGE));
    CHECK(mdbx_cursor_delete_range(b, e, false, NULL));
    mdbx_cursor_close(b);
    mdbx_cursor_close(e);
  }
  CHECK(mdbx_txn_commit(txn));
  for (int i = 0; i < 2; ++i) {
    CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_READWRITE, &txn));
    put_be64(kb, 2 * nbig + i);
    k = (MDBX_val){kb, 8};
    v = random_value(32);
    CHECK(mdbx_put(txn, big, &k, &v, MDBX_UPSERT));
    CHECK(mdbx_txn_commit(txn));
  }
  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_RDONLY, &A));
  const uint64_t moved_before = stat_defrag_moved;
  defrag_checked(env, mdbx_txn_id(A));
  const uint64_t defrag_moved = stat_defrag_moved - moved_before;
  if (!defrag_moved)
    fail("mdbx_env_defrag moved no page (after freeing half of the big table)");
  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_RDONLY, &B));
  uint64_t defrag_reported = 0, defrag_pages = 0;
  const MDBX_dbi dbis[3] = {big, order, MAIN_TABLE};
  for (int i = 0; i < 3; ++i) {
    rep_clear(&rs);
    CHECK(mdbx_txn_diff(A, B, dbis[i], on_diff, &rs, &pages));
    defrag_reported += rs.calls;
    defrag_pages += pages;
  }
  free(rs.b.p);
  free(rs.r);
  CHECK(mdbx_txn_abort(B));
  CHECK(mdbx_txn_abort(A));
  CHECK(mdbx_env_close(env));

  MDBX_env *cenv = open_env(cpath, MDBX_NOSUBDIR | MDBX_RDONLY, false);
  CHECK(mdbx_txn_begin(cenv, NULL, MDBX_TXN_RDONLY, &txn));
  const char *const names[2] = {"order", "big"};
  for (int i = 0; i < 2; ++i) {
    MDBX_dbi dbi;
    CHECK(mdbx_dbi_open(txn, names[i], MDBX_DB_DEFAULTS, &dbi));
    CHECK(mdbx_txn_leaf_order(txn, dbi, &leaves, &bad));
    CHECK(mdbx_dbi_stat(txn, dbi, &st, sizeof(st)));
    if (bad != 0 || leaves != st.ms_leaf_pages)
      fail("compacted copy, table %s: %" PRIu64 " leaves out of order, %" PRIu64 " leaves (ms_leaf_pages %" PRIu64
           ")",
           names[i], bad, leaves, (uint64_t)st.ms_leaf_pages);
  }
  CHECK(mdbx_txn_abort(txn));
  CHECK(mdbx_env_close(cenv));
  remove_db_file(cpath);
  remove_db_file(path);
  fprintf(stderr,
          "rebuild: big table: one commit on %" PRIu64 " keys (%" PRIu64 " pages) -> %zu keys reported, %" PRIu64
          " pages read; compacting copy of %" PRIu64 " pages with %zu progress reports; leaf order %" PRIu64
          " of %" PRIu64 " leaves out of order, 0 after the compacting copy; defrag moved %" PRIu64
          " pages between two snapshots -> %" PRIu64 " keys reported (all moved, none changed), %" PRIu64
          " pages read\n",
          nbig, table_pages, eff_reported, eff_pages, progress_pages, progress_calls, source_bad, source_leaves,
          defrag_moved, defrag_reported, defrag_pages);
}

/*------------------------------------------------------------------ main */

int main(void) {
  harness_seed("rebuild");
  const char *soak = getenv("TURBOMDBX_SOAK");
  const size_t rounds = (soak && *soak && strcmp(soak, "0")) ? 600 : 60;
  const bool lifo = seed & 1;
  fprintf(stderr, "rebuild: seed %" PRIu64 " (TURBOMDBX_SEED to replay), %zu rounds%s\n", seed, rounds,
          lifo ? ", LIFORECLAIM" : "");
  const double t0 = now_sec();

  harness_tempdir();
  mdbx_setup_debug(MDBX_LOG_ERROR, MDBX_DBG_DONTCHANGE, MDBX_LOGGER_DONTCHANGE);

  if (strcmp(mdbx_turbomdbx_patchlevel(), "turbomdbx-4") != 0)
    fail("mdbx_turbomdbx_patchlevel() is \"%s\", want \"turbomdbx-4\"", mdbx_turbomdbx_patchlevel());

  big_tests();

  char path[4400];
  path_in_dir(path, sizeof(path), "work.mdbx");
  MDBX_env *env = open_env(path, MDBX_NOSUBDIR, lifo);
  phase = "initial fill";
  initial_fill(env);
  for (step_no = 1; step_no <= rounds; ++step_no) {
    const unsigned c = (unsigned)below(100);
    size_t gap = c < 45 ? 1 : c < 75 ? between(2, 10) : between(20, 60);
    const bool write_b = chance(25);
    bool defrag = !write_b && chance(20);
    if (!write_b && chance(6)) {
      gap = 0; /* a defrag-only round: no key changes, only moved pages */
      defrag = true;
    }
    diff_round(env, gap, write_b, defrag);
  }
  if (control_done == 0)
    fail("the negative control never ran (no round deleted a key)");
  if (!stat_write_b_rounds || !stat_defrag_rounds)
    fail("the workload did not cover uncommitted B (%" PRIu64 " rounds) or defrag (%" PRIu64 " rounds)",
         stat_write_b_rounds, stat_defrag_rounds);
  if (!tmp_creates || !tmp_drops || !tmp_renames || !bulk_deletes)
    fail("no table was created (%zu), dropped (%zu) or renamed (%zu), or no bulk range delete (%zu)", tmp_creates,
         tmp_drops, tmp_renames, bulk_deletes);
  CHECK(mdbx_env_close(env));
  cleanup_dir();
  fprintf(stderr,
          "rebuild: %zu rounds, %" PRIu64 " diffs: %" PRIu64 " changed keys, %" PRIu64 " reported, %" PRIu64
          " pages read, %" PRIu64 " table-record reports; %" PRIu64 " rounds with B uncommitted, %" PRIu64
          " with defrag (%" PRIu64 " pages moved, %" PRIu64 " headers checked, %" PRIu64
          " keys reported by defrag-only rounds); tables created %zu, dropped %zu, renamed %zu, cleared %zu+%zu; "
          "%zu bulk range deletes; negative controls %zu; %.1f s\n",
          step_no - 1, stat_diffs, stat_changed, stat_reported, stat_pages, stat_main_table_reports, stat_write_b_rounds,
          stat_defrag_rounds, stat_defrag_moved, stat_defrag_pages_checked, stat_defrag_only_reports, tmp_creates,
          tmp_drops, tmp_renames, tmp_clears, fixed_clears, bulk_deletes, control_done, now_sec() - t0);
  printf("rebuild: %zu rounds, %" PRIu64 " diffs checked, seed %" PRIu64 ", OK\n", step_no - 1, stat_diffs, seed);
  return 0;
}
