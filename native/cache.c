/* turbomdbx: the get() cache, in native code (docs/cache.md).
 *
 * An entry remembers where a key's value lives, not the value: the leaf page
 * (pgno), the node's offset in it and the page's version (the txnid in its
 * header). A committed page version is immutable, so the location is exact for
 * every snapshot from that version until the commit that retires the page.
 *
 * A slot is 16 bytes, [u32 hash][u32 pgno][u64 version << 16 | node offset]:
 * the key is not stored but compared with the key bytes on the page, so keys of
 * any length are cached and a slot is a hint that is fully validated on use:
 *
 *   1. version <= snapshot                       (the page version existed)
 *   2. not (retired[pgno] > version && snapshot >= retired[pgno])
 *                                                (not retired by a commit of this
 *                                                 process at or before the snapshot)
 *   3. the page header still says `version`, and it is a plain leaf
 *   4. the node at the offset is a plain node holding exactly this key
 *
 * Checks 1 and 2 come before the page is touched: only then is the page known
 * to belong to the reader's snapshot (a page past it may have been cut off the
 * end of the file). retired[] is filled by the relocation callback of
 * native/patches/0002 inside the commit, before the commit becomes visible;
 * commits by other processes are found when a transaction starts
 * (tm_cache_sync: the tables' mod_txnid) and drop the tables they changed.
 *
 * Slots live in one table per cached table (Robin Hood linear probing; home
 * slot = hash * capacity / 2^32, so any capacity works; load 0.74 to 0.92),
 * allocated with mmap and transparent huge pages where the kernel offers them.
 * Lookups are single (tm_cache_get) or batched (tm_get_many, tm_follow): a
 * batch hashes every key and prefetches its slot, then prefetches each
 * candidate's page header and node, then validates and copies, so the memory
 * misses of many keys overlap instead of following one another.
 *
 * Everything here runs on the thread that owns the environment's JavaScript
 * objects, except tc_reloc (the committing thread, which is that thread too).
 */
#include "mdbx.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(_WIN32) || defined(_WIN64)
#include <windows.h>
#else
#include <sys/mman.h>
#endif

#define TM_API __dll_export

static inline int tm_rc(int rc) { return rc > 0 ? -rc : rc; }

/* ------------------------------------------------------------ page layout --- */

enum {
  PAGE_HEADER = 20, /* txnid u64 @0, dupfix_ksize u16 @8, flags u16 @10, lower @12, upper @14, pgno u32 @16 */
  P_LEAF = 0x02,
  NODE_HEADER = 8, /* dsize u32 @0, flags u8 @4, extra u8 @5, ksize u16 @6, then key, then data */
};

