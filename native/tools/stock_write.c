/* mdbx_stock_write: writes (or verifies) a database with the STOCK libmdbx.
 *
 * Built from the unpatched amalgamation, like mdbx_chk, so that
 * test/compat.test.ts can check both directions of format compatibility:
 *
 *   mdbx_stock_write <dir>            create <dir> (libmdbx makes the folder) with the reference content
 *   mdbx_stock_write --verify <dir>   check that <dir> holds exactly that content
 *
 * The reference content (mirrored in test/compat.test.ts):
 *   "strings"  plain          "key-%05d" -> "value-%05d", 0..9999
 *   "dups"     DUPSORT        "group-%03d" -> "member-%05d" x dupCount(g), g 0..199
 *   "ints"     INTEGERKEY     u64 i*1000003 -> u64 i*i, i 0..4999
 *   "u32dups"  INTEGERKEY|DUPSORT|DUPFIXED|INTEGERDUP  u32 k -> u32 k*1000+j, j < k%13+1, k 0..99
 *   "blobs"    plain          "blob-%02d" -> 3000+1000*b bytes of (i*31+b)&255, b 0..19
 * Writing also adds and then deletes churn (temporary keys and values) in
 * separate transactions, so the file has free pages and a non-trivial GC.
 * Exit status 0 on success; any failure prints what and where, and exits 1. */
#include "mdbx.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(expr)                                                                                                    \
  do {                                                                                                                 \
    int rc_ = (expr);                                                                                                  \
    if (rc_ != MDBX_SUCCESS) {                                                                                         \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, mdbx_strerror(rc_));                              \
      exit(1);                                                                                                         \
    }                                                                                                                  \
  } while (0)

#define EXPECT(cond, ...)                                                                                              \
  do {                                                                                                                 \
    if (!(cond)) {                                                                                                     \
      fprintf(stderr, "verify: " __VA_ARGS__);                                                                         \
      fputc('\n', stderr);                                                                                             \
      exit(1);                                                                                                         \
    }                                                                                                                  \
  } while (0)

enum { N_STRINGS = 10000, N_GROUPS = 200, N_INTS = 5000, N_U32 = 100, N_BLOBS = 20 };
static const MDBX_db_flags_t U32DUPS = MDBX_INTEGERKEY | MDBX_DUPSORT | MDBX_DUPFIXED | MDBX_INTEGERDUP;

static unsigned dup_count(unsigned g) { return g % 10 == 9 ? 600 : g % 7 + 1; }
static size_t blob_len(unsigned b) { return 3000 + 1000 * (size_t)b; }
static void blob_fill(unsigned char *p, unsigned b) {
  for (size_t i = 0; i < blob_len(b); i++) p[i] = (unsigned char)((i * 31 + b) & 255);
}

static MDBX_val sval(const char *s) { return (MDBX_val){.iov_base = (void *)s, .iov_len = strlen(s)}; }

static MDBX_dbi open_table(MDBX_txn *txn, const char *name, MDBX_db_flags_t flags) {
  MDBX_dbi dbi;
  CHECK(mdbx_dbi_open(txn, name, flags, &dbi));
  return dbi;
}

