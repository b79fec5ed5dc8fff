/* turbomdbx native benchmark harness.
 *
 * The "native" baseline of bench/: the same operations as the TypeScript API,
 * as plain C loops over the same env, transaction and keys, called once per
 * batch through FFI from the benchmark process (bench/lib/native.ts). Each loop
 * touches every value it reads (its first and last bytes) so that nothing can
 * be optimised away, as the TypeScript side does.
 *
 * Results are doubles: Deno returns 64-bit integers as bigint, and a double
 * holds every sum and count here exactly. Errors come back negative, as the
 * turbomdbx wrappers return them (libmdbx codes as they are, errno negated).
 */
#include "mdbx.h"

#include <stdint.h>
#include <string.h>

#define TMB_API __dll_export

static inline double tmb_err(int rc) { return (double)(rc > 0 ? -rc : rc); }

/* Does nothing, with tm_get's signature: the price of one FFI call. */
TMB_API int tmb_nop(const MDBX_txn *txn, uint32_t dbi, const void *key, uint32_t klen, void *out, uint32_t cap) {
  (void)txn, (void)dbi, (void)key, (void)out, (void)cap;
  return (int)klen;
}

/* n random gets of keys[i*ksize .. +ksize], i < n, without copying the values.
 * Returns the sum of each value's first and last bytes, or a negative error. */
TMB_API double tmb_get(const MDBX_txn *txn, uint32_t dbi, const uint8_t *keys, uint32_t ksize, uint32_t n) {
  uint64_t sum = 0;
  for (uint32_t i = 0; i < n; ++i) {
    MDBX_val k = {(void *)(keys + (size_t)i * ksize), ksize}, d;
    int rc = mdbx_get(txn, dbi, &k, &d);
    if (rc != MDBX_SUCCESS)
      return tmb_err(rc);
    const uint8_t *v = d.iov_base;
    sum += d.iov_len ? v[0] + v[d.iov_len - 1] : 0;
  }
  return (double)sum;
}

/* tmb_get that also copies each value into `dst`, as a get returning a copy does. */
TMB_API double tmb_get_copy(const MDBX_txn *txn, uint32_t dbi, const uint8_t *keys, uint32_t ksize, uint32_t n,
                            uint8_t *dst, uint32_t cap) {
  uint64_t sum = 0;
  for (uint32_t i = 0; i < n; ++i) {
    MDBX_val k = {(void *)(keys + (size_t)i * ksize), ksize}, d;
    int rc = mdbx_get(txn, dbi, &k, &d);
    if (rc != MDBX_SUCCESS)
      return tmb_err(rc);
    size_t len = d.iov_len < cap ? d.iov_len : cap;
    memcpy(dst, d.iov_base, len);
    sum += len ? dst[0] + dst[len - 1] : 0;
  }
  return (double)sum;
}

/* A full forward cursor scan. Returns the number of entries (or a negative
 * error) and stores the sum of every key's and value's first byte in *sum. */
TMB_API double tmb_scan(const MDBX_txn *txn, uint32_t dbi, double *sum) {
  MDBX_cursor *c = NULL;
  int rc = mdbx_cursor_open((MDBX_txn *)txn, dbi, &c);
  if (rc != MDBX_SUCCESS)
    return tmb_err(rc);
  uint64_t n = 0, s = 0;
  MDBX_val k, d;
  for (rc = mdbx_cursor_get(c, &k, &d, MDBX_FIRST); rc == MDBX_SUCCESS; rc = mdbx_cursor_get(c, &k, &d, MDBX_NEXT)) {
    s += ((const uint8_t *)k.iov_base)[0] + (d.iov_len ? ((const uint8_t *)d.iov_base)[0] : 0);
    ++n;
  }
  mdbx_cursor_close(c);
  *sum = (double)s;
  return rc == MDBX_NOTFOUND ? (double)n : tmb_err(rc);
}

/* n puts of keys[i], i < n, each with the same value of vlen bytes. Returns 0 or a negative error. */
TMB_API int tmb_put(MDBX_txn *txn, uint32_t dbi, const uint8_t *keys, uint32_t ksize, uint32_t n, const uint8_t *val,
                    uint32_t vlen, uint32_t flags) {
  for (uint32_t i = 0; i < n; ++i) {
    MDBX_val k = {(void *)(keys + (size_t)i * ksize), ksize}, d = {(void *)val, vlen};
    int rc = mdbx_put(txn, dbi, &k, &d, (MDBX_put_flags_t)flags);
    if (rc != MDBX_SUCCESS)
      return rc > 0 ? -rc : rc;
  }
  return 0;
}

