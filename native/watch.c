/* turbomdbx: the change feed's snapshot difference (src/watch.ts, docs/server.md).
 *
 * tm_watch_diff(older, newer, dbi, prefix) lists the keys of a table whose
 * value differs between two snapshots, with the value each has in `newer`
 * (or "deleted"). It rests on mdbx_txn_diff() (patch 0003): that walk reports
 * every key whose presence or value differs between the snapshots at least
 * once, plus false positives (the other keys of a changed leaf page), and
 * reads only the pages one snapshot has and the other has not. Each reported
 * key is looked up in both snapshots and kept only if the bytes differ, so
 * the false positives go and what remains is exact. A key can still be listed
 * twice (seen on a page of each side); the caller keeps one.
 *
 * The records go into a buffer that grows with malloc (a commit's difference
 * has no fixed bound) and that the caller copies and frees (tm_watch_free):
 *   u32 klen, u32 vlen, u32 olen, key bytes, value bytes, old value bytes
 * little-endian, unaligned; vlen is the value in `newer`, olen the value in
 * `older`, 0xffffffff for "absent" (then no bytes follow). The old value lets
 * a consumer that merges several differences drop a key that changed and
 * came back. Nothing is kept between calls, and nothing here
 * writes to either transaction.
 */
#include "mdbx.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TM_API __dll_export
#define TM_DELETED 0xffffffffu

static inline int w_rc(int rc) { return rc > 0 ? -rc : rc; }

typedef struct {
  const MDBX_txn *older, *newer;
  MDBX_dbi dbi;
  const uint8_t *prefix;
  size_t plen;
  uint8_t *buf;
  size_t len, cap;
  double count;
} wdiff_t;

static int w_reserve(wdiff_t *w, size_t more) {
  if (w->len + more <= w->cap)
    return MDBX_SUCCESS;
  size_t cap = w->cap ? w->cap : 4096;
  while (cap < w->len + more)
    cap *= 2;
  uint8_t *p = realloc(w->buf, cap);
  if (!p)
    return MDBX_ENOMEM;
  w->buf = p, w->cap = cap;
  return MDBX_SUCCESS;
}

static void w_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

/* Appends one record: `val` is the value in `newer`, `old` in `older` (NULL: absent). */
static int w_append(wdiff_t *w, const MDBX_val *key, const MDBX_val *val, const MDBX_val *old) {
  const size_t vlen = val ? val->iov_len : 0, olen = old ? old->iov_len : 0;
  int rc = w_reserve(w, 12 + key->iov_len + vlen + olen);
  if (rc != MDBX_SUCCESS)
    return rc;
  uint8_t *p = w->buf + w->len;
  w_u32(p, (uint32_t)key->iov_len);
  w_u32(p + 4, val ? (uint32_t)vlen : TM_DELETED);
  w_u32(p + 8, old ? (uint32_t)olen : TM_DELETED);
  p += 12;
  memcpy(p, key->iov_base, key->iov_len);
  p += key->iov_len;
  if (vlen)
    memcpy(p, val->iov_base, vlen);
  if (olen)
    memcpy(p + vlen, old->iov_base, olen);
  w->len += 12 + key->iov_len + vlen + olen;
  w->count += 1;
  return MDBX_SUCCESS;
}

/* Hands the records to the caller (out[0..2]); frees them on failure or when empty. */
static void *w_finish(wdiff_t *w, int rc, double *out) {
  if (rc != MDBX_SUCCESS) {
    free(w->buf);
    out[0] = out[1] = 0;
    out[2] = w_rc(rc);
    return NULL;
  }
  out[0] = (double)w->len;
  out[1] = w->count;
  out[2] = 0;
  if (w->len == 0) {
    free(w->buf);
    return NULL;
  }
  return w->buf;
}

static int w_on_key(void *ctx, const MDBX_val *key, MDBX_diff_flags_t flags) {
  wdiff_t *w = ctx;
  if (flags & MDBX_DIFF_TABLE)
    return MDBX_SUCCESS; /* a named-table record of the main table: not a key of it */
  if (w->plen && (key->iov_len < w->plen || memcmp(key->iov_base, w->prefix, w->plen) != 0))
    return MDBX_SUCCESS;
  MDBX_val k = *key, a, b;
  int ra = mdbx_get((MDBX_txn *)w->older, w->dbi, &k, &a);
  k = *key;
  int rb = mdbx_get((MDBX_txn *)w->newer, w->dbi, &k, &b);
  if (ra == MDBX_INCOMPATIBLE || rb == MDBX_INCOMPATIBLE)
    return MDBX_SUCCESS; /* a table record on one side (main table) */
  if (ra != MDBX_SUCCESS && ra != MDBX_NOTFOUND)
    return ra;
  if (rb != MDBX_SUCCESS && rb != MDBX_NOTFOUND)
    return rb;
  if (ra == MDBX_NOTFOUND && rb == MDBX_NOTFOUND)
    return MDBX_SUCCESS;
  if (ra == MDBX_SUCCESS && rb == MDBX_SUCCESS && a.iov_len == b.iov_len &&
      (a.iov_len == 0 || memcmp(a.iov_base, b.iov_base, a.iov_len) == 0))
    return MDBX_SUCCESS; /* a false positive: same value in both */
  return w_append(w, key, rb == MDBX_SUCCESS ? &b : NULL, ra == MDBX_SUCCESS ? &a : NULL);
}