static void write_db(MDBX_env *env) {
  MDBX_txn *txn;
  char kb[32], vb[32];
  static unsigned char blob[32000];

  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_READWRITE, &txn));
  MDBX_dbi strings = open_table(txn, "strings", MDBX_CREATE);
  MDBX_dbi dups = open_table(txn, "dups", MDBX_CREATE | MDBX_DUPSORT);
  MDBX_dbi ints = open_table(txn, "ints", MDBX_CREATE | MDBX_INTEGERKEY);
  MDBX_dbi u32dups = open_table(txn, "u32dups", MDBX_CREATE | U32DUPS);
  MDBX_dbi blobs = open_table(txn, "blobs", MDBX_CREATE);
  for (unsigned i = 0; i < N_STRINGS; i++) {
    snprintf(kb, sizeof kb, "key-%05u", i);
    snprintf(vb, sizeof vb, "value-%05u", i);
    MDBX_val k = sval(kb), v = sval(vb);
    CHECK(mdbx_put(txn, strings, &k, &v, MDBX_UPSERT));
  }
  for (unsigned i = 0; i < N_STRINGS / 2; i++) { /* churn, deleted below */
    snprintf(kb, sizeof kb, "tmp-%05u", i);
    MDBX_val k = sval(kb), v = sval("temporary value that will be deleted");
    CHECK(mdbx_put(txn, strings, &k, &v, MDBX_UPSERT));
  }
  for (unsigned g = 0; g < N_GROUPS; g++) {
    snprintf(kb, sizeof kb, "group-%03u", g);
    MDBX_val k = sval(kb);
    for (unsigned j = 0; j < dup_count(g); j++) {
      snprintf(vb, sizeof vb, "member-%05u", j);
      MDBX_val v = sval(vb);
      CHECK(mdbx_put(txn, dups, &k, &v, MDBX_UPSERT));
    }
    MDBX_val v = sval("zzz-churn");
    CHECK(mdbx_put(txn, dups, &k, &v, MDBX_UPSERT));
  }
  for (uint64_t i = 0; i < N_INTS; i++) {
    uint64_t key = i * 1000003u, val = i * i;
    MDBX_val k = {&key, 8}, v = {&val, 8};
    CHECK(mdbx_put(txn, ints, &k, &v, MDBX_UPSERT));
  }
  for (uint32_t key = 0; key < N_U32; key++) {
    for (uint32_t j = 0; j <= key % 13; j++) {
      uint32_t val = key * 1000 + j;
      MDBX_val k = {&key, 4}, v = {&val, 4};
      CHECK(mdbx_put(txn, u32dups, &k, &v, MDBX_UPSERT));
    }
  }
  for (unsigned b = 0; b < N_BLOBS; b++) {
    snprintf(kb, sizeof kb, "blob-%02u", b);
    blob_fill(blob, b);
    MDBX_val k = sval(kb), v = {blob, blob_len(b)};
    CHECK(mdbx_put(txn, blobs, &k, &v, MDBX_UPSERT));
  }
  CHECK(mdbx_txn_commit(txn));

  /* Second transaction: delete the churn. */
  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_READWRITE, &txn));
  for (unsigned i = 0; i < N_STRINGS / 2; i++) {
    snprintf(kb, sizeof kb, "tmp-%05u", i);
    MDBX_val k = sval(kb);
    CHECK(mdbx_del(txn, strings, &k, NULL));
  }
  for (unsigned g = 0; g < N_GROUPS; g++) {
    snprintf(kb, sizeof kb, "group-%03u", g);
    MDBX_val k = sval(kb), v = sval("zzz-churn");
    CHECK(mdbx_del(txn, dups, &k, &v));
  }
  CHECK(mdbx_txn_commit(txn));
}

/* Walks a whole table with a cursor; `next` yields the expected pairs in order. */
typedef int (*expect_fn)(unsigned n, MDBX_val *k, MDBX_val *v, unsigned char *buf);

static void walk(MDBX_txn *txn, const char *name, MDBX_db_flags_t flags, expect_fn next) {
  MDBX_dbi dbi;
  int rc = mdbx_dbi_open(txn, name, flags, &dbi);
  EXPECT(rc == MDBX_SUCCESS, "table %s: %s", name, mdbx_strerror(rc));
  MDBX_cursor *cur;
  CHECK(mdbx_cursor_open(txn, dbi, &cur));
  static unsigned char buf[32000];
  unsigned n = 0;
  MDBX_val k, v, ek, ev;
  for (rc = mdbx_cursor_get(cur, &k, &v, MDBX_FIRST); rc == MDBX_SUCCESS;
       rc = mdbx_cursor_get(cur, &k, &v, MDBX_NEXT), n++) {
    EXPECT(next(n, &ek, &ev, buf), "table %s: more entries than expected (%u)", name, n);
    EXPECT(k.iov_len == ek.iov_len && memcmp(k.iov_base, ek.iov_base, k.iov_len) == 0, "table %s: key #%u differs",
           name, n);
    EXPECT(v.iov_len == ev.iov_len && memcmp(v.iov_base, ev.iov_base, v.iov_len) == 0, "table %s: value #%u differs",
           name, n);
  }
  EXPECT(rc == MDBX_NOTFOUND, "table %s: %s", name, mdbx_strerror(rc));
  EXPECT(!next(n, &ek, &ev, buf), "table %s: only %u entries", name, n);
  mdbx_cursor_close(cur);
}