static inline uint64_t ld64(const void *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}
static inline uint32_t ld32(const void *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static inline uint16_t ld16(const void *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}

#define prefetch(p) __builtin_prefetch((const void *)(p), 0, 3)
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* --------------------------------------------------------------- memory --- */

/* Zeroed memory for slot tables and the retired array: mmap'd (lazily backed,
 * and on Linux with transparent huge pages: a slot table of a million entries
 * spans ~10 huge pages instead of ~5000 small ones, and a probe then rarely
 * misses the TLB). `*bytes` is rounded up to what was mapped. */
#define HUGE_PAGE ((size_t)2 << 20)

static void *big_alloc(size_t *bytes) {
#if defined(_WIN32) || defined(_WIN64)
  return VirtualAlloc(NULL, *bytes, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
#else
  size_t n = (*bytes + 4095) & ~(size_t)4095;
  if (n < HUGE_PAGE) {
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      return NULL;
    *bytes = n;
    return p;
  }
  /* align to a huge page, so that the kernel can back it with huge pages */
  n = (n + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
  uint8_t *raw = mmap(NULL, n + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED)
    return NULL;
  uint8_t *p = (uint8_t *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
  if (p > raw)
    munmap(raw, (size_t)(p - raw));
  if (p + n < raw + n + HUGE_PAGE)
    munmap(p + n, (size_t)(raw + n + HUGE_PAGE - (p + n)));
#ifdef MADV_HUGEPAGE
  madvise(p, n, MADV_HUGEPAGE);
#endif
  *bytes = n;
  return p;
#endif
}

static void big_free(void *p, size_t bytes) {
  if (!p)
    return;
#if defined(_WIN32) || defined(_WIN64)
  (void)bytes;
  VirtualFree(p, 0, MEM_RELEASE);
#else
  munmap(p, bytes);
#endif
}

/* ---------------------------------------------------------------- hash --- */

static inline uint64_t mix(uint64_t a, uint64_t b) {
  const __uint128_t r = (__uint128_t)a * b;
  return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* A 32-bit hash of the key bytes, never 0 (0 marks an empty slot). */
static inline uint32_t tc_hash(const uint8_t *k, size_t len) {
  uint64_t a, b, s = 0x8ebc6af09c88c6e3ull ^ len;
  if (len <= 16) {
    if (len >= 8) {
      a = ld64(k);
      b = ld64(k + len - 8);
    } else if (len >= 4) {
      a = ld32(k);
      b = ld32(k + len - 4);
    } else if (len > 0) {
      a = (uint64_t)k[0] << 16 | (uint64_t)k[len >> 1] << 8 | k[len - 1];
      b = 0;
    } else
      a = b = 0;
  } else {
    size_t i = len;
    const uint8_t *p = k;
    while (i > 16) {
      s = mix(ld64(p) ^ 0x589965cc75374cc3ull, ld64(p + 8) ^ s);
      p += 16;
      i -= 16;
    }
    a = ld64(k + len - 16);
    b = ld64(k + len - 8);
  }
  const uint64_t h = mix(mix(a ^ 0xa0761d6478bd642full, b ^ s), 0xe7037ed1a0b428dbull ^ len);
  const uint32_t t = (uint32_t)(h ^ (h >> 32));
  return t ? t : 1;
}

/* --------------------------------------------------------------- types --- */


typedef struct {
  uint32_t tag;  /* hash of the key; 0: empty */
  uint32_t pgno; /* the leaf page */
  uint64_t loc;  /* page version (its header txnid) << 16 | node offset */
} tm_slot;

typedef struct tm_cache tm_cache;

typedef struct tm_ctable {
  tm_cache *cache;
  tm_slot *slots;
  size_t bytes; /* of the slot mapping */
  uint32_t cap, count, max /* 0: unbounded */, dbi;
  uint32_t epoch; /* changes whenever slots move: a batch's remembered slot indexes are then void */
  uint32_t unused_;
  double hits, misses, invalidations, evictions;
  struct tm_ctable *next;
} tm_ctable;

struct tm_cache {
  MDBX_env *env;
  const uint8_t *base; /* where page 0 is mapped */
  size_t limit;        /* length of the mapping */
  uint32_t pageshift, pagesize;
  uint64_t *retired; /* retired[pgno]: txnid of the last commit of this process that retired the page */
  size_t npages;     /* entries of retired[] (pages of the mapping) */
  size_t retired_bytes;
  uint64_t seen;  /* every commit up to this txnid is accounted for */
  uint64_t fence; /* only snapshots >= fence may insert: older ones may know pages another process retired */
  uint64_t pend_first, pend_last; /* COMMITTED events not yet confirmed (a contiguous run), 0 if none */
  int pend_gap;                   /* the run was not contiguous */
  uint32_t disabled;              /* checks turned off by tm_cache_test_disable (negative controls only) */
  int lost;                       /* a retirement could not be recorded: drop everything at the next confirm */
  tm_ctable *tables;
};

#define MAX_LOAD 0.92
#define GROWTH 1.25

/* Checks a negative control can turn off (tm_cache_test_disable): each one
 * must be load-bearing, so turning it off must make the tests fail. */
enum {
  TC_TEST_NO_VERSION = 1, /* check 1: version <= snapshot */
  TC_TEST_NO_RETIRED = 2, /* check 2: not retired by this process at or before the snapshot */
  TC_TEST_NO_HEADER = 4,  /* check 3: the page header still says the version, a plain leaf */
  TC_TEST_NO_KEY = 8,     /* check 4: the key bytes on the page are the key's */
  TC_TEST_NO_SYNC = 16,   /* tm_cache_sync: drop tables other processes changed, raise the fence */
  TC_TEST_ONE_HASH = 32,  /* every key of a length hashes alike: each lookup meets other keys' entries */
};


/* The key's hash; a negative control can make every key of a length collide. */
static inline uint32_t tc_tag(const tm_cache *c, const uint8_t *key, uint32_t klen) {
  return unlikely(c->disabled & TC_TEST_ONE_HASH) ? klen | 1 : tc_hash(key, klen);
}

static inline uint32_t home_of(uint32_t tag, uint32_t cap) { return (uint32_t)(((uint64_t)tag * cap) >> 32); }

static inline uint32_t dist_of(uint32_t i, uint32_t tag, uint32_t cap) {
  const uint32_t h = home_of(tag, cap);
  return i >= h ? i - h : i + cap - h;
}

/* ------------------------------------------------------------- slot table --- */

static void tc_drop(tm_ctable *t) {
  if (t->count == 0)
    return;
  t->invalidations += t->count;
  memset(t->slots, 0, (size_t)t->cap * sizeof(tm_slot));
  t->count = 0;
  t->epoch++;
}

static void tc_place(tm_slot *s, uint32_t cap, tm_slot cur) {
  uint32_t i = home_of(cur.tag, cap), dist = 0;
  for (;;) {
    if (s[i].tag == 0) {
      s[i] = cur;
      return;
    }
    const uint32_t d = dist_of(i, s[i].tag, cap);
    if (d < dist) {
      /* take the slot from the richer entry and carry that one on */
      const tm_slot tmp = s[i];
      s[i] = cur;
      cur = tmp;
      dist = d;
    }
    if (++i == cap)
      i = 0;
    dist++;
  }
}

/* Backward-shift deletion of the entry at slot i. */
static void tc_remove(tm_ctable *t, uint32_t i) {
  tm_slot *s = t->slots;
  const uint32_t cap = t->cap;
  for (;;) {
    uint32_t j = i + 1;
    if (j == cap)
      j = 0;
    if (s[j].tag == 0 || home_of(s[j].tag, cap) == j) {
      memset(&s[i], 0, sizeof(tm_slot));
      break;
    }
    s[i] = s[j];
    i = j;
  }
  t->count--;
  t->epoch++;
}

static int tc_alloc(tm_ctable *t, uint32_t cap) {
  size_t bytes = (size_t)cap * sizeof(tm_slot);
  tm_slot *s = big_alloc(&bytes);
  if (!s)
    return MDBX_ENOMEM;
  /* use what the mapping holds anyway (it is rounded up to a page) */
  const size_t fit = bytes / sizeof(tm_slot);
  cap = fit > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)fit;
  tm_slot *old = t->slots;
  const uint32_t oldcap = t->cap;
  const size_t oldbytes = t->bytes;
  for (uint32_t i = 0; i < oldcap; i++)
    if (old[i].tag)
      tc_place(s, cap, old[i]);
  t->slots = s;
  t->cap = cap;
  t->bytes = bytes;
  t->epoch++;
  big_free(old, oldbytes);
  return MDBX_SUCCESS;
}

/* Remembers where a key lives. The caller made sure no entry of this key exists. */
static void tc_insert(tm_ctable *t, uint32_t tag, uint32_t pgno, uint64_t loc) {
  if (t->max && t->count >= t->max) {
    /* bounded and full: drop the entry at the new key's home slot (or the next one) */
    uint32_t i = home_of(tag, t->cap);
    while (t->slots[i].tag == 0)
      if (++i == t->cap)
        i = 0;
    tc_remove(t, i);
    t->evictions++;
  } else if (t->count + 1 > (double)t->cap * MAX_LOAD) {
    const double want = (double)t->cap * GROWTH + 1;
    if (want >= UINT32_MAX || tc_alloc(t, (uint32_t)want) != MDBX_SUCCESS)
      return; /* no memory for more: stay as we are (a miss is still correct) */
  }
  const tm_slot cur = {tag, pgno, loc};
  tc_place(t->slots, t->cap, cur);
  t->count++;
  t->epoch++;
}

/* ------------------------------------------------------------ validation --- */

enum { TC_HIT, TC_OTHER, TC_STALE, TC_NEWER };
/* Checks the entry in slot `s` for `key` at snapshot `snap` (see the top of the
 * file). TC_HIT: *val and *vlen say where the value is. TC_OTHER: the entry is
 * valid but holds another key (equal hashes). TC_STALE: the entry is valid for
 * no reader at this snapshot or later: remove it. TC_NEWER: the entry is for a
 * newer page version than this snapshot: this reader cannot use it, and its page
 * may not be safe to read here, so it is not known whose key it is. */
static inline int tc_check(const tm_cache *c, const tm_slot *s, const uint8_t *key, uint32_t klen, uint64_t snap,
                           const uint8_t **val, uint32_t *vlen) {
  const uint64_t ver = s->loc >> 16;
  const uint32_t off = (uint32_t)(s->loc & 0xffff), pgno = s->pgno, off_ = c->disabled;
  if (ver > snap && !(off_ & TC_TEST_NO_VERSION))
    return TC_NEWER;
  if (pgno >= c->npages)
    return TC_STALE;
  const uint64_t rt = c->retired[pgno];
  if (rt > ver && snap >= rt && !(off_ & TC_TEST_NO_RETIRED))
    return TC_STALE;
  const uint8_t *page = c->base + ((size_t)pgno << c->pageshift);
  if ((ld64(page) != ver || ld16(page + 10) != P_LEAF) && !(off_ & TC_TEST_NO_HEADER))
    return TC_STALE;
  const uint8_t *node = page + off;
  const size_t end = (size_t)off + NODE_HEADER + klen;
  if (end > c->pagesize || node[4] != 0 || ld16(node + 6) != klen ||
      (memcmp(node + NODE_HEADER, key, klen) != 0 && !(off_ & TC_TEST_NO_KEY)))
    return TC_OTHER;
  const uint32_t dsize = ld32(node);
  if (end + dsize > c->pagesize)
    return TC_STALE;
  *val = node + NODE_HEADER + klen;
  *vlen = dsize;
  return TC_HIT;
}

/* The result of a lookup: hit (val/vlen), or a miss that may insert. */
typedef struct {
  const uint8_t *val;
  uint32_t vlen;
  int hit;
  int may_insert; /* no entry that might be this key's was left in place */
} tc_found;

/* Probes from slot i at distance `dist` for an entry of `key` (hash `tag`). */
static __attribute__((noinline)) void tc_probe_slow(tm_ctable *t, uint32_t tag, uint32_t i, uint32_t dist, const uint8_t *key, uint32_t klen,
                          uint64_t snap, tc_found *f) {
  const tm_cache *c = t->cache;
  f->hit = 0;
  f->may_insert = 1;
  for (;;) {
    const tm_slot *s = &t->slots[i];
    if (s->tag == 0)
      return;
    if (s->tag == tag) {
      const int r = tc_check(c, s, key, klen, snap, &f->val, &f->vlen);
      if (r == TC_HIT) {
        f->hit = 1;
        return;
      }
      if (r == TC_STALE) {
        t->invalidations++;
        tc_remove(t, i);
        /* whatever shifted into slot i is checked next; start over to keep the distances right */
        i = home_of(tag, t->cap);
        dist = 0;
        continue;
      }
      if (r == TC_NEWER)
        f->may_insert = 0;
    } else if (dist_of(i, s->tag, t->cap) < dist)
      return; /* Robin Hood: the key would have been placed before here */
    if (++i == t->cap)
      i = 0;
    dist++;
  }
}

/* The common case first: the first slot from i (at distance dist) with the
 * key's hash holds a hit. Kept small and branch-predictable, so that the CPU
 * runs ahead into the next key while this one's page is still being fetched;
 * anything else (an absent key, a stale entry, another key with the same
 * hash) goes the long way. */
static inline void tc_probe(tm_ctable *t, uint32_t tag, uint32_t i, uint32_t dist, const uint8_t *key, uint32_t klen,
                            uint64_t snap, tc_found *f) {
  const tm_slot *const sl = t->slots;
  const uint32_t cap = t->cap;
  for (;;) {
    const uint32_t st = sl[i].tag;
    if (st == tag)
      break;
    if (st == 0 || dist_of(i, st, cap) < dist) {
      f->hit = 0;
      f->may_insert = 1;
      return;
    }
    if (++i == cap)
      i = 0;
    dist++;
  }
  if (likely(tc_check(t->cache, &sl[i], key, klen, snap, &f->val, &f->vlen) == TC_HIT)) {
    f->hit = 1;
    return;
  }
  tc_probe_slow(t, tag, i, dist, key, klen, snap, f);
}

/* --------------------------------------------------------------- misses --- */

/* mdbx_get, then remember where the pair lives when the location can be cached:
 * a plain node on a committed leaf page of this snapshot (not a large value, not
 * a dirty page of a write transaction), and a snapshot at or after the fence. */
static __attribute__((noinline)) int tc_miss(tm_ctable *t, const MDBX_txn *txn, uint32_t tag, const uint8_t *key, uint32_t klen, uint64_t snap,
                   int may_insert, MDBX_val *d) {
  MDBX_val k = {(void *)key, klen};
  const int rc = mdbx_get(txn, t->dbi, &k, d);
  t->misses++;
  if (rc != MDBX_SUCCESS || !may_insert || snap < t->cache->fence)
    return rc;
  const tm_cache *c = t->cache;
  const uintptr_t p = (uintptr_t)d->iov_base, base = (uintptr_t)c->base;
  if (p < base || p - base >= c->limit)
    return rc; /* a dirty page in the heap (write transaction) */
  const size_t at = p - base;
  const uint32_t pgno = (uint32_t)(at >> c->pageshift);
  const uint8_t *page = c->base + ((size_t)pgno << c->pageshift);
  const size_t data_off = at & (c->pagesize - 1);
  if (pgno >= c->npages || ld16(page + 10) != P_LEAF || data_off < PAGE_HEADER + NODE_HEADER + (size_t)klen)
    return rc;
  const uint64_t ver = ld64(page);
  if (ver > snap || ver >= (uint64_t)1 << 48)
    return rc; /* newer than the snapshot: a dirty page of a write transaction with MDBX_WRITEMAP */
  const uint8_t *node = page + data_off - NODE_HEADER - klen;
  if (node[4] != 0 || ld16(node + 6) != klen || ld32(node) != d->iov_len)
    return rc;
  tc_insert(t, tag, pgno, ver << 16 | (uint64_t)(node - page));
  return rc;
}

/* ----------------------------------------------------------- environment --- */

static void tc_reloc(void *ctx, uint64_t txnid, MDBX_relocation_kind_t kind, uint32_t pgno, uint32_t npages) {
  tm_cache *c = ctx;
  if (kind == MDBX_RELOCATION_RETIRED) {
    const size_t end = (size_t)pgno + npages;
    if (end > c->npages) {
      c->lost = 1; /* cannot happen while the mapping covers the file; be safe if it does */
      return;
    }
    for (size_t p = pgno; p < end; p++)
      c->retired[p] = txnid;
  } else if (kind == MDBX_RELOCATION_COMMITTED) {
    if (c->pend_last == 0)
      c->pend_first = txnid;
    else if (txnid != c->pend_last + 1)
      c->pend_gap = 1;
    c->pend_last = txnid;
  }
}

/* The cache of an environment, or NULL. */
tm_cache *tm_cache_of(MDBX_env *env) {
  void *ctx = NULL;
  return env && mdbx_env_get_relocation_func(env, &ctx) == tc_reloc ? ctx : NULL;
}

/* Called by the commit wrappers after libmdbx returned: the COMMITTED events
 * collected during the call become `seen` only if the commit succeeded and
 * continues what was accounted for (otherwise another process committed in
 * between, and the next tm_cache_sync looks at the tables). */
void tm_cache_confirm(tm_cache *c, int ok) {
  if (c->lost) {
    for (tm_ctable *t = c->tables; t; t = t->next)
      tc_drop(t);
    c->lost = 0;
  }
  if (ok && c->pend_last && !c->pend_gap && c->seen + 1 == c->pend_first)
    c->seen = c->pend_last;
  c->pend_first = c->pend_last = 0;
  c->pend_gap = 0;
}

/* Re-reads the mapping; on a move every location is dropped, and retired[]
 * grows with the mapping. Returns an MDBX error code. */
static int tc_remap(tm_cache *c) {
  void *base = NULL;
  size_t limit = 0;
  int rc = mdbx_env_get_mapping(c->env, &base, &limit, NULL);
  if (rc != MDBX_SUCCESS)
    return rc;
  if ((const uint8_t *)base != c->base) {
    for (tm_ctable *t = c->tables; t; t = t->next)
      tc_drop(t);
    c->base = base;
  }
  const size_t npages = limit >> c->pageshift;
  if (npages > c->npages) {
    size_t bytes = npages * sizeof(uint64_t);
    uint64_t *r = big_alloc(&bytes);
    if (!r)
      return MDBX_ENOMEM;
    if (c->retired)
      memcpy(r, c->retired, c->npages * sizeof(uint64_t));
    big_free(c->retired, c->retired_bytes);
    c->retired = r;
    c->retired_bytes = bytes;
    c->npages = npages;
  }
  c->limit = limit;
  return MDBX_SUCCESS;
}

/* Turns the cache on for an environment: relocation events are applied to
 * retired[] inside every commit from now on. */
TM_API tm_cache *tm_cache_open(MDBX_env *env, int32_t *rc) {
  tm_cache *c = calloc(1, sizeof(*c));
  if (!c) {
    *rc = tm_rc(MDBX_ENOMEM);
    return NULL;
  }
  c->env = env;
  MDBX_envinfo info;
  int err = mdbx_env_info_ex(env, NULL, &info, sizeof(info));
  if (err == MDBX_SUCCESS) {
    c->pagesize = info.mi_dxb_pagesize;
    while ((1u << c->pageshift) < c->pagesize)
      c->pageshift++;
    err = tc_remap(c);
  }
  if (err == MDBX_SUCCESS)
    err = mdbx_env_set_relocation_func(env, tc_reloc, c);
  if (err != MDBX_SUCCESS) {
    big_free(c->retired, c->retired_bytes);
    free(c);
    *rc = tm_rc(err);
    return NULL;
  }
  *rc = 0;
  return c;
}

/* Turns the cache off and frees it with every table's slots. */
TM_API int tm_cache_close(MDBX_env *env, tm_cache *c) {
  int rc = env ? mdbx_env_set_relocation_func(env, NULL, NULL) : MDBX_SUCCESS;
  for (tm_ctable *t = c->tables, *next; t; t = next) {
    next = t->next;
    big_free(t->slots, t->bytes);
    free(t);
  }
  big_free(c->retired, c->retired_bytes);
  free(c);
  return tm_rc(rc);
}

/* Called when a transaction starts (or renews) on snapshot `snap`: re-reads the
 * mapping, and if commits happened that this process did not make, drops the
 * cached tables they modified (mod_txnid) and raises the fence. */
TM_API int tm_cache_sync(tm_cache *c, const MDBX_txn *txn, double snap_d) {
  const uint64_t snap = (uint64_t)snap_d;
  int rc = tc_remap(c);
  if (rc != MDBX_SUCCESS)
    return tm_rc(rc);
  if (snap <= c->seen || (c->disabled & TC_TEST_NO_SYNC))
    return 0;
  for (tm_ctable *t = c->tables; t; t = t->next) {
    MDBX_stat st;
    /* no stat: another process dropped the table (its reads report that); forget its entries */
    if (t->count && (mdbx_dbi_stat(txn, t->dbi, &st, sizeof(st)) != MDBX_SUCCESS || st.ms_mod_txnid > c->seen))
      tc_drop(t);
  }
  c->seen = c->fence = snap;
  return 0;
}

/* For negative controls only: turns off the checks in `mask` (TC_TEST_*), so
 * that a test can show each one is needed. Never called by the library. */
TM_API void tm_cache_test_disable(tm_cache *c, uint32_t mask) { c->disabled = mask; }

/* A table's cache: `max` entries at most (0: unbounded, growing as needed). */
TM_API tm_ctable *tm_ctable_open(tm_cache *c, uint32_t dbi, double max, int32_t *rc) {
  tm_ctable *t = calloc(1, sizeof(*t));
  if (!t) {
    *rc = tm_rc(MDBX_ENOMEM);
    return NULL;
  }
  t->cache = c;
  t->dbi = dbi;
  t->max = max >= UINT32_MAX * MAX_LOAD ? (uint32_t)(UINT32_MAX * MAX_LOAD) : (uint32_t)max;
  const double cap = t->max ? (double)t->max / MAX_LOAD + 1 : 1024;
  if (tc_alloc(t, (uint32_t)(cap < 16 ? 16 : cap)) != MDBX_SUCCESS) {
    free(t);
    *rc = tm_rc(MDBX_ENOMEM);
    return NULL;
  }
  t->next = c->tables;
  c->tables = t;
  *rc = 0;
  return t;
}

TM_API void tm_ctable_close(tm_ctable *t) {
  tm_cache *c = t->cache;
  for (tm_ctable **p = &c->tables; *p; p = &(*p)->next)
    if (*p == t) {
      *p = t->next;
      break;
    }
  big_free(t->slots, t->bytes);
  free(t);
}

/* Drops every entry (the table was cleared or dropped, ...). */
TM_API void tm_ctable_clear(tm_ctable *t) { tc_drop(t); }

/* out: hits, misses, invalidations, evictions, entries, capacity, bytes */
TM_API void tm_ctable_stats(const tm_ctable *t, double *out) {
  out[0] = t->hits;
  out[1] = t->misses;
  out[2] = t->invalidations;
  out[3] = t->evictions;
  out[4] = t->count;
  out[5] = t->cap;
  out[6] = (double)t->cap * sizeof(tm_slot);
}

/* ----------------------------------------------------------------- reads --- */

/* One get of table dbi, through its cache t (NULL: uncached): returns the
 * value's length (copied to out when it fits in cap; when it does not, the
 * caller grows its buffer and asks again), or an error (MDBX_NOTFOUND when
 * there is no such key). */
TM_API int tm_cache_get(tm_ctable *t, const MDBX_txn *txn, uint32_t dbi, double snap_d, const uint8_t *key,
                        uint32_t klen, uint8_t *out, uint32_t cap) {
  MDBX_val d;
  if (!t) {
    MDBX_val k = {(void *)key, klen};
    const int rc = mdbx_get(txn, dbi, &k, &d);
    if (rc != MDBX_SUCCESS)
      return tm_rc(rc);
    if (d.iov_len <= cap)
      memcpy(out, d.iov_base, d.iov_len);
    return (int)d.iov_len;
  }
  const uint64_t snap = (uint64_t)snap_d;
  const uint32_t tag = tc_tag(t->cache, key, klen);
  tc_found f;
  tc_probe(t, tag, home_of(tag, t->cap), 0, key, klen, snap, &f);
  if (f.hit) {
    t->hits++;
    if (f.vlen <= cap)
      memcpy(out, f.val, f.vlen);
    return (int)f.vlen;
  }
  const int rc = tc_miss(t, txn, tag, key, klen, snap, f.may_insert, &d);
  if (rc != MDBX_SUCCESS)
    return tm_rc(rc);
  if (d.iov_len <= cap)
    memcpy(out, d.iov_base, d.iov_len);
  return d.iov_len > INT32_MAX ? tm_rc(MDBX_TOO_LARGE) : (int)d.iov_len;
}

/* tm_cache_get writing at out + off (getInto with an offset). */
TM_API int tm_cache_get_at(tm_ctable *t, const MDBX_txn *txn, uint32_t dbi, double snap, const uint8_t *key,
                           uint32_t klen, uint8_t *out, uint32_t off, uint32_t cap) {
  return tm_cache_get(t, txn, dbi, snap, key, klen, out + off, cap);
}

/* ------------------------------------------------------------- batches --- */

/* A batch is looked up as a software pipeline over its keys: stage 1 hashes
 * key j + 2 * PIPE and prefetches its home slot; stage 2 finds the first slot
 * of key j + PIPE with its hash and prefetches what validating it reads (the
 * retired[] entry, the page header, the node and the value's start); stage 3
 * validates key j and copies its value. Every key's two dependent misses (slot,
 * then page) are thus issued well before they are needed, and a steady number
 * of them is in flight. (Measured on a 2-core EPYC, 1M entries, 100-byte
 * values: 64-75 ns per key, against 115-120 ns for groups of 16 keys done
 * stage by stage and ~300 ns for one key at a time.) */
enum { PIPE = 4, RING = 16 /* a power of two > 2 * PIPE */ };

/* The keys in flight, and what stages 1 and 2 found for them. */
typedef struct {
  const uint8_t *key[RING];
  uint32_t klen[RING];
  uint32_t tag[RING];
  uint32_t slot[RING]; /* the first slot with this hash, or UINT32_MAX */
  uint32_t dist[RING];
  uint32_t epoch[RING]; /* t->epoch when slot was found: slots that moved since are looked up again */
} tc_ring;

static inline void tc_stage1(const tm_ctable *t, tc_ring *r, uint32_t j, const uint8_t *key, uint32_t klen) {
  const uint32_t x = j & (RING - 1);
  r->key[x] = key;
  r->klen[x] = klen;
  r->tag[x] = tc_tag(t->cache, key, klen);
  prefetch(&t->slots[home_of(r->tag[x], t->cap)]);
}

static inline void tc_stage2(const tm_ctable *t, tc_ring *r, uint32_t j) {
  const uint32_t x = j & (RING - 1), tag = r->tag[x], cap = t->cap;
  const tm_slot *const s = t->slots;
  const tm_cache *const c = t->cache;
  uint32_t i = home_of(tag, cap), dist = 0;
  r->slot[x] = UINT32_MAX;
  r->epoch[x] = t->epoch;
  for (;;) {
    const uint32_t st = s[i].tag;
    if (st == tag) {
      r->slot[x] = i;
      r->dist[x] = dist;
      const uint32_t pgno = s[i].pgno;
      if (pgno < c->npages) { /* a prefetch never faults, whatever the page */
        const uint8_t *page = c->base + ((size_t)pgno << c->pageshift);
        const uint8_t *node = page + (s[i].loc & 0xffff);
        prefetch(&c->retired[pgno]);
        prefetch(page);
        prefetch(node);
        prefetch(node + 64);
      }
      return;
    }
    if (st == 0 || dist_of(i, st, cap) < dist)
      return;
    if (++i == cap)
      i = 0;
    dist++;
  }
}

/* Stage 3, the long way: continue the probe past other keys' entries (or start
 * over if slots moved since stage 2), or look the key up in the tree. */
static __attribute__((noinline)) int tc_stage3_slow(tm_ctable *t, const MDBX_txn *txn, uint64_t snap, tc_ring *r,
                                                    uint32_t j, const uint8_t **val, uint32_t *vlen) {
  const uint32_t x = j & (RING - 1), tag = r->tag[x];
  tc_found f;
  if (r->epoch[x] != t->epoch)
    tc_probe_slow(t, tag, home_of(tag, t->cap), 0, r->key[x], r->klen[x], snap, &f);
  else if (r->slot[x] != UINT32_MAX)
    tc_probe_slow(t, tag, r->slot[x], r->dist[x], r->key[x], r->klen[x], snap, &f);
  else {
    f.hit = 0;
    f.may_insert = 1;
  }
  if (f.hit) {
    t->hits++;
    *val = f.val;
    *vlen = f.vlen;
    return MDBX_SUCCESS;
  }
  MDBX_val d;
  const int rc = tc_miss(t, txn, tag, r->key[x], r->klen[x], snap, f.may_insert, &d);
  if (rc == MDBX_SUCCESS) {
    *val = d.iov_base;
    *vlen = (uint32_t)d.iov_len;
  }
  return rc;
}

/* Stage 3 for key j: the common case (the slot stage 2 found is a hit) kept
 * short and branch-predictable, so that the CPU runs ahead into the next keys;
 * anything else goes the long way. */
static inline int tc_stage3(tm_ctable *t, const MDBX_txn *txn, uint64_t snap, tc_ring *r, uint32_t j,
                            const uint8_t **val, uint32_t *vlen) {
  const uint32_t x = j & (RING - 1), i = r->slot[x];
  if (likely(i != UINT32_MAX) && likely(r->epoch[x] == t->epoch) &&
      likely(tc_check(t->cache, &t->slots[i], r->key[x], r->klen[x], snap, val, vlen) == TC_HIT)) {
    t->hits++;
    return MDBX_SUCCESS;
  }
  return tc_stage3_slow(t, txn, snap, r, j, val, vlen);
}

/* Where batch key i is: fixed-size keys (ksize > 0) are keys[i * ksize ..], else
 * koff[i] .. koff[i + 1]. */
static inline const uint8_t *batch_key(const uint8_t *keys, const uint32_t *koff, uint32_t ksize, uint32_t i,
                                       uint32_t *klen) {
  if (ksize) {
    *klen = ksize;
    return keys + (size_t)i * ksize;
  }
  *klen = koff[i + 1] - koff[i];
  return keys + koff[i];
}

/* Writes the result of batch key i: a value (val, vlen) or absence (rc
 * MDBX_NOTFOUND). Returns 0, 1 when the value does not fit (pos says its
 * length), or an error. */
static inline int batch_emit(int rc, const uint8_t *val, uint32_t vlen, uint8_t *out, uint32_t cap, uint32_t *used,
                             int32_t *pos, uint32_t i) {
  if (rc == MDBX_NOTFOUND) {
    pos[2 * i] = (int32_t)*used;
    pos[2 * i + 1] = -1;
    return 0;
  }
  if (rc != MDBX_SUCCESS)
    return tm_rc(rc);
  if (vlen > cap - *used) {
    pos[2 * i] = -1;
    pos[2 * i + 1] = vlen > INT32_MAX ? INT32_MAX : (int32_t)vlen;
    return 1;
  }
  memcpy(out + *used, val, vlen);
  pos[2 * i] = (int32_t)*used;
  pos[2 * i + 1] = (int32_t)vlen;
  *used += vlen;
  return 0;
}

/* Batched get: keys `first` .. `n - 1` of a batch (see batch_key), on a cached
 * table (t) or not (t NULL: plain mdbx_get, one after another). Values go to
 * `out` back to back from byte `at` (of `cap`); pos[2i] = the value's offset in
 * out, pos[2i + 1] = its length, or -1 when the key is absent. Returns the index
 * after the last key done: n, or less when the next value does not fit (then
 * pos[2i + 1] of that key i holds its length and pos[2i] is -1), or a negative
 * error. */
TM_API int tm_get_many(tm_ctable *t, const MDBX_txn *txn, uint32_t dbi, double snap_d, const uint8_t *keys,
                       const uint32_t *koff, uint32_t ksize, uint32_t first, uint32_t n, uint8_t *out, uint32_t at,
                       uint32_t cap, int32_t *pos) {
  const uint64_t snap = (uint64_t)snap_d;
  uint32_t used = at;
  if (at > cap || first > n)
    return tm_rc(MDBX_EINVAL);
  if (!t) {
    for (uint32_t i = first; i < n; i++) {
      uint32_t klen;
      MDBX_val k, d = {NULL, 0};
      k.iov_base = (void *)batch_key(keys, koff, ksize, i, &klen);
      k.iov_len = klen;
      const int e = batch_emit(mdbx_get(txn, dbi, &k, &d), d.iov_base, (uint32_t)d.iov_len, out, cap, &used, pos, i);
      if (e)
        return e > 0 ? (int)i : e;
    }
    return (int)n;
  }
  tc_ring r;
  for (uint32_t i = first; i < n + 2 * PIPE; i++) {
    if (i < n) {
      uint32_t klen;
      const uint8_t *k = batch_key(keys, koff, ksize, i, &klen);
      tc_stage1(t, &r, i, k, klen);
    }
    if (i >= first + PIPE && i - PIPE < n)
      tc_stage2(t, &r, i - PIPE);
    if (i >= first + 2 * PIPE) {
      const uint32_t j = i - 2 * PIPE;
      const uint8_t *val = NULL;
      uint32_t vlen = 0;
      const int e = batch_emit(tc_stage3(t, txn, snap, &r, j, &val, &vlen), val, vlen, out, cap, &used, pos, j);
      if (e)
        return e > 0 ? (int)j : e;
    }
  }
  return (int)n;
}

/* ------------------------------------------------------------ traversal --- */

enum {
  TM_FOLLOW_FIRST = 0,   /* position at the prefix */
  TM_FOLLOW_CURRENT = 2, /* continue at the entry the cursor stands on */
  TM_FOLLOW_MODE_MASK = 3,
};

/* Relation traversal in one call: the entries of `index` whose keys start with
 * `prefix`, and for each the value of the key slice [at, at + len) of its key
 * in the objects table (dbi, cached when t is not NULL), looked up in groups as
 * tm_get_many does.
 *
 * out: [u32 count][u32 state][u32 need] then per entry [u32 klen][i32 vlen]
 * [key][value], vlen -1 when the object is absent (or the key is too short to
 * hold the slice). state 1: the prefix is exhausted; 2: more to come (the cursor
 * stands on the first entry not emitted: continue with TM_FOLLOW_CURRENT, after
 * growing out to `need` bytes when need > 0). Returns count or a negative error. */
TM_API int tm_follow(MDBX_cursor *cur, uint32_t flags, const uint8_t *prefix, uint32_t plen, uint32_t at,
                     uint32_t len, tm_ctable *t, uint32_t dbi, double snap_d, uint32_t max_count, uint8_t *out,
                     uint32_t cap) {
  const uint64_t snap = (uint64_t)snap_d;
  const MDBX_txn *txn = mdbx_cursor_txn(cur);
  uint32_t count = 0, state = 1, need = 0, used = 12;
  if (cap < 12)
    return tm_rc(MDBX_EINVAL);
  MDBX_val k, d;
  int rc;
  if ((flags & TM_FOLLOW_MODE_MASK) == TM_FOLLOW_CURRENT)
    rc = mdbx_cursor_get(cur, &k, &d, MDBX_GET_CURRENT);
  else {
    k.iov_base = (void *)prefix;
    k.iov_len = plen;
    rc = mdbx_cursor_get(cur, &k, &d, MDBX_SET_RANGE);
  }
  enum { FGROUP = 64 };
  /* index keys of the group: pointers into the map (or this write transaction's
   * dirty pages), stable while nothing is written */
  const uint8_t *ikey[FGROUP];
  uint32_t iklen[FGROUP];
  tc_ring r;
  while (rc == MDBX_SUCCESS && count < max_count) {
    /* collect a group of index entries within the prefix */
    uint32_t m = 0;
    while (rc == MDBX_SUCCESS && m < FGROUP && count + m < max_count) {
      if (k.iov_len < plen || memcmp(k.iov_base, prefix, plen) != 0) {
        rc = MDBX_NOTFOUND;
        break;
      }
      ikey[m] = k.iov_base;
      iklen[m] = (uint32_t)k.iov_len;
      m++;
      rc = mdbx_cursor_get(cur, &k, &d, MDBX_NEXT);
    }
    if (rc != MDBX_SUCCESS && rc != MDBX_NOTFOUND)
      return tm_rc(rc);
    const int more = rc == MDBX_SUCCESS; /* the cursor stands on the entry after the group */
    /* the objects' keys are slices [at, at + len) of the index keys, looked up as tm_get_many does */
    for (uint32_t i = 0; i < m + 2 * PIPE; i++) {
      if (t && i < m && (size_t)at + len <= iklen[i])
        tc_stage1(t, &r, i, ikey[i] + at, len);
      if (t && i >= PIPE && i - PIPE < m && (size_t)at + len <= iklen[i - PIPE])
        tc_stage2(t, &r, i - PIPE);
      if (i < 2 * PIPE)
        continue;
      const uint32_t j = i - 2 * PIPE;
      const uint8_t *val = NULL;
      uint32_t vlen = 0;
      int found = 0;
      if ((size_t)at + len <= iklen[j]) {
        int r2;
        if (t)
          r2 = tc_stage3(t, txn, snap, &r, j, &val, &vlen);
        else {
          MDBX_val ok = {(void *)(ikey[j] + at), len}, od;
          r2 = mdbx_get(txn, dbi, &ok, &od);
          val = od.iov_base;
          vlen = (uint32_t)od.iov_len;
        }
        if (r2 != MDBX_SUCCESS && r2 != MDBX_NOTFOUND)
          return tm_rc(r2);
        found = r2 == MDBX_SUCCESS;
      }
      const uint64_t size = 8 + (uint64_t)iklen[j] + (found ? vlen : 0);
      if (used + size > cap) {
        /* stand on index entry j again, so that the next call starts there (its
         * key bytes stay where they are: nothing was written) */
        MDBX_val rk = {(void *)ikey[j], iklen[j]}, rd;
        rc = mdbx_cursor_get(cur, &rk, &rd, MDBX_SET_KEY);
        if (rc != MDBX_SUCCESS)
          return tm_rc(rc == MDBX_NOTFOUND ? MDBX_PROBLEM : rc);
        state = 2;
        if (count == 0)
          need = size + 12 > UINT32_MAX ? UINT32_MAX : (uint32_t)(size + 12);
        goto done;
      }
      uint8_t *p = out + used;
      const int32_t vl = found ? (int32_t)vlen : -1;
      memcpy(p, &iklen[j], 4);
      memcpy(p + 4, &vl, 4);
      memcpy(p + 8, ikey[j], iklen[j]);
      if (found)
        memcpy(p + 8 + iklen[j], val, vlen);
      used += (uint32_t)size;
      count++;
    }
    if (more && count >= max_count)
      state = 2;
  }
  if (rc != MDBX_SUCCESS && rc != MDBX_NOTFOUND)
    return tm_rc(rc);
done:
  memcpy(out, &count, 4);
  memcpy(out + 4, &state, 4);
  memcpy(out + 8, &need, 4);
  return (int)count;
}