/* Lists what differs in table `dbi` between `older` and `newer` (read
 * transactions, older->txnid <= newer->txnid), restricted to keys that start
 * with `prefix` (plen 0: all). Returns the record buffer (NULL when empty or
 * on failure); out[0] = its length in bytes, out[1] = records, out[2] = 0 or
 * a negative error code, out[3] = pages mdbx_txn_diff() read. */
TM_API void *tm_watch_diff(MDBX_txn *older, MDBX_txn *newer, uint32_t dbi, const uint8_t *prefix, uint32_t plen,
                           double *out) {
  wdiff_t w = {older, newer, (MDBX_dbi)dbi, prefix, plen, NULL, 0, 0, 0};
  uint64_t pages = 0;
  int rc = mdbx_txn_diff(older, newer, (MDBX_dbi)dbi, w_on_key, &w, &pages);
  out[3] = (double)pages;
  return w_finish(&w, rc, out);
}

/* Frees a buffer tm_watch_diff() returned. */
TM_API void tm_watch_free(void *buf) { free(buf); }

/* The same records for two snapshots of different files (a live rebuild
 * switched files between them, so mdbx_txn_diff() cannot pair their pages):
 * both tables are walked in key order, side by side, and every key whose
 * presence or value differs is listed. The work is the size of the table (or
 * of the prefix's range), once per switch. `odbi` is the table's handle in
 * `older`'s file, `ndbi` in `newer`'s; both tables have the same key order. */
TM_API void *tm_watch_fulldiff(MDBX_txn *older, uint32_t odbi, MDBX_txn *newer, uint32_t ndbi, const uint8_t *prefix,
                               uint32_t plen, double *out) {
  wdiff_t w = {older, newer, (MDBX_dbi)ndbi, prefix, plen, NULL, 0, 0, 0};
  MDBX_cursor *co = NULL, *cn = NULL;
  int rc = mdbx_cursor_open(older, (MDBX_dbi)odbi, &co);
  if (rc == MDBX_SUCCESS)
    rc = mdbx_cursor_open(newer, (MDBX_dbi)ndbi, &cn);
  MDBX_val ko = {(void *)prefix, plen}, vo, kn = {(void *)prefix, plen}, vn;
  int ro = MDBX_NOTFOUND, rn = MDBX_NOTFOUND;
  if (rc == MDBX_SUCCESS) {
    ro = mdbx_cursor_get(co, &ko, &vo, plen ? MDBX_SET_RANGE : MDBX_FIRST);
    rn = mdbx_cursor_get(cn, &kn, &vn, plen ? MDBX_SET_RANGE : MDBX_FIRST);
  }
  out[3] = 0;
  while (rc == MDBX_SUCCESS) {
    if (ro != MDBX_SUCCESS && ro != MDBX_NOTFOUND) {
      rc = ro;
      break;
    }
    if (rn != MDBX_SUCCESS && rn != MDBX_NOTFOUND) {
      rc = rn;
      break;
    }
    const bool in_o = ro == MDBX_SUCCESS && (!plen || (ko.iov_len >= plen && memcmp(ko.iov_base, prefix, plen) == 0));
    const bool in_n = rn == MDBX_SUCCESS && (!plen || (kn.iov_len >= plen && memcmp(kn.iov_base, prefix, plen) == 0));
    if (!in_o && !in_n)
      break;
    int c = !in_o ? 1 : !in_n ? -1 : mdbx_cmp(newer, (MDBX_dbi)ndbi, &ko, &kn);
    const MDBX_val *key = c <= 0 ? &ko : &kn;
    const bool differs = c != 0 || vo.iov_len != vn.iov_len ||
                         (vo.iov_len && memcmp(vo.iov_base, vn.iov_base, vo.iov_len) != 0);
    if (differs) {
      rc = w_append(&w, key, c >= 0 ? &vn : NULL, c <= 0 ? &vo : NULL);
      if (rc != MDBX_SUCCESS)
        break;
    }
    if (c <= 0)
      ro = mdbx_cursor_get(co, &ko, &vo, MDBX_NEXT);
    if (c >= 0)
      rn = mdbx_cursor_get(cn, &kn, &vn, MDBX_NEXT);
  }
  if (co)
    mdbx_cursor_close(co);
  if (cn)
    mdbx_cursor_close(cn);
  return w_finish(&w, rc, out);
}