static char ks[32], vs[32];
static uint64_t k64, v64;
static uint32_t k32, v32;

static int next_string(unsigned n, MDBX_val *k, MDBX_val *v, unsigned char *buf) {
  (void)buf;
  if (n >= N_STRINGS) return 0;
  snprintf(ks, sizeof ks, "key-%05u", n);
  snprintf(vs, sizeof vs, "value-%05u", n);
  *k = sval(ks), *v = sval(vs);
  return 1;
}

static int next_dup(unsigned n, MDBX_val *k, MDBX_val *v, unsigned char *buf) {
  (void)buf;
  for (unsigned g = 0; g < N_GROUPS; n -= dup_count(g), g++) {
    if (n < dup_count(g)) {
      snprintf(ks, sizeof ks, "group-%03u", g);
      snprintf(vs, sizeof vs, "member-%05u", n);
      *k = sval(ks), *v = sval(vs);
      return 1;
    }
  }
  return 0;
}

static int next_int(unsigned n, MDBX_val *k, MDBX_val *v, unsigned char *buf) {
  (void)buf;
  if (n >= N_INTS) return 0;
  k64 = (uint64_t)n * 1000003u, v64 = (uint64_t)n * n;
  *k = (MDBX_val){&k64, 8}, *v = (MDBX_val){&v64, 8};
  return 1;
}

static int next_u32(unsigned n, MDBX_val *k, MDBX_val *v, unsigned char *buf) {
  (void)buf;
  for (uint32_t key = 0; key < N_U32; n -= key % 13 + 1, key++) {
    if (n <= key % 13) {
      k32 = key, v32 = key * 1000 + n;
      *k = (MDBX_val){&k32, 4}, *v = (MDBX_val){&v32, 4};
      return 1;
    }
  }
  return 0;
}

static int next_blob(unsigned n, MDBX_val *k, MDBX_val *v, unsigned char *buf) {
  if (n >= N_BLOBS) return 0;
  snprintf(ks, sizeof ks, "blob-%02u", n);
  blob_fill(buf, n);
  *k = sval(ks), *v = (MDBX_val){buf, blob_len(n)};
  return 1;
}

static void verify_db(MDBX_env *env) {
  MDBX_txn *txn;
  CHECK(mdbx_txn_begin(env, NULL, MDBX_TXN_RDONLY, &txn));
  walk(txn, "strings", 0, next_string);
  walk(txn, "dups", MDBX_DUPSORT, next_dup);
  walk(txn, "ints", MDBX_INTEGERKEY, next_int);
  walk(txn, "u32dups", U32DUPS, next_u32);
  walk(txn, "blobs", 0, next_blob);
  mdbx_txn_abort(txn);
}

int main(int argc, char **argv) {
  const int verify = argc == 3 && strcmp(argv[1], "--verify") == 0;
  if (argc != 2 + verify || argv[argc - 1][0] == '-') {
    fprintf(stderr, "usage: %s [--verify] <db-dir>\n", argv[0]);
    return 2;
  }
  const char *path = argv[argc - 1];
  /* Notices (readahead, geometry) would bury real problems in the test's output. */
  mdbx_setup_debug(MDBX_LOG_WARN, MDBX_DBG_DONTCHANGE, MDBX_LOGGER_DONTCHANGE);
  MDBX_env *env;
  CHECK(mdbx_env_create(&env));
  CHECK(mdbx_env_set_maxdbs(env, 16));
  CHECK(mdbx_env_open(env, path, verify ? MDBX_RDONLY : MDBX_ENV_DEFAULTS, 0644));
  if (verify)
    verify_db(env);
  else
    write_db(env);
  CHECK(mdbx_env_close(env));
  printf("%s %s: ok (libmdbx %u.%u.%u)\n", verify ? "verified" : "wrote", path, mdbx_version.major,
         mdbx_version.minor, mdbx_version.patch);
  return 0;
}