/* n write transactions of one put each (begin, put keys[i], commit), with the
 * environment's durability. Before put i the value's first 4 bytes are set to
 * stamp + i: libmdbx skips a put of the value a key already has, and a commit
 * with nothing to write neither writes nor syncs, so repeated values would
 * measure empty commits. Returns 0 or a negative error. */
TMB_API int tmb_put_txns(MDBX_env *env, uint32_t dbi, const uint8_t *keys, uint32_t ksize, uint32_t n, uint8_t *val,
                         uint32_t vlen, uint32_t stamp) {
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t s = stamp + i;
    memcpy(val, &s, vlen < sizeof(s) ? vlen : sizeof(s));
    MDBX_txn *txn = NULL;
    int rc = mdbx_txn_begin(env, NULL, MDBX_TXN_READWRITE, &txn);
    if (rc == MDBX_SUCCESS) {
      MDBX_val k = {(void *)(keys + (size_t)i * ksize), ksize}, d = {(void *)val, vlen};
      rc = mdbx_put(txn, dbi, &k, &d, MDBX_UPSERT);
      rc = rc == MDBX_SUCCESS ? mdbx_txn_commit(txn) : (mdbx_txn_abort(txn), rc);
    }
    if (rc != MDBX_SUCCESS)
      return rc > 0 ? -rc : rc;
  }
  return 0;
}

/* The size of libmdbx's own cache entry (MDBX_cache_entry_t), for the caller to allocate an array of them. */
TMB_API uint32_t tmb_cache_entry_size(void) { return (uint32_t)sizeof(MDBX_cache_entry_t); }

/* Initialises n cache entries with mdbx_cache_init; returns n. */
TMB_API uint32_t tmb_cache_init(MDBX_cache_entry_t *entries, uint32_t n) {
  for (uint32_t i = 0; i < n; ++i)
    mdbx_cache_init(&entries[i]);
  return n;
}

/* n gets through libmdbx 0.14's own cache (mdbx_cache_get), with one entry per
 * record: key i of the batch is keys[i*ksize .. +ksize] and its entry is
 * entries[index[i]]. The values are not copied (as tmb_get). Returns the sum of
 * each value's first and last bytes, or a negative error; hits[0] gets the number
 * of lookups answered from the entry (MDBX_CACHE_HIT or MDBX_CACHE_CONFIRMED).
 * With cap > 0 each value is also copied into dst (as a read that returns a
 * copy does). */
TMB_API double tmb_cache_get(const MDBX_txn *txn, uint32_t dbi, const uint8_t *keys, uint32_t ksize,
                             const uint32_t *index, uint32_t n, MDBX_cache_entry_t *entries, double *hits,
                             uint8_t *dst, uint32_t cap) {
  uint64_t sum = 0, hit = 0;
  for (uint32_t i = 0; i < n; ++i) {
    MDBX_val k = {(void *)(keys + (size_t)i * ksize), ksize}, d;
    MDBX_cache_result_t r = mdbx_cache_get(txn, dbi, &k, &d, &entries[index[i]]);
    if (r.errcode != MDBX_SUCCESS)
      return tmb_err(r.errcode);
    hit += r.status == MDBX_CACHE_HIT || r.status == MDBX_CACHE_CONFIRMED;
    const uint8_t *v = d.iov_base;
    size_t len = d.iov_len;
    if (cap) {
      len = len < cap ? len : cap;
      memcpy(dst, v, len);
      v = dst;
    }
    sum += len ? v[0] + v[len - 1] : 0;
  }
  *hits += (double)hit;
  return (double)sum;
}

/* ---------------------------------------------------------- the native cache --- */

/* native/cache.c, exported by libturbomdbx */
int tm_cache_get(void *t, const MDBX_txn *txn, uint32_t dbi, double snap, const uint8_t *key, uint32_t klen,
                 uint8_t *out, uint32_t cap);
