/* turbomdbx: deleting a key range in one call.
 *
 * libmdbx 0.14 has mdbx_cursor_delete_range(begin, end, end_including): it
 * cuts whole pages and branches out of the B+tree between two cursor
 * positions (tree_cutoff_range) instead of deleting entry by entry, and
 * reports how many entries went. tm_del_range positions the two cursors from
 * the bounds of a key interval and calls it: one FFI call per range, however
 * many entries it holds.
 */
#include "mdbx.h"

#include <stdbool.h>
#include <stdint.h>

#define TM_API __dll_export

static inline int tm_rc(int rc) { return rc > 0 ? -rc : rc; }

/* flags of tm_del_range */
#define TM_RANGE_HAS_LO 1u
#define TM_RANGE_LO_EXCLUSIVE 2u
#define TM_RANGE_HAS_HI 4u
#define TM_RANGE_HI_INCLUSIVE 8u

/* Deletes the entries whose keys lie in the interval (every value of a dupsort key) and writes how many it deleted
 * to out[0]. An interval with no entry deletes nothing. */
TM_API int tm_del_range(MDBX_txn *txn, uint32_t dbi, const void *lo, uint32_t lolen, const void *hi, uint32_t hilen,
                        uint32_t flags, double *out) {
  out[0] = 0;
  MDBX_cursor *b = NULL, *e = NULL;
  int rc = mdbx_cursor_open(txn, dbi, &b);
  if (rc != MDBX_SUCCESS)
    return tm_rc(rc);
  MDBX_val bk, bv, ek, ev;
  /* the first entry of the range */
  if (flags & TM_RANGE_HAS_LO) {
    MDBX_val l = {(void *)lo, lolen};
    bk = l;
    rc = mdbx_cursor_get(b, &bk, &bv, MDBX_SET_RANGE);
    if (rc == MDBX_SUCCESS && (flags & TM_RANGE_LO_EXCLUSIVE) && mdbx_cmp(txn, dbi, &bk, &l) == 0)
      rc = mdbx_cursor_get(b, &bk, &bv, MDBX_NEXT_NODUP);
  } else {
    rc = mdbx_cursor_get(b, &bk, &bv, MDBX_FIRST);
  }
  if (rc == MDBX_NOTFOUND) {
    rc = MDBX_SUCCESS; /* nothing at or after the start */
    goto done;
  }
  if (rc != MDBX_SUCCESS)
    goto done;

  /* the end: the first entry at or after `hi` (excluded), its last value (included), or the table's end */
  bool including = true;
  if (flags & TM_RANGE_HAS_HI) {
    MDBX_val h = {(void *)hi, hilen};
    rc = mdbx_cursor_open(txn, dbi, &e);
    if (rc != MDBX_SUCCESS)
      goto done;
    ek = h;
    rc = mdbx_cursor_get(e, &ek, &ev, MDBX_SET_RANGE);
    if (rc == MDBX_NOTFOUND) {
      mdbx_cursor_close(e);
      e = NULL; /* no key at or after hi: the range runs to the end of the table */
      rc = MDBX_SUCCESS;
    } else if (rc != MDBX_SUCCESS) {
      goto done;
    } else {
      int c = mdbx_cmp(txn, dbi, &ek, &h);
      if (c == 0 && (flags & TM_RANGE_HI_INCLUSIVE)) {
        rc = mdbx_cursor_get(e, &ek, &ev, MDBX_LAST_DUP);
        if (rc == MDBX_INCOMPATIBLE || rc == MDBX_NOTFOUND)
          rc = MDBX_SUCCESS; /* a plain table: it already is on the key's only value */
        if (rc != MDBX_SUCCESS)
          goto done;
      } else {
        including = false;
      }
      /* nothing between them: the start is at or past the end */
      int order = mdbx_cmp(txn, dbi, &bk, &ek);
      if (order > 0 || (order == 0 && !including))
        goto done;
    }
  }
  uint64_t n = 0;
  rc = mdbx_cursor_delete_range(b, e, including, &n);
  if (rc == MDBX_SUCCESS)
    out[0] = (double)n;
done:
  if (e)
    mdbx_cursor_close(e);
  mdbx_cursor_close(b);
  return tm_rc(rc);
}
