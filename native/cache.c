/* turbomdbx: the get() cache, in native code (docs/cache.md).
 *
 * An entry remembers where a key's value lives, not the value: the leaf page
 * (pgno), the node's offset in it and the page's version (the txnid in its
 * header). A committed page version is immutable, so the location is exact for
 * every snapshot from that version until the commit that retires the page.
 *
 * Entries are hints that are fully validated on use (the key is not stored
 * but compared with the key bytes on the page):
 *
 *   1. version <= snapshot                       (the page version existed)
 *   2. not (retired[pgno] > version && snapshot >= retired[pgno])
 *                                                (not retired by a published commit
 *                                                 at or before the snapshot)
 *   3. the page header still says `version`, and it is a plain leaf
 *   4. the node at the offset is a plain node holding exactly this key
 *
 * Checks 1 and 2 come before the page is touched: only then is the page known
 * to belong to the reader's snapshot (a page past it may have been cut off the
 * end of the file).
 *
 * The memory lives in a sidecar file mapped by every process that uses the
 * database (native/cache_shm.c), or privately: retired[], the accounting of
 * commits and the slot regions of the tables. Every commit of a process with
 * the cache publishes its retirements inside the commit (tc_reloc), before the
 * new meta page makes it visible, and confirms them once libmdbx says it
 * succeeded; a snapshot with commits that nobody published (a foreign writer)
 * drops the tables they changed (tm_cache_sync). The memory-ordering argument
 * is in docs/cache.md, "Several processes and threads".
 *
 * Slots: 4 to a 64-byte bucket behind a seqlock word (gen << 32 | seq). A
 * reader never locks: it copies a bucket between two reads of the word and
 * retries or misses if it changed; a writer (insert, removal) takes the word
 * with a CAS and never waits (a busy bucket is left alone). A torn or racing
 * slot can only make a miss: everything it says is validated on the page.
 * A bucket of another generation is empty: dropping a table is one increment
 * of its generation. An unbounded table grows into a new region (tc_grow).
 *
 * Lookups are single (tm_cache_get) or batched (tm_get_many, tm_follow): a
 * batch hashes every key and prefetches its bucket, then prefetches each
 * candidate's page header and node, then validates and copies, so the memory
 * misses of many keys overlap instead of following one another.
 *
 * Any thread may call any of these (one environment shared by Workers); the
 * relocation callback runs on the committing thread. */
#include "mdbx.h"
#include "codes.h"

#include "cache_shm.h"
#include "page.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(_WIN32) || defined(_WIN64)
#include <windows.h>
#else
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif
#include <errno.h>
#include <stdio.h>

#define TM_API __dll_export

static inline int tm_rc(int rc) { return rc > 0 ? -rc : rc; }


/* ------------------------------------------------------------ page layout --- */

/* PAGE_HEADER, NODE_HEADER, P_LEAF, ld16/ld32/ld64: native/page.h */
#define prefetch(p) __builtin_prefetch((const void *)(p), 0, 3)

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

/* A 64-bit hash of the key bytes: the high half picks the bucket, the low 16 bits are the slot's tag. */
static inline uint64_t tc_hash(const uint8_t *k, size_t len) {
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
  return mix(mix(a ^ 0xa0761d6478bd642full, b ^ s), 0xe7037ed1a0b428dbull ^ len);
}

/* ---------------------------------------------------------------- atomics --- */

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* Counters of one process (statistics): racing increments of several threads
 * may lose a count, never tear. */
#define BUMP(p) STORE((p), LOAD(p) + 1)

/* *p = max(*p, v) */
static void store_max(uint64_t *p, uint64_t v, int order) {
  uint64_t cur = LOAD(p);
  while (cur < v && !__atomic_compare_exchange_n(p, &cur, v, 1, order, __ATOMIC_RELAXED))
    ;
}

#if defined(_WIN32) || defined(_WIN64)
typedef SRWLOCK tm_mutex;
#define MUTEX_INIT(m) InitializeSRWLock(m)
#define MUTEX_LOCK(m) AcquireSRWLockExclusive(m)
#define MUTEX_TRYLOCK(m) TryAcquireSRWLockExclusive(m)
#define MUTEX_UNLOCK(m) ReleaseSRWLockExclusive(m)
#define MUTEX_DESTROY(m) ((void)(m))
typedef SRWLOCK tm_gate;
#define GATE_INIT SRWLOCK_INIT
#define GATE_SHARED(g) AcquireSRWLockShared(g)
#define GATE_SHARED_END(g) ReleaseSRWLockShared(g)
#define GATE_ALONE(g) AcquireSRWLockExclusive(g)
#define GATE_ALONE_END(g) ReleaseSRWLockExclusive(g)
#else
typedef pthread_mutex_t tm_mutex;
#define MUTEX_INIT(m) pthread_mutex_init((m), NULL)
#define MUTEX_LOCK(m) pthread_mutex_lock(m)
#define MUTEX_TRYLOCK(m) (pthread_mutex_trylock(m) == 0)
#define MUTEX_UNLOCK(m) pthread_mutex_unlock(m)
#define MUTEX_DESTROY(m) pthread_mutex_destroy(m)
typedef pthread_rwlock_t tm_gate;
#define GATE_INIT PTHREAD_RWLOCK_INITIALIZER
#define GATE_SHARED(g) pthread_rwlock_rdlock(g)
#define GATE_SHARED_END(g) pthread_rwlock_unlock(g)
#define GATE_ALONE(g) pthread_rwlock_wrlock(g)
#define GATE_ALONE_END(g) pthread_rwlock_unlock(g)
#endif

/* One cache per native environment, shared by every Env (thread) using it
 * (docs/cache.md, "Threads"). The gate orders the rare changes of which cache
 * an environment has (tm_cache_open joining or installing, tm_cache_close
 * leaving or removing, tm_cache_env_closing) against commits: every commit
 * wrapper holds it shared from tm_cache_of until tm_cache_confirm, so an
 * environment's relocation callback never changes during a commit of any
 * thread, and a cache is never freed between a commit and its confirmation.
 * Lookups never take it. */
static tm_gate cache_gate = GATE_INIT;

/* --------------------------------------------------------------- types --- */

/* A mapping of a table's slot region in this process. Views are immutable and
 * freed only when the cache closes: a thread may still probe an older one. */
typedef struct ts_view {
  ts_bucket *b;
  uint32_t nb;     /* buckets */
  uint64_t region; /* the descriptor's region word it maps */
  size_t bytes;
  int mapped; /* a file mapping (else private memory owned by the cache) */
  struct ts_view *older;
} ts_view;

typedef struct tm_cache tm_cache;

typedef struct tm_ctable {
  tm_cache *cache;
  ts_desc *d;      /* in the shared directory, or `own` */
  ts_desc own;     /* a private descriptor (private cache, or a name too long for the directory) */
  int local;       /* d == &own: regions live in this process's memory */
  uint32_t dbi;
  ts_view *view;   /* the current mapping (atomic pointer) */
  /* statistics, written by every lookup: kept a cache line away from what lookups read (threads share them) */
  char pad_[64];
  uint64_t hits, misses, invalidations, evictions;
  struct tm_ctable *next;
} tm_ctable;