int tm_get_many(void *t, const MDBX_txn *txn, uint32_t dbi, double snap, const uint8_t *keys, const uint32_t *koff,
                uint32_t ksize, uint32_t first, uint32_t n, uint8_t *out, uint32_t at, uint32_t cap, int32_t *pos);

/* n gets through turbomdbx's cache (t: the table's tm_ctable, NULL: uncached),
 * one tm_cache_get per key from a C loop: the single-call path without the FFI.
 * Each value is copied into dst. Returns the sum of each value's first and last
 * bytes, or a negative error. */
TMB_API double tmb_tc_get(void *t, const MDBX_txn *txn, uint32_t dbi, double snap, const uint8_t *keys,
                          uint32_t ksize, uint32_t n, uint8_t *dst, uint32_t cap) {
  uint64_t sum = 0;
  for (uint32_t i = 0; i < n; ++i) {
    int len = tm_cache_get(t, txn, dbi, snap, keys + (size_t)i * ksize, ksize, dst, cap);
    if (len < 0)
      return len;
    sum += len ? dst[0] + dst[len - 1] : 0;
  }
  return (double)sum;
}

/* n gets through tm_get_many, `batch` keys per call, from a C loop: the batched
 * path without the FFI. Values are copied into dst (pos: 2 * batch int32). */
TMB_API double tmb_tc_get_many(void *t, const MDBX_txn *txn, uint32_t dbi, double snap, const uint8_t *keys,
                               uint32_t ksize, uint32_t n, uint32_t batch, uint8_t *dst, uint32_t cap, int32_t *pos) {
  uint64_t sum = 0;
  for (uint32_t i = 0; i < n; i += batch) {
    const uint32_t m = n - i < batch ? n - i : batch;
    int r = tm_get_many(t, txn, dbi, snap, keys + (size_t)i * ksize, NULL, ksize, 0, m, dst, 0, cap, pos);
    if (r < 0)
      return r;
    for (int j = 0; j < r; j++)
      if (pos[2 * j + 1] > 0)
        sum += dst[pos[2 * j]] + dst[pos[2 * j] + pos[2 * j + 1] - 1];
  }
  return (double)sum;
}

/* The floor of a cached get: for each key, read a 16-byte slot of `slots`
 * (nslots of them, chosen by a hash of the key's first 8 bytes; its first 8
 * bytes are an offset into data), then copy vlen bytes from data at that
 * offset: two dependent random reads and a copy, with nothing validated. With
 * group > 1 the reads are done in groups: every slot of the group prefetched,
 * then every value, then the copies (the best a batched lookup can do). Returns
 * the sum of each copy's first and last bytes. */
TMB_API double tmb_floor(const uint8_t *slots, double nslots_d, const uint8_t *data, const uint8_t *keys,
                         uint32_t ksize, uint32_t n, uint32_t vlen, uint32_t group, uint8_t *dst) {
  const uint64_t nslots = (uint64_t)nslots_d;
  uint64_t sum = 0;
  if (group > 64)
    group = 64;
  if (group <= 1) {
    for (uint32_t i = 0; i < n; ++i) {
      uint64_t k, off;
      memcpy(&k, keys + (size_t)i * ksize, 8);
      const uint64_t h = (k * 0x9e3779b97f4a7c15ull) >> 32;
      memcpy(&off, slots + ((h * nslots) >> 32) * 16, 8);
      memcpy(dst, data + off, vlen);
      sum += dst[0] + dst[vlen - 1];
    }
    return (double)sum;
  }
  const uint8_t *slot[64], *val[64];
  for (uint32_t i = 0; i < n; i += group) {
    const uint32_t m = n - i < group ? n - i : group;
    for (uint32_t j = 0; j < m; j++) {
      uint64_t k;
      memcpy(&k, keys + (size_t)(i + j) * ksize, 8);
      const uint64_t h = (k * 0x9e3779b97f4a7c15ull) >> 32;
      slot[j] = slots + ((h * nslots) >> 32) * 16;
      __builtin_prefetch(slot[j]);
    }
    for (uint32_t j = 0; j < m; j++) {
      uint64_t off;
      memcpy(&off, slot[j], 8);
      val[j] = data + off;
      __builtin_prefetch(val[j]);
    }
    for (uint32_t j = 0; j < m; j++) {
      memcpy(dst, val[j], vlen);
      sum += dst[0] + dst[vlen - 1];
    }
  }
  return (double)sum;
}