struct tm_cache {
  MDBX_env *env;
  const uint8_t *base; /* where page 0 is mapped in this process */
  size_t limit;        /* length of the mapping */
  uint32_t pageshift, pagesize;
  ts_header *h;        /* shared (the sidecar) or private */
  uint64_t *retired;   /* retired[pgno]: txnid of the last published commit that retired the page */
  size_t cover;        /* entries of retired[] */
  size_t npages;       /* pages that may be cached here: retired[] and this process's mapping cover them */
  ts_file *file;       /* NULL: private */
  size_t hbytes, rbytes; /* private header and retired[] sizes */
  int shared;
  int shared_err;      /* why a shared cache was asked for and not had (errno), else 0 */
  uint32_t disabled;   /* checks turned off by tm_cache_test_disable (negative controls only) */
  tm_mutex mu;         /* this process's table list, views and private regions */
  tm_mutex rare;       /* with the sidecar's lock: directory entries and new regions (lock_rare) */
  void **blocks;       /* private regions: region block b is blocks[b - 1] */
  size_t *block_bytes;
  uint32_t nblocks, cblocks;
  tm_ctable *tables;
  uint32_t users; /* CacheStates (one per Env) using it; guarded by cache_gate */
  int asked;      /* the mode asked for by the Env that made it (shared 1, private 0) */
};

#define MAX_LOAD 0.75
#define GROWTH 1.5
enum { OVERFLOW_BIT = 2, SEQ_STEP = 4, PROBE_MAX = 64 };

/* Checks a negative control can turn off (tm_cache_test_disable): each one
 * must be load-bearing, so turning it off must make the tests fail. */
enum {
  TC_TEST_NO_VERSION = 1,  /* check 1: version <= snapshot */
  TC_TEST_NO_RETIRED = 2,  /* check 2: not retired by a published commit at or before the snapshot */
  TC_TEST_NO_HEADER = 4,   /* check 3: the page header still says the version, a plain leaf */
  TC_TEST_NO_KEY = 8,      /* check 4: the key bytes on the page are the key's */
  TC_TEST_NO_SYNC = 16,    /* tm_cache_sync: commits not published (foreign writers) drop the tables they changed */
  TC_TEST_ONE_HASH = 32,   /* every key of a length hashes alike: each lookup meets other keys' entries */
  TC_TEST_NO_PUBLISH = 64, /* this process's commits confirm their txnids but publish no retirements */
};

static inline uint64_t tc_key_hash(const tm_cache *c, const uint8_t *key, uint32_t klen) {
  return unlikely(c->disabled & TC_TEST_ONE_HASH) ? (uint64_t)klen * 0x9e3779b97f4a7c15ull : tc_hash(key, klen);
}
static inline uint16_t tag_of(uint64_t h) { return (uint16_t)h ? (uint16_t)h : 1; }
static inline uint32_t home_of(uint64_t h, uint32_t nb) { return (uint32_t)(((h >> 32) * nb) >> 32); }

/* ------------------------------------------------------------- regions --- */

static inline size_t region_bytes(uint32_t nb) { return (size_t)nb * sizeof(ts_bucket); }

/* A new zeroed region of nb buckets for t: its region word, or 0. Under the lock. */
static uint64_t region_new(tm_ctable *t, uint32_t nb) {
  tm_cache *c = t->cache;
  if (!t->local) {
    const uint64_t block = ts_file_grow(c->file, region_bytes(nb));
    return block ? block << 32 | nb : 0;
  }
  if (c->nblocks == c->cblocks) {
    const uint32_t n = c->cblocks ? 2 * c->cblocks : 16;
    void **b = realloc(c->blocks, n * sizeof(void *));
    if (!b)
      return 0;
    c->blocks = b;
    size_t *s = realloc(c->block_bytes, n * sizeof(size_t));
    if (!s)
      return 0;
    c->block_bytes = s;
    c->cblocks = n;
  }
  size_t bytes = region_bytes(nb);
  void *p = big_alloc(&bytes);
  if (!p)
    return 0;
  c->blocks[c->nblocks] = p;
  c->block_bytes[c->nblocks] = bytes;
  c->nblocks++;
  return (uint64_t)c->nblocks << 32 | nb;
}

/* Makes t's view match its descriptor's region (another process may have
 * grown it). The caller holds the cache's mutex. */
static int view_refresh_locked(tm_ctable *t) {
  const uint64_t region = LOAD_ACQ(&t->d->region);
  ts_view *v = LOAD(&t->view);
  if (v && v->region == region)
    return MDBX_SUCCESS;
  tm_cache *c = t->cache;
  ts_view *n = calloc(1, sizeof(*n));
  if (!n)
    return MDBX_ENOMEM;
  n->nb = (uint32_t)region;
  n->region = region;
  n->bytes = region_bytes(n->nb);
  if (t->local)
    n->b = c->blocks[(region >> 32) - 1];
  else {
    n->b = ts_file_map(c->file, region >> 32, n->bytes);
    n->mapped = 1;
  }
  if (!n->b) {
    free(n);
    return MDBX_ENOMEM;
  }
  n->older = v;
  STORE_REL(&t->view, n);
  return MDBX_SUCCESS;
}

static int view_refresh(tm_ctable *t) {
  if (LOAD_ACQ(&t->view) && LOAD_ACQ(&t->view)->region == LOAD_ACQ(&t->d->region))
    return MDBX_SUCCESS;
  MUTEX_LOCK(&t->cache->mu);
  const int rc = view_refresh_locked(t);
  MUTEX_UNLOCK(&t->cache->mu);
  return rc;
}

/* The rare changes (a directory entry, a new region) take the process's
 * `rare` mutex, then the sidecar's mutex: the file lock belongs to the open
 * file, so it keeps other processes out but not this one's other threads. */
static void lock_rare(tm_cache *c) {
  MUTEX_LOCK(&c->rare);
  if (c->file)
    ts_file_lock(c->file);
}
static void unlock_rare(tm_cache *c) {
  if (c->file)
    ts_file_unlock(c->file);
  MUTEX_UNLOCK(&c->rare);
}

/* ------------------------------------------------------------- buckets --- */

/* A consistent copy of a bucket (the seqlock read): 0 if it is being written. */
typedef struct {
  uint64_t word;
  uint16_t tag[TS_WAYS];
  uint32_t pgno[TS_WAYS];
  uint64_t loc[TS_WAYS];
} bucket_copy;

static inline int bucket_read(const ts_bucket *b, bucket_copy *o) {
  const uint64_t w1 = LOAD_ACQ(&b->word);
  if (w1 & 1)
    return 0;
  for (int i = 0; i < TS_WAYS; i++) {
    o->tag[i] = LOAD(&b->tag[i]);
    o->pgno[i] = LOAD(&b->pgno[i]);
    o->loc[i] = LOAD(&b->loc[i]);
  }
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  if (LOAD(&b->word) != w1)
    return 0;
  o->word = w1;
  return 1;
}

/* Takes a bucket's writer lock (never waits: a busy bucket is left alone);
 * returns the word it held, or 1 if busy. */
static inline uint64_t bucket_lock(ts_bucket *b) {
  uint64_t w = LOAD(&b->word);
  if ((w & 1) || !__atomic_compare_exchange_n(&b->word, &w, w | 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
    return 1;
  __atomic_thread_fence(__ATOMIC_RELEASE); /* the slots' stores below come after the odd word for any reader */
  return w;
}

/* Releases it: `changed` bumps the sequence (readers that overlapped retry). */
static inline void bucket_unlock(ts_bucket *b, uint64_t w, uint32_t gen, int overflow, int changed) {
  uint32_t low = (uint32_t)w & ~(uint32_t)3;
  if (changed)
    low += SEQ_STEP;
  if (overflow)
    low |= OVERFLOW_BIT;
  STORE_REL(&b->word, (uint64_t)gen << 32 | low);
}

static void tc_drop_desc(ts_desc *d) {
  __atomic_fetch_add(&d->gen, 1, __ATOMIC_RELEASE);
  STORE(&d->count, 0);
}

static void tc_drop(tm_ctable *t) {
  const int64_t n = LOAD(&t->d->count);
  if (n > 0)
    STORE(&t->invalidations, LOAD(&t->invalidations) + (uint64_t)n);
  tc_drop_desc(t->d);
}

/* Removes the entry (tag, pgno, loc) from bucket b if it is still there. */
static void tc_remove(tm_ctable *t, ts_bucket *b, uint16_t tag, uint32_t pgno, uint64_t loc) {
  const uint64_t w = bucket_lock(b);
  if (w == 1)
    return;
  const uint32_t gen = LOAD(&t->d->gen);
  int changed = 0;
  if ((uint32_t)(w >> 32) == gen)
    for (int i = 0; i < TS_WAYS; i++)
      if (LOAD(&b->tag[i]) == tag && LOAD(&b->pgno[i]) == pgno && LOAD(&b->loc[i]) == loc) {
        STORE(&b->tag[i], 0);
        __atomic_fetch_sub(&t->d->count, 1, __ATOMIC_RELAXED);
        changed = 1;
        break;
      }
  bucket_unlock(b, w, (uint32_t)(w >> 32), (w & OVERFLOW_BIT) != 0, changed);
}

static void tc_grow(tm_ctable *t, ts_view *v, uint64_t snap);

/* Remembers where a key lives (the caller found no entry of it that it could
 * not use). Only a snapshot at or after the fence may insert: it is read under
 * the bucket's lock, so a drop that raised the fence either comes before (the
 * insert is refused) or finds the entry in a bucket of the old generation. */
static void tc_insert(tm_ctable *t, ts_view *v, uint64_t h, uint32_t pgno, uint64_t loc, uint64_t snap) {
  const tm_cache *c = t->cache;
  ts_desc *d = t->d;
  const uint16_t tag = tag_of(h);
  const uint32_t home = home_of(h, v->nb);
  const int full = d->max && LOAD(&d->count) >= (int64_t)d->max;
  for (uint32_t k = 0; k < PROBE_MAX; k++) {
    uint32_t i = home + k;
    if (i >= v->nb)
      i -= v->nb;
    ts_bucket *b = &v->b[i];
    const uint64_t w = bucket_lock(b);
    if (w == 1)
      return;
    const uint32_t gen = LOAD_ACQ(&d->gen);
    if (snap < LOAD_ACQ(&c->h->fence)) {
      bucket_unlock(b, w, (uint32_t)(w >> 32), (w & OVERFLOW_BIT) != 0, 0);
      return;
    }
    int overflow = (w & OVERFLOW_BIT) != 0, changed = 0;
    if ((uint32_t)(w >> 32) != gen) {
      /* a bucket of an older generation: empty */
      for (int j = 0; j < TS_WAYS; j++)
        STORE(&b->tag[j], 0);
      overflow = 0;
      changed = 1;
    }
    int slot = -1;
    if (full) {
      /* bounded and full: an entry of the home bucket makes room */
      const int from = (int)((w >> 2) & 3);
      for (int s = 0; s < TS_WAYS && slot < 0; s++)
        if (LOAD(&b->tag[(from + s) % TS_WAYS]))
          slot = (from + s) % TS_WAYS;
      if (slot >= 0) {
        BUMP(&t->evictions);
        STORE(&b->tag[slot], tag);
        STORE(&b->pgno[slot], pgno);
        STORE(&b->loc[slot], loc);
        changed = 1;
      }
      bucket_unlock(b, w, gen, overflow, changed);
      return;
    }
    for (int j = 0; j < TS_WAYS && slot < 0; j++)
      if (LOAD(&b->tag[j]) == 0)
        slot = j;
    if (slot >= 0) {
      __atomic_fetch_add(&d->count, 1, __ATOMIC_RELAXED);
      STORE(&b->tag[slot], tag);
      STORE(&b->pgno[slot], pgno);
      STORE(&b->loc[slot], loc);
      bucket_unlock(b, w, gen, overflow, 1);
      if (!d->max && LOAD(&d->count) > (int64_t)((double)v->nb * TS_WAYS * MAX_LOAD))
        tc_grow(t, v, snap);
      return;
    }
    if (k == PROBE_MAX - 1) {
      bucket_unlock(b, w, gen, overflow, changed); /* every bucket of the probe is full: not cached */
      return;
    }
    /* full: the key goes to a later bucket, and lookups must look there too */
    bucket_unlock(b, w, gen, 1, changed || !overflow);
  }
}

/* Moves an unbounded table to a region GROWTH times larger, carrying its
 * entries over. One process at a time (the rare-changes lock, not waited
 * for); others switch to the new region when their next transaction starts
 * (entries they insert into the old one meanwhile are lost: a cache may
 * forget). The old region's memory is given back. */
static void tc_grow(tm_ctable *t, ts_view *v, uint64_t snap) {
  tm_cache *c = t->cache;
  ts_desc *d = t->d;
  if (!MUTEX_TRYLOCK(&c->rare))
    return;
  const int file = c->file && !t->local;
  if (file && !ts_file_trylock(c->file)) {
    MUTEX_UNLOCK(&c->rare);
    return;
  }
  ts_bucket *nbk = NULL;
  if (LOAD(&d->region) != v->region)
    goto out; /* grown already */
  const double want = (double)v->nb * GROWTH + 1;
  const uint32_t nb = want > (double)(UINT32_MAX / 2) ? UINT32_MAX / 2 : (uint32_t)want;
  uint64_t region = 0;
  int mapped = 0;
  if (nb > v->nb) {
    if (t->local) {
      MUTEX_LOCK(&c->mu);
      region = region_new(t, nb);
      if (region)
        nbk = c->blocks[(region >> 32) - 1];
      MUTEX_UNLOCK(&c->mu);
    } else if ((region = region_new(t, nb)) != 0) {
      nbk = ts_file_map(c->file, region >> 32, region_bytes(nb));
      mapped = 1;
    }
  }
  if (nbk) {
    const uint32_t gen = LOAD_ACQ(&d->gen);
    int64_t count = 0;
    for (uint32_t i = 0; i < nb; i++)
      STORE(&nbk[i].word, (uint64_t)gen << 32);
    for (uint32_t i = 0; i < v->nb; i++) {
      bucket_copy o;
      if (!bucket_read(&v->b[i], &o) || (uint32_t)(o.word >> 32) != gen)
        continue;
      for (int j = 0; j < TS_WAYS; j++) {
        if (!o.tag[j])
          continue;
        /* only 16 bits of the hash are kept: the key is read from the page (which belongs to this reader's
         * snapshot when checks 1 to 3 pass) and hashed again; other entries are left behind */
        const uint64_t ver = o.loc[j] >> 16;
        const uint32_t off = (uint32_t)(o.loc[j] & 0xffff), pgno = o.pgno[j];
        if (ver > snap || pgno >= c->npages)
          continue;
        const uint64_t rt = LOAD(&c->retired[pgno]);
        if (rt > ver && snap >= rt)
          continue;
        const uint8_t *page = LOAD(&c->base) + ((size_t)pgno << c->pageshift);
        if (ld64(page) != ver || ld16(page + 10) != P_LEAF || (size_t)off + NODE_HEADER > c->pagesize)
          continue;
        const uint32_t klen = ld16(page + off + 6);
        if ((size_t)off + NODE_HEADER + klen > c->pagesize)
          continue;
        const uint64_t kh = tc_key_hash(c, page + off + NODE_HEADER, klen);
        if (tag_of(kh) != o.tag[j])
          continue;
        uint32_t home = home_of(kh, nb);
        for (uint32_t k = 0; k < PROBE_MAX; k++, home = home + 1 == nb ? 0 : home + 1) {
          ts_bucket *b = &nbk[home];
          int slot = -1;
          for (int s = 0; s < TS_WAYS; s++)
            if (b->tag[s] == 0) {
              slot = s;
              break;
            }
          if (slot < 0) {
            b->word |= OVERFLOW_BIT;
            continue;
          }
          b->tag[slot] = o.tag[j];
          b->pgno[slot] = o.pgno[j];
          b->loc[slot] = o.loc[j];
          count++;
          break;
        }
      }
    }
    if (mapped)
      ts_file_unmap(nbk, region_bytes(nb));
    STORE(&d->count, count);
    STORE_REL(&d->region, region);
    if (!t->local)
      ts_file_release(c->file, v->region >> 32, region_bytes(v->nb));
  }
out:
  if (file)
    ts_file_unlock(c->file);
  MUTEX_UNLOCK(&c->rare);
  if (nbk)
    view_refresh(t);
}

/* ------------------------------------------------------------ validation --- */

enum { TC_HIT, TC_OTHER, TC_STALE, TC_NEWER };
/* Checks the entry (pgno, loc) for `key` at snapshot `snap` (see the top of
 * the file). TC_HIT: *val and *vlen say where the value is. TC_OTHER: the entry
 * is valid but holds another key (equal tags). TC_STALE: the entry is valid for
 * no reader at this snapshot or later: remove it. TC_NEWER: the entry is for a
 * newer page version than this snapshot: this reader cannot use it, and its page
 * may not be safe to read here, so it is not known whose key it is. */
static inline int tc_check(const tm_cache *c, uint32_t pgno, uint64_t loc, const uint8_t *key, uint32_t klen,
                           uint64_t snap, const uint8_t **val, uint32_t *vlen) {
  const uint64_t ver = loc >> 16;
  const uint32_t off = (uint32_t)(loc & 0xffff), off_ = c->disabled;
  if (ver > snap && !(off_ & TC_TEST_NO_VERSION))
    return TC_NEWER;
  if (pgno >= c->npages)
    return TC_STALE;
  const uint64_t rt = LOAD(&c->retired[pgno]);
  if (rt > ver && snap >= rt && !(off_ & TC_TEST_NO_RETIRED))
    return TC_STALE;
  const uint8_t *page = LOAD(&c->base) + ((size_t)pgno << c->pageshift);
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

/* The whole lookup: the home bucket, and the next ones while they overflowed. */
static __attribute__((noinline)) void tc_probe_slow(tm_ctable *t, ts_view *v, uint64_t h, const uint8_t *key,
                                                    uint32_t klen, uint64_t snap, tc_found *f) {
  const tm_cache *c = t->cache;
  const uint16_t tag = tag_of(h);
  const uint32_t gen = LOAD(&t->d->gen);
  uint32_t i = home_of(h, v->nb);
  f->hit = 0;
  f->may_insert = 1;
  for (uint32_t k = 0; k < PROBE_MAX; k++) {
    ts_bucket *b = &v->b[i];
    bucket_copy o;
    int ok = 0;
    for (int tries = 0; tries < 4 && !(ok = bucket_read(b, &o)); tries++)
      ;
    if (!ok) {
      f->may_insert = 0; /* busy: it may hold the key */
    } else {
      if ((uint32_t)(o.word >> 32) != gen)
        return; /* empty, and nothing overflowed from it in this generation */
      for (int j = 0; j < TS_WAYS; j++) {
        if (o.tag[j] != tag)
          continue;
        const int r = tc_check(c, o.pgno[j], o.loc[j], key, klen, snap, &f->val, &f->vlen);
        if (r == TC_HIT) {
          f->hit = 1;
          return;
        }
        if (r == TC_STALE) {
          BUMP(&t->invalidations);
          tc_remove(t, b, tag, o.pgno[j], o.loc[j]);
        } else if (r == TC_NEWER)
          f->may_insert = 0;
      }
      if (!(o.word & OVERFLOW_BIT))
        return;
    }
    if (++i == v->nb)
      i = 0;
  }
}

/* The common case first: the home bucket holds a hit. Kept small and
 * branch-predictable, so that the CPU runs ahead into the next key while this
 * one's page is still being fetched; anything else goes the long way. */
static inline void tc_probe(tm_ctable *t, ts_view *v, uint64_t h, const uint8_t *key, uint32_t klen, uint64_t snap,
                            tc_found *f) {
  const ts_bucket *b = &v->b[home_of(h, v->nb)];
  const uint16_t tag = tag_of(h);
  const uint64_t w1 = LOAD_ACQ(&b->word);
  int j = 0;
  while (j < TS_WAYS && LOAD(&b->tag[j]) != tag)
    j++;
  if (likely(j < TS_WAYS)) {
    const uint32_t pgno = LOAD(&b->pgno[j]);
    const uint64_t loc = LOAD(&b->loc[j]);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (likely(!(w1 & 1) && (uint32_t)(w1 >> 32) == LOAD(&t->d->gen) && LOAD(&b->word) == w1) &&
        likely(tc_check(t->cache, pgno, loc, key, klen, snap, &f->val, &f->vlen) == TC_HIT)) {
      f->hit = 1;
      return;
    }
  }
  tc_probe_slow(t, v, h, key, klen, snap, f);
}

/* --------------------------------------------------------------- misses --- */

/* mdbx_get, then remember where the pair lives when the location can be cached:
 * a plain node on a committed leaf page of this snapshot (not a large value, not
 * a dirty page of a write transaction). */
static __attribute__((noinline)) int tc_miss(tm_ctable *t, ts_view *v, const MDBX_txn *txn, uint64_t h,
                                             const uint8_t *key, uint32_t klen, uint64_t snap, int may_insert,
                                             MDBX_val *d) {
  MDBX_val k = {(void *)key, klen};
  const int rc = mdbx_get(txn, t->dbi, &k, d);
  BUMP(&t->misses);
  const tm_cache *c = t->cache;
  if (rc != MDBX_SUCCESS || !may_insert || snap < LOAD(&c->h->fence))
    return rc;
  const uintptr_t p = (uintptr_t)d->iov_base, base = (uintptr_t)LOAD(&c->base);
  if (p < base || p - base >= c->limit)
    return rc; /* a dirty page in the heap (write transaction) */
  const size_t at = p - base;
  const uint32_t pgno = (uint32_t)(at >> c->pageshift);
  const uint8_t *page = (const uint8_t *)base + ((size_t)pgno << c->pageshift);
  const size_t data_off = at & (c->pagesize - 1);
  if (pgno >= c->npages || ld16(page + 10) != P_LEAF || data_off < PAGE_HEADER + NODE_HEADER + (size_t)klen)
    return rc;
  const uint64_t ver = ld64(page);
  if (ver > snap || ver >= (uint64_t)1 << 48)
    return rc; /* newer than the snapshot: a dirty page of a write transaction with MDBX_WRITEMAP */
  const uint8_t *node = page + data_off - NODE_HEADER - klen;
  if (node[4] != 0 || ld16(node + 6) != klen || ld32(node) != d->iov_len)
    return rc;
  if (unlikely(LOAD(&t->d->region) != v->region)) {
    /* another process (or thread) grew the table since this view was taken: insert where everyone looks now */
    if (view_refresh(t) != MDBX_SUCCESS)
      return rc;
    v = LOAD_ACQ(&t->view);
  }
  tc_insert(t, v, h, pgno, ver << 16 | (uint64_t)(node - page), snap);
  return rc;
}

/* ------------------------------------------------- commits: publishing --- */

/* The commits of this thread's current commit call whose retirements were
 * published (a defrag run makes several); tm_txn_commit confirms them once
 * libmdbx says the commit succeeded. */
static _Thread_local struct {
  tm_cache *c;
  uint64_t txnid;
} tl_pend[64];
static _Thread_local int tl_n;

/* The relocation callback, inside the commit, before the new meta page makes
 * it visible: every retired page gets the commit's txnid in retired[]
 * (relaxed stores), then the commit's ring entry says "pending". */
static void tc_reloc(void *ctx, uint64_t txnid, MDBX_relocation_kind_t kind, uint32_t pgno, uint32_t npages) {
  tm_cache *c = ctx;
  if (kind == MDBX_RELOCATION_RETIRED) {
    if (c->disabled & TC_TEST_NO_PUBLISH)
      return;
    const size_t end = (size_t)pgno + npages < c->npages ? (size_t)pgno + npages : c->npages;
    /* pages beyond retired[] are never cached (tc_miss): nothing to record */
    for (size_t p = pgno; p < end; p++)
      STORE(&c->retired[p], txnid);
  } else if (kind == MDBX_RELOCATION_COMMITTED) {
    STORE_REL(&c->h->ring[txnid % TS_RING], txnid | TS_PENDING);
    if (tl_n < (int)(sizeof(tl_pend) / sizeof(tl_pend[0]))) {
      tl_pend[tl_n].c = c;
      tl_pend[tl_n].txnid = txnid;
      tl_n++;
    }
  }
}

/* The cache of an environment, or NULL. Called by the commit wrappers before
 * they commit: what an earlier commit call of this thread left unconfirmed
 * (a commit made without the wrappers) stays unconfirmed. */
tm_cache *tm_cache_of(MDBX_env *env) {
  void *ctx = NULL;
  tl_n = 0;
  GATE_SHARED(&cache_gate); /* released by tm_cache_confirm, which the wrappers always call */
  return env && mdbx_env_get_relocation_func(env, &ctx) == tc_reloc ? ctx : NULL;
}

/* Set by a change the retirements do not describe (a table renamed: its
 * slots' pages stay live under another name): this thread's next commit is
 * left unconfirmed, so every process treats it as a foreign commit and drops
 * the tables it changed or removed, behind a fence. */
static _Thread_local int tl_taint;
TM_API void tm_cache_taint(void) { tl_taint = 1; }

/* Called by the commit wrappers after libmdbx returned: a successful commit's
 * ring entries become "published" (release stores: whoever reads one with
 * acquire sees the retired[] stores made before it). */
void tm_cache_confirm(tm_cache *c, int ok) {
  if (tl_taint) {
    ok = 0;
    tl_taint = 0;
  }
  for (int i = 0; i < tl_n && c; i++) {
    if (tl_pend[i].c != c || !ok)
      continue;
    const uint64_t t = tl_pend[i].txnid;
    STORE_REL(&c->h->ring[t % TS_RING], t);
    uint64_t prev = t - 1;
    __atomic_compare_exchange_n(&c->h->acct, &prev, t, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
  }
  tl_n = 0;
  GATE_SHARED_END(&cache_gate); /* taken by tm_cache_of */
}

/* ----------------------------------------------------------- environment --- */

/* Re-reads where the data file is mapped (slots hold page numbers, so a move
 * costs nothing but this). Returns an MDBX error code. */
static int tc_remap(tm_cache *c) {
  void *base = NULL;
  size_t limit = 0;
  int rc = mdbx_env_get_mapping(c->env, &base, &limit, NULL);
  if (rc != MDBX_SUCCESS)
    return rc;
  STORE(&c->limit, limit);
  STORE(&c->base, (const uint8_t *)base);
  /* another process may have made the sidecar for a larger map than this one */
  const size_t mapped = limit >> c->pageshift;
  STORE(&c->npages, mapped < c->cover ? mapped : c->cover);
  return MDBX_SUCCESS;
}

/* Where the sidecar of an environment goes: beside its lock file. */
static int sidecar_path(MDBX_env *env, char *out, size_t cap) {
  const char *path = NULL;
  unsigned flags = 0;
  if (mdbx_env_get_path(env, &path) != MDBX_SUCCESS || !path || mdbx_env_get_flags(env, &flags) != MDBX_SUCCESS)
    return 0;
  const int n = snprintf(out, cap, (flags & MDBX_NOSUBDIR) ? "%s-tmcache" : "%s/mdbx.tmcache", path);
  return n > 0 && (size_t)n < cap;
}

static void tc_free(tm_cache *c) {
  for (tm_ctable *t = c->tables, *next; t; t = next) {
    next = t->next;
    for (ts_view *v = t->view, *o; v; v = o) {
      o = v->older;
      if (v->mapped)
        ts_file_unmap(v->b, v->bytes);
      free(v);
    }
    free(t);
  }
  for (uint32_t i = 0; i < c->nblocks; i++)
    big_free(c->blocks[i], c->block_bytes[i]);
  free(c->blocks);
  free(c->block_bytes);
  if (c->file)
    ts_file_close(c->file);
  else {
    big_free(c->h, c->hbytes);
    big_free(c->retired, c->rbytes);
  }
  MUTEX_DESTROY(&c->mu);
  MUTEX_DESTROY(&c->rare);
  free(c);
}

/* Turns the cache on for an environment: shared (the sidecar beside the lock
 * file) when `shared` is set and the platform, the file system and the
 * environment (not read-only) allow it, else private to this process. */
static tm_cache *tc_open(MDBX_env *env, int32_t shared, int32_t *rc);

/* The cache of an environment for one more Env (thread): the one another Env
 * made already (a reference more), or a new one (its relocation callback
 * installed). TM_CACHE_MODE: the environment's cache is of the other mode
 * (shared or private) than asked for. */
TM_API tm_cache *tm_cache_open(MDBX_env *env, int32_t shared, int32_t *rc) {
  GATE_ALONE(&cache_gate); /* no commit of any thread runs while the callback is installed */
  void *ctx = NULL;
  tm_cache *c = mdbx_env_get_relocation_func(env, &ctx) == tc_reloc ? ctx : NULL;
  if (c) {
    if (c->asked != (shared != 0)) {
      *rc = TM_CACHE_MODE;
      c = NULL;
    } else {
      c->users++;
      *rc = 0;
    }
  } else {
    c = tc_open(env, shared, rc);
    if (c) {
      c->asked = shared != 0;
      c->users = 1;
    }
  }
  GATE_ALONE_END(&cache_gate);
  return c;
}

static tm_cache *tc_open(MDBX_env *env, int32_t shared, int32_t *rc) {
  tm_cache *c = calloc(1, sizeof(*c));
  if (!c) {
    *rc = tm_rc(MDBX_ENOMEM);
    return NULL;
  }
  MUTEX_INIT(&c->mu);
  MUTEX_INIT(&c->rare);
  c->env = env;
  MDBX_envinfo info;
  unsigned flags = 0;
  int err = mdbx_env_info_ex(env, NULL, &info, sizeof(info));
  if (err == MDBX_SUCCESS)
    err = mdbx_env_get_flags(env, &flags);
  if (err == MDBX_SUCCESS) {
    c->pagesize = info.mi_dxb_pagesize;
    while ((1u << c->pageshift) < c->pagesize)
      c->pageshift++;
    err = tc_remap(c);
  }
  if (err == MDBX_SUCCESS) {
    uint64_t npages = c->limit >> c->pageshift;
    if (npages > ((uint64_t)1 << 31))
      npages = (uint64_t)1 << 31;
#if !defined(_WIN32) && !defined(_WIN64)
    char path[4200];
    mdbx_filehandle_t fd;
    struct stat st;
    if (shared && (flags & MDBX_RDONLY))
      c->shared_err = EROFS;
    else if (shared && sidecar_path(env, path, sizeof(path)) && mdbx_env_get_fd(env, &fd) == MDBX_SUCCESS &&
             fstat(fd, &st) == 0) {
      c->file = ts_file_open(path, (uint64_t)st.st_dev, (uint64_t)st.st_ino, c->pagesize, npages,
                             (int)(st.st_mode & 0666), &c->shared_err);
    } else if (shared)
      c->shared_err = EINVAL;
#else
    if (shared)
      c->shared_err = ENOSYS;
#endif
    if (c->file) {
      c->h = ts_file_header(c->file);
      c->retired = ts_file_retired(c->file);
      c->cover = c->h->npages;
      c->shared = 1;
    } else {
      c->hbytes = sizeof(ts_header);
      c->h = big_alloc(&c->hbytes);
      c->rbytes = npages * sizeof(uint64_t);
      c->retired = c->rbytes ? big_alloc(&c->rbytes) : NULL;
      if (!c->h || (c->rbytes && !c->retired))
        err = MDBX_ENOMEM;
      else
        c->cover = npages;
    }
  }
  if (err == MDBX_SUCCESS)
    err = tc_remap(c); /* npages, now that retired[] is there */
  if (err == MDBX_SUCCESS)
    err = mdbx_env_set_relocation_func(env, tc_reloc, c);
  if (err != MDBX_SUCCESS) {
    tc_free(c);
    *rc = tm_rc(err);
    return NULL;
  }
  *rc = 0;
  return c;
}

/* An Env lets go of the cache (its tables were closed with tm_ctable_close
 * first); the last one turns it off and frees this process's part of it. */
TM_API int tm_cache_close(MDBX_env *env, tm_cache *c) {
  int rc = MDBX_SUCCESS;
  GATE_ALONE(&cache_gate);
  if (c->users > 0)
    c->users--;
  if (c->users == 0) {
    void *ctx = NULL;
    if (env && mdbx_env_get_relocation_func(env, &ctx) == tc_reloc && ctx == c)
      rc = mdbx_env_set_relocation_func(env, NULL, NULL);
    if (rc == MDBX_SUCCESS)
      tc_free(c);
    else
      c->users = 1; /* still installed: freed when the environment closes (tm_cache_env_closing) */
  }
  GATE_ALONE_END(&cache_gate);
  return tm_rc(rc);
}

/* The environment is being closed by its last Env: a cache still on it (the
 * reference of an Env whose thread ended without closing it, a terminated
 * Worker) goes with it. No other Env, and so no other thread, uses it. */
void tm_cache_env_closing(MDBX_env *env) {
  GATE_ALONE(&cache_gate);
  void *ctx = NULL;
  if (env && mdbx_env_get_relocation_func(env, &ctx) == tc_reloc && ctx) {
    mdbx_env_set_relocation_func(env, NULL, NULL);
    tc_free(ctx);
  }
  GATE_ALONE_END(&cache_gate);
}

/* 1: shared between processes (the sidecar); 0: private to this process. out[0]: why not shared (errno, 0 if
 * it was not asked for), out[1]: the txnid up to which commits are accounted for, out[2]: the fence, out[3]: how
 * many times the sidecar was (re)initialised. */
TM_API int tm_cache_info(tm_cache *c, double *out) {
  out[0] = c->shared_err;
  out[1] = (double)LOAD(&c->h->acct);
  out[2] = (double)LOAD(&c->h->fence);
  out[3] = (double)c->h->resets;
  return c->shared;
}

/* --------------------------------------------------- foreign commits --- */

typedef struct {
  ts_desc *d[TS_TABLES + 64];
  uint8_t seen[TS_TABLES + 64];
  int n;
  uint64_t since;
} foreign_ctx;

static int foreign_table(void *ctx, const MDBX_txn *txn, const MDBX_val *name, MDBX_db_flags_t flags,
                         const struct MDBX_stat *stat, MDBX_dbi dbi) {
  (void)txn, (void)flags, (void)dbi;
  foreign_ctx *f = ctx;
  for (int i = 0; i < f->n; i++) {
    ts_desc *d = f->d[i];
    if (d->namelen == name->iov_len && memcmp(d->name, name->iov_base, name->iov_len) == 0) {
      f->seen[i] = 1;
      if (stat->ms_mod_txnid > f->since)
        tc_drop_desc(d);
    }
  }
  return MDBX_SUCCESS;
}

/* Commits in (since, snap] were not all published: some writer that does not
 * publish (stock libmdbx, a process without the cache, a commit that crashed
 * before confirming) may have moved any page. Every cached table it changed
 * (mod_txnid) or removed is dropped, for every process, and the fence keeps
 * older snapshots (which may know the old locations) from inserting again. */
static void tc_foreign(tm_cache *c, const MDBX_txn *txn, uint64_t since, uint64_t snap) {
  store_max(&c->h->fence, snap, __ATOMIC_SEQ_CST);
  foreign_ctx f;
  f.n = 0;
  f.since = since;
  ts_desc *main_d[TS_TABLES + 64];
  int nmain = 0;
  for (int i = 0; i < TS_TABLES && c->file; i++) {
    ts_desc *d = &c->h->tables[i];
    if (LOAD_ACQ(&d->state) != 1)
      continue;
    if (d->namelen == TS_MAIN)
      main_d[nmain++] = d;
    else
      f.d[f.n++] = d;
  }
  MUTEX_LOCK(&c->mu);
  for (tm_ctable *t = c->tables; t; t = t->next)
    if (t->local && f.n < TS_TABLES + 64 && nmain < TS_TABLES + 64) {
      if (t->d->namelen == TS_MAIN)
        main_d[nmain++] = t->d;
      else
        f.d[f.n++] = t->d;
    }
  MUTEX_UNLOCK(&c->mu);
  memset(f.seen, 0, sizeof(f.seen));
  const int rc = mdbx_enumerate_tables(txn, foreign_table, &f);
  for (int i = 0; i < f.n; i++)
    if (!f.seen[i] || rc != MDBX_SUCCESS)
      tc_drop_desc(f.d[i]);
  if (nmain) {
    MDBX_stat st;
    const int mr = mdbx_dbi_stat(txn, 1 /* MAIN_DBI */, &st, sizeof(st));
    for (int i = 0; i < nmain; i++)
      if (mr != MDBX_SUCCESS || st.ms_mod_txnid > since)
        tc_drop_desc(main_d[i]);
  }
  store_max(&c->h->acct, snap, __ATOMIC_RELEASE);
}

/* Called when a transaction starts (or renews) on snapshot `snap`: re-reads
 * the mapping and the tables' regions, and makes sure every commit up to the
 * snapshot is accounted for. Returns the snapshot the cache may be used with
 * in this transaction: `snap`, or 0 while the newest commit is published but
 * not yet confirmed (its committer is between writing the meta page and
 * hearing that it succeeded): with 0 the cache answers nothing and inserts
 * nothing. Negative: an error. */
TM_API double tm_cache_sync(tm_cache *c, const MDBX_txn *txn, double snap_d) {
  const uint64_t snap = (uint64_t)snap_d;
  int rc = tc_remap(c);
  if (rc != MDBX_SUCCESS)
    return tm_rc(rc);
  MUTEX_LOCK(&c->mu);
  for (tm_ctable *t = c->tables; t && rc == MDBX_SUCCESS; t = t->next)
    rc = view_refresh_locked(t);
  MUTEX_UNLOCK(&c->mu);
  if (rc != MDBX_SUCCESS)
    return tm_rc(rc);
  if (c->disabled & TC_TEST_NO_SYNC)
    return snap_d;
  const uint64_t a = LOAD_ACQ(&c->h->acct);
  if (snap <= a)
    return snap_d;
  int foreign = snap - a > TS_RING;
  for (uint64_t t = a + 1; !foreign && t <= snap; t++) {
    const uint64_t e = LOAD_ACQ(&c->h->ring[t % TS_RING]);
    if (e == t)
      continue;
    if (e == (t | TS_PENDING) && t == snap)
      return 0;
    foreign = 1;
  }
  if (foreign)
    tc_foreign(c, txn, a, snap);
  else
    store_max(&c->h->acct, snap, __ATOMIC_RELEASE);
  return snap_d;
}

/* For negative controls only: turns off the checks in `mask` (TC_TEST_*), so
 * that a test can show each one is needed. Never called by the library. */
TM_API void tm_cache_test_disable(tm_cache *c, uint32_t mask) { c->disabled = mask; }

/* A table's cache: `max` entries at most (0: unbounded, growing as needed),
 * shared by every process of a shared cache that opens a table of that name
 * (name NULL, namelen TS_MAIN: the main table); the first one sizes it. */
TM_API tm_ctable *tm_ctable_open(tm_cache *c, uint32_t dbi, double max, const uint8_t *name, uint32_t namelen,
                                 int32_t *rc) {
  tm_ctable *t = calloc(1, sizeof(*t));
  if (!t) {
    *rc = tm_rc(MDBX_ENOMEM);
    return NULL;
  }
  t->cache = c;
  t->dbi = dbi;
  const uint32_t bound = max >= UINT32_MAX * MAX_LOAD ? (uint32_t)(UINT32_MAX * MAX_LOAD) : (uint32_t)max;
  /* a bounded table has room for `max` at the load an unbounded one grows at; an unbounded one starts small */
  uint32_t nb = bound ? (uint32_t)((double)bound / (TS_WAYS * MAX_LOAD)) + 1 : 256;
  if (nb < 1)
    nb = 1;
  int err = MDBX_SUCCESS;
  lock_rare(c);
  if (c->file && (namelen == TS_MAIN || namelen <= TS_NAME)) {
    ts_desc *free_d = NULL;
    for (int i = 0; i < TS_TABLES && !t->d; i++) {
      ts_desc *d = &c->h->tables[i];
      if (LOAD_ACQ(&d->state) != 1) {
        if (!free_d)
          free_d = d;
      } else if (d->namelen == namelen && (namelen == TS_MAIN || memcmp(d->name, name, namelen) == 0))
        t->d = d;
    }
    if (!t->d && free_d) {
      t->d = free_d;
      memset(free_d, 0, sizeof(*free_d));
      free_d->namelen = namelen;
      if (namelen != TS_MAIN)
        memcpy(free_d->name, name, namelen);
      free_d->max = bound;
      free_d->region = region_new(t, nb);
      if (!free_d->region)
        err = MDBX_ENOMEM;
      else
        STORE_REL(&free_d->state, 1);
    }
  }
  if (!t->d && err == MDBX_SUCCESS) {
    /* a private cache, a directory that is full, or a name too long for it */
    t->d = &t->own;
    t->local = 1;
    t->own.namelen = namelen;
    if (namelen != TS_MAIN)
      memcpy(t->own.name, name, namelen < TS_NAME ? namelen : TS_NAME);
    t->own.max = bound;
    MUTEX_LOCK(&c->mu);
    t->own.region = region_new(t, nb);
    MUTEX_UNLOCK(&c->mu);
    t->own.state = 1;
    if (!t->own.region)
      err = MDBX_ENOMEM;
  }
  unlock_rare(c);
  if (err == MDBX_SUCCESS)
    err = view_refresh(t);
  if (err != MDBX_SUCCESS) {
    free(t);
    *rc = tm_rc(err);
    return NULL;
  }
  MUTEX_LOCK(&c->mu);
  t->next = c->tables;
  c->tables = t;
  MUTEX_UNLOCK(&c->mu);
  *rc = 0;
  return t;
}

/* Forgets a table's cache in this process (its shared slots stay for the others). */
TM_API void tm_ctable_close(tm_ctable *t) {
  tm_cache *c = t->cache;
  MUTEX_LOCK(&c->mu);
  for (tm_ctable **p = &c->tables; *p; p = &(*p)->next)
    if (*p == t) {
      *p = t->next;
      break;
    }
  MUTEX_UNLOCK(&c->mu);
  for (ts_view *v = t->view, *o; v; v = o) {
    o = v->older;
    if (v->mapped)
      ts_file_unmap(v->b, v->bytes);
    free(v);
  }
  free(t);
}

/* Drops every entry (the table was cleared or dropped, ...), for every process. */
TM_API void tm_ctable_clear(tm_ctable *t) { tc_drop(t); }

/* out: hits, misses, invalidations, evictions (this process), entries, capacity, bytes (the table's, shared),
 * shared (1 or 0) */
TM_API void tm_ctable_stats(const tm_ctable *t, double *out) {
  const ts_view *v = LOAD_ACQ(&t->view);
  const int64_t n = LOAD(&t->d->count);
  out[0] = (double)LOAD(&t->hits);
  out[1] = (double)LOAD(&t->misses);
  out[2] = (double)LOAD(&t->invalidations);
  out[3] = (double)LOAD(&t->evictions);
  out[4] = n < 0 ? 0 : (double)n;
  out[5] = (double)v->nb * TS_WAYS;
  out[6] = (double)region_bytes(v->nb);
  out[7] = !t->local;
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
  const uint64_t h = tc_key_hash(t->cache, key, klen);
  ts_view *v = LOAD_ACQ(&t->view);
  tc_found f;
  tc_probe(t, v, h, key, klen, snap, &f);
  if (f.hit) {
    BUMP(&t->hits);
    if (f.vlen <= cap)
      memcpy(out, f.val, f.vlen);
    return (int)f.vlen;
  }
  const int rc = tc_miss(t, v, txn, h, key, klen, snap, f.may_insert, &d);
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
 * key j + 2 * PIPE and prefetches its home bucket; stage 2 finds the first slot
 * of key j + PIPE with its tag and prefetches what validating it reads (the
 * retired[] entry, the page header, the node and the value's start); stage 3
 * looks key j up (its bucket and page are in cache by now) and copies its
 * value. Every key's two dependent misses (bucket, then page) are thus issued
 * well before they are needed, and a steady number of them is in flight. */
enum { PIPE = 4, RING = 16 /* a power of two > 2 * PIPE */ };

/* The keys in flight. */
typedef struct {
  const uint8_t *key[RING];
  uint32_t klen[RING];
  uint64_t h[RING];
} tc_ring;

static inline void tc_stage1(const tm_ctable *t, const ts_view *v, tc_ring *r, uint32_t j, const uint8_t *key,
                             uint32_t klen) {
  const uint32_t x = j & (RING - 1);
  r->key[x] = key;
  r->klen[x] = klen;
  r->h[x] = tc_key_hash(t->cache, key, klen);
  prefetch(&v->b[home_of(r->h[x], v->nb)]);
}

static inline void tc_stage2(const tm_ctable *t, const ts_view *v, tc_ring *r, uint32_t j) {
  const uint32_t x = j & (RING - 1);
  const ts_bucket *b = &v->b[home_of(r->h[x], v->nb)];
  const uint16_t tag = tag_of(r->h[x]);
  const tm_cache *const c = t->cache;
  for (int i = 0; i < TS_WAYS; i++)
    if (LOAD(&b->tag[i]) == tag) {
      const uint32_t pgno = LOAD(&b->pgno[i]);
      if (pgno < c->npages) { /* a prefetch never faults, whatever the page */
        const uint8_t *page = LOAD(&c->base) + ((size_t)pgno << c->pageshift);
        const uint8_t *node = page + (LOAD(&b->loc[i]) & 0xffff);
        prefetch(&c->retired[pgno]);
        prefetch(page);
        prefetch(node);
        prefetch(node + 64);
      }
      return;
    }
}

/* Stage 3: the lookup of key j, then the tree if it missed. */
static inline int tc_stage3(tm_ctable *t, ts_view *v, const MDBX_txn *txn, uint64_t snap, tc_ring *r, uint32_t j,
                            const uint8_t **val, uint32_t *vlen) {
  const uint32_t x = j & (RING - 1);
  tc_found f;
  tc_probe(t, v, r->h[x], r->key[x], r->klen[x], snap, &f);
  if (likely(f.hit)) {
    BUMP(&t->hits);
    *val = f.val;
    *vlen = f.vlen;
    return MDBX_SUCCESS;
  }
  MDBX_val d;
  const int rc = tc_miss(t, v, txn, r->h[x], r->key[x], r->klen[x], snap, f.may_insert, &d);
  if (rc == MDBX_SUCCESS) {
    *val = d.iov_base;
    *vlen = (uint32_t)d.iov_len;
  }
  return rc;
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
  ts_view *v = LOAD_ACQ(&t->view);
  for (uint32_t i = first; i < n + 2 * PIPE; i++) {
    if (i < n) {
      uint32_t klen;
      const uint8_t *k = batch_key(keys, koff, ksize, i, &klen);
      tc_stage1(t, v, &r, i, k, klen);
    }
    if (i >= first + PIPE && i - PIPE < n)
      tc_stage2(t, v, &r, i - PIPE);
    if (i >= first + 2 * PIPE) {
      const uint32_t j = i - 2 * PIPE;
      const uint8_t *val = NULL;
      uint32_t vlen = 0;
      const int e = batch_emit(tc_stage3(t, v, txn, snap, &r, j, &val, &vlen), val, vlen, out, cap, &used, pos, j);
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
  ts_view *v = t ? LOAD_ACQ(&t->view) : NULL;
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
        tc_stage1(t, v, &r, i, ikey[i] + at, len);
      if (t && i >= PIPE && i - PIPE < m && (size_t)at + len <= iklen[i - PIPE])
        tc_stage2(t, v, &r, i - PIPE);
      if (i < 2 * PIPE)
        continue;
      const uint32_t j = i - 2 * PIPE;
      const uint8_t *val = NULL;
      uint32_t vlen = 0;
      int found = 0;
      if ((size_t)at + len <= iklen[j]) {
        int r2;
        if (t)
          r2 = tc_stage3(t, v, txn, snap, &r, j, &val, &vlen);
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
