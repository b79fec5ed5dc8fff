/* turbomdbx: order statistics over stock MDBX B-trees (docs/order-statistics.md).
 *
 * A committed page version is immutable: the page a branch node points to
 * never changes while the branch page version is part of a snapshot (a change
 * below a branch copies the branch too, up to the root). So the number of
 * entries under a branch page version never changes either. This file keeps,
 * per environment, a memo keyed by (pgno, page txnid) of every branch page
 * version it has needed: the running sums of its children's entry counts
 * (`cum[i]` = entries in children 0..i). With it
 *
 *   rank(key)  = sum over the path to key's leaf of cum[child - 1] + the
 *                entries before key on the leaf;
 *   count(range) = rank(end) - rank(start);
 *   at(index)  = a descent that binary-searches cum[] on each level;
 *
 * each one a descent of `height` pages, O(log n). A branch page version that
 * is not in the memo is computed from its children (their own memo entries,
 * or a leaf's header), and remembered: after a commit only the new versions on
 * the changed paths are computed, their unchanged children are memo hits.
 *
 * Pages come from mdbx_txn_page() (native/patches/0006), which resolves a
 * write transaction's dirty and spilled pages too. Only committed page
 * versions (header txnid < committed_below) enter the memo; a dirty branch of
 * a write transaction is computed for the call from its children and dropped.
 *
 * Dupsort tables: an entry is a key/value pair (every value counts), as
 * mdbx_dbi_stat's ms_entries; with OS_KEYS one entry per key. A dupsort
 * branch's memo entry holds both sums. A key's values are counted from its
 * node: 1, a sub-page's number of entries, or a nested tree's `items`.
 *
 * Memory: the memo has two generations. Lookups try the young one, then the
 * old one (a hit there moves the entry to the young one); when the young one
 * outgrows the budget the old one is freed and the young one becomes old. So
 * the versions in use survive and those of retired pages go within two
 * turnovers, without knowing which pages were retired.
 *
 * Everything here runs on the thread that owns the environment's transactions.
 */
#include "mdbx.h"
#include "page.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TM_API __dll_export

static inline int tm_rc(int rc) { return rc > 0 ? -rc : rc; }

/* ------------------------------------------------------------ page layout --- */

/* PAGE_HEADER, NODE_HEADER, P_BRANCH, P_LEAF, P_DUPFIX, ld16/ld32/ld64, likely/unlikely: native/page.h */
enum {
  N_BIG = 1,
  N_TREE = 2,
  N_DUP = 4,
  TREE_SIZE = 48, /* tree_t: flags u16 @0, height u16 @2, dupfix u32 @4, root u32 @8, ..., items u64 @32 */
  MAX_HEIGHT = 32,
};

static inline uint64_t pg_txnid(const uint8_t *p) { return ld64(p); }
static inline uint16_t pg_flags(const uint8_t *p) { return ld16(p + 10); }
static inline uint32_t pg_numkeys(const uint8_t *p) { return ld16(p + 12) >> 1; }
static inline uint32_t pg_pgno(const uint8_t *p) { return ld32(p + 16); }

/* The node at index i, bounds-checked against the page (a damaged page gives
 * NULL, never a read outside it). */
static inline const uint8_t *pg_node(const uint8_t *p, uint32_t i, uint32_t psize) {
  const uint32_t off = (uint32_t)ld16(p + PAGE_HEADER + 2 * i) + PAGE_HEADER;
  if (unlikely(off + NODE_HEADER > psize))
    return NULL;
  const uint8_t *n = p + off;
  if (unlikely(off + NODE_HEADER + ld16(n + 6) > psize))
    return NULL;
  return n;
}
static inline uint8_t nd_flags(const uint8_t *n) { return n[4]; }
static inline uint32_t nd_ksize(const uint8_t *n) { return ld16(n + 6); }
static inline uint32_t nd_dsize(const uint8_t *n) { return ld32(n); }
static inline uint32_t nd_child(const uint8_t *n) { return ld32(n); }
static inline MDBX_val nd_key(const uint8_t *n) {
  MDBX_val v = {(void *)(n + NODE_HEADER), nd_ksize(n)};
  return v;
}
static inline const uint8_t *nd_data(const uint8_t *n) { return n + NODE_HEADER + nd_ksize(n); }

/* ------------------------------------------------------------------ memo --- */

typedef struct os_slot {
  uint64_t txnid; /* 0: empty */
  uint32_t pgno, n;
  uint64_t *cum; /* n running sums of values, then (dupsort) n of keys; NULL: moved to the young generation */
} os_slot;

typedef struct os_gen {
  os_slot *slots;
  uint32_t cap, count;
  size_t bytes; /* of the sums */
} os_gen;

typedef struct os_memo {
  os_gen young, old;
  size_t budget; /* bytes of sums per generation before a turnover */
  double hits, misses, computed, pages_read, turnovers;
} os_memo;

#define DEFAULT_BUDGET ((size_t)64 << 20)

/* Checks a negative control can turn off (tm_ostat_test_disable): the tests
 * must fail without them. */
enum {
  OS_TEST_MEMO_DIRTY = 1, /* memoise every page version, dirty pages of a write transaction too */
};
static uint32_t os_test_disabled;

static inline uint32_t os_hash(uint32_t pgno, uint64_t txnid) {
  uint64_t h = (txnid * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)pgno * 0xc2b2ae3d27d4eb4full);
  h ^= h >> 29;
  return (uint32_t)(h ^ (h >> 32));
}

static void gen_free(os_gen *g) {
  for (uint32_t i = 0; i < g->cap; i++)
    free(g->slots[i].cum);
  free(g->slots);
  memset(g, 0, sizeof(*g));
}

static os_slot *gen_find(const os_gen *g, uint32_t pgno, uint64_t txnid) {
  if (!g->cap)
    return NULL;
  uint32_t i = os_hash(pgno, txnid) & (g->cap - 1);
  for (;;) {
    os_slot *s = &g->slots[i];
    if (s->txnid == 0)
      return NULL;
    if (s->txnid == txnid && s->pgno == pgno)
      return s;
    i = (i + 1) & (g->cap - 1);
  }
}

static int gen_put(os_gen *g, uint32_t pgno, uint64_t txnid, uint32_t n, uint64_t *cum, size_t bytes);

static int gen_grow(os_gen *g) {
  const uint32_t cap = g->cap ? g->cap * 2 : 256;
  os_slot *slots = calloc(cap, sizeof(os_slot));
  if (!slots)
    return MDBX_ENOMEM;
  os_gen old = *g;
  g->slots = slots;
  g->cap = cap;
  g->count = 0;
  g->bytes = 0;
  for (uint32_t i = 0; i < old.cap; i++)
    if (old.slots[i].txnid && old.slots[i].cum)
      gen_put(g, old.slots[i].pgno, old.slots[i].txnid, old.slots[i].n, old.slots[i].cum, 0);
  g->bytes = old.bytes;
  free(old.slots);
  return MDBX_SUCCESS;
}

static int gen_put(os_gen *g, uint32_t pgno, uint64_t txnid, uint32_t n, uint64_t *cum, size_t bytes) {
  if ((g->count + 1) * 4 > g->cap * 3) {
    int rc = gen_grow(g);
    if (rc != MDBX_SUCCESS)
      return rc;
  }
  uint32_t i = os_hash(pgno, txnid) & (g->cap - 1);
  while (g->slots[i].txnid != 0)
    i = (i + 1) & (g->cap - 1);
  g->slots[i].txnid = txnid;
  g->slots[i].pgno = pgno;
  g->slots[i].n = n;
  g->slots[i].cum = cum;
  g->count++;
  g->bytes += bytes;
  return MDBX_SUCCESS;
}

static void os_memo_free(void *ctx) {
  os_memo *m = ctx;
  if (!m)
    return;
  gen_free(&m->young);
  gen_free(&m->old);
  free(m);
}

static os_memo *os_memo_of(MDBX_env *env, int create) {
  os_memo *m = mdbx_env_get_ostat(env);
  if (m || !create)
    return m;
  m = calloc(1, sizeof(os_memo));
  if (!m)
    return NULL;
  m->budget = DEFAULT_BUDGET;
  if (mdbx_env_set_ostat(env, m, os_memo_free) != MDBX_SUCCESS) {
    free(m);
    return NULL;
  }
  return m;
}

static inline size_t sums_bytes(uint32_t n, int two) { return (size_t)n * sizeof(uint64_t) * (two ? 2 : 1); }

/* Keeps `cum` (owned by the memo from now on). */
static int memo_insert(os_memo *m, uint32_t pgno, uint64_t txnid, uint32_t n, uint64_t *cum, int two) {
  const size_t bytes = sums_bytes(n, two);
  if (m->young.bytes + bytes > m->budget && m->young.count) {
    gen_free(&m->old);
    m->old = m->young;
    memset(&m->young, 0, sizeof(m->young));
    m->turnovers++;
  }
  return gen_put(&m->young, pgno, txnid, n, cum, bytes);
}

static uint64_t *memo_lookup(os_memo *m, uint32_t pgno, uint64_t txnid, uint32_t n, int two) {
  os_slot *s = gen_find(&m->young, pgno, txnid);
  if (s && s->cum && s->n == n) {
    m->hits++;
    return s->cum;
  }
  s = gen_find(&m->old, pgno, txnid);
  if (s && s->cum && s->n == n) {
    uint64_t *cum = s->cum;
    s->cum = NULL; /* now the young generation's */
    m->old.bytes -= sums_bytes(n, two);
    m->hits++;
    if (memo_insert(m, pgno, txnid, n, cum, two) != MDBX_SUCCESS) {
      free(cum);
      return NULL;
    }
    return gen_find(&m->young, pgno, txnid)->cum;
  }
  m->misses++;
  return NULL;
}

/* --------------------------------------------------------------- a query --- */

enum {
  OS_KEYS = 1,      /* count keys, not values (dupsort tables) */
  OS_HAS_LO = 2,    /* count: a lower bound */
  OS_LO_EXCL = 4,   /* ... exclusive */
  OS_HAS_HI = 8,    /* count: an upper bound */
  OS_HI_INCL = 16,  /* ... inclusive */
  OS_LE = 32,       /* rank: entries <= key (else < key) */
};

typedef struct os_tmp {
  struct os_tmp *next;
  uint64_t cum[];
} os_tmp;

typedef struct os_q {
  const MDBX_txn *txn;
  os_memo *memo;
  MDBX_tree_info_t tree;
  MDBX_cmp_func cmp;
  int dupsort;   /* the main tree's leaves hold dupsort nodes */
  int two;       /* memo entries hold value and key sums */
  int keys;      /* which sums the query reads: 1 = keys */
  os_tmp *tmp;   /* sums of dirty branches, freed at the end of the query */
  uint32_t psize;
  const uint8_t *base; /* where page 0 is mapped: a prefetch hint only, never read through */
  size_t limit;
} os_q;

static void q_end(os_q *q) {
  while (q->tmp) {
    os_tmp *t = q->tmp;
    q->tmp = t->next;
    free(t);
  }
}

static int q_begin(os_q *q, const MDBX_txn *txn, MDBX_dbi dbi, uint32_t flags) {
  memset(q, 0, sizeof(*q));
  q->txn = txn;
  int rc = mdbx_txn_tree(txn, dbi, &q->tree);
  if (rc != MDBX_SUCCESS)
    return rc;
  MDBX_env *env = mdbx_txn_env(txn);
  q->memo = os_memo_of(env, 1);
  if (!q->memo)
    return MDBX_ENOMEM;
  q->cmp = mdbx_get_keycmp((MDBX_db_flags_t)q->tree.flags);
  q->dupsort = (q->tree.flags & MDBX_DUPSORT) != 0;
  q->two = q->dupsort;
  q->keys = q->dupsort && (flags & OS_KEYS);
  q->psize = q->tree.pagesize;
  void *base = NULL;
  if (mdbx_env_get_mapping(env, &base, &q->limit, NULL) == MDBX_SUCCESS)
    q->base = base;
  return MDBX_SUCCESS;
}

/* Starts fetching a child page (its header and the start of its node offsets)
 * while the memo is consulted for its parent: the two cache misses overlap.
 * A hint only: a dirty page lives elsewhere, and a prefetch never faults. */
static inline void q_prefetch(const os_q *q, uint32_t pgno) {
  const size_t at = (size_t)pgno * q->psize;
  if (q->base && at < q->limit) {
    __builtin_prefetch(q->base + at, 0, 3);
    __builtin_prefetch(q->base + at + 64, 0, 3);
  }
}

static inline int q_page(os_q *q, uint32_t pgno, const uint8_t **page) {
  const void *p;
  int rc = mdbx_txn_page(q->txn, pgno, &p);
  if (unlikely(rc != MDBX_SUCCESS))
    return rc;
  q->memo->pages_read++;
  *page = p;
  return MDBX_SUCCESS;
}

/* The values of one dupsort leaf node: 1, a sub-page's entries, a nested tree's items. */
static inline int node_values(const uint8_t *page, uint32_t psize, const uint8_t *n, uint64_t *out) {
  const uint8_t f = nd_flags(n);
  if (!(f & N_DUP)) {
    *out = 1;
    return MDBX_SUCCESS;
  }
  const uint32_t ds = nd_dsize(n);
  const uint8_t *d = nd_data(n);
  if (unlikely((size_t)(d - page) + ds > psize))
    return MDBX_CORRUPTED;
  if (f & N_TREE) {
    if (unlikely(ds < TREE_SIZE))
      return MDBX_CORRUPTED;
    *out = ld64(d + 32);
    return MDBX_SUCCESS;
  }
  if (unlikely(ds < PAGE_HEADER))
    return MDBX_CORRUPTED;
  *out = pg_numkeys(d);
  return MDBX_SUCCESS;
}

/* Entries of a leaf page: [0] values, [1] keys. */
static int leaf_counts(const os_q *q, const uint8_t *p, uint64_t *vals, uint64_t *keys) {
  const uint32_t nk = pg_numkeys(p);
  *keys = nk;
  if (!q->dupsort) {
    *vals = nk;
    return MDBX_SUCCESS;
  }
  uint64_t v = 0;
  for (uint32_t i = 0; i < nk; i++) {
    const uint8_t *n = pg_node(p, i, q->psize);
    if (unlikely(!n))
      return MDBX_CORRUPTED;
    uint64_t c;
    int rc = node_values(p, q->psize, n, &c);
    if (rc != MDBX_SUCCESS)
      return rc;
    v += c;
  }
  *vals = v;
  return MDBX_SUCCESS;
}

static int branch_sums(os_q *q, const uint8_t *p, int two, const uint64_t **cum, unsigned depth);

/* Entries under a child page (a branch's memoised total, or a leaf's header). */
static int subtree_counts(os_q *q, uint32_t pgno, int two, uint64_t *vals, uint64_t *keys, unsigned depth) {
  const uint8_t *p;
  int rc = q_page(q, pgno, &p);
  if (rc != MDBX_SUCCESS)
    return rc;
  const uint16_t f = pg_flags(p);
  if (f & P_BRANCH) {
    const uint64_t *cum;
    rc = branch_sums(q, p, two, &cum, depth + 1);
    if (rc != MDBX_SUCCESS)
      return rc;
    const uint32_t n = pg_numkeys(p);
    *vals = cum[n - 1];
    *keys = two ? cum[2 * n - 1] : cum[n - 1];
    return MDBX_SUCCESS;
  }
  if (!(f & P_LEAF))
    return MDBX_CORRUPTED;
  if (!two) {
    /* a nested tree or a plain table: one entry per node (or per DUPFIX slot) */
    *vals = *keys = pg_numkeys(p);
    return MDBX_SUCCESS;
  }
  return leaf_counts(q, p, vals, keys);
}

/* The running sums of a branch page's children: from the memo, or computed
 * (and memoised if the page version is committed). `two`: the tree is a
 * dupsort main tree (value and key sums). */
static int branch_sums(os_q *q, const uint8_t *p, int two, const uint64_t **out, unsigned depth) {
  if (unlikely(depth > MAX_HEIGHT))
    return MDBX_CURSOR_FULL;
  const uint32_t n = pg_numkeys(p), pgno = pg_pgno(p);
  const uint64_t txnid = pg_txnid(p);
  if (unlikely(n == 0))
    return MDBX_CORRUPTED;
  const int committed = txnid != 0 && (txnid < q->tree.committed_below || (os_test_disabled & OS_TEST_MEMO_DIRTY));
  if (committed) {
    const uint64_t *hit = memo_lookup(q->memo, pgno, txnid, n, two);
    if (hit) {
      *out = hit;
      return MDBX_SUCCESS;
    }
  }
  const size_t bytes = sums_bytes(n, two);
  uint64_t *cum;
  os_tmp *tmp = NULL;
  if (committed)
    cum = malloc(bytes);
  else {
    tmp = malloc(sizeof(os_tmp) + bytes);
    cum = tmp ? tmp->cum : NULL;
  }
  if (!cum)
    return MDBX_ENOMEM;
  uint64_t sv = 0, sk = 0;
  int rc = MDBX_SUCCESS;
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *node = pg_node(p, i, q->psize);
    if (unlikely(!node)) {
      rc = MDBX_CORRUPTED;
      break;
    }
    uint64_t v, k;
    rc = subtree_counts(q, nd_child(node), two, &v, &k, depth);
    if (rc != MDBX_SUCCESS)
      break;
    sv += v;
    sk += k;
    cum[i] = sv;
    if (two)
      cum[n + i] = sk;
  }
  if (rc != MDBX_SUCCESS) {
    if (tmp)
      free(tmp);
    else
      free(cum);
    return rc;
  }
  q->memo->computed++;
  if (committed) {
    rc = memo_insert(q->memo, pgno, txnid, n, cum, two);
    if (rc != MDBX_SUCCESS) {
      free(cum);
      return rc;
    }
  } else {
    tmp->next = q->tmp;
    q->tmp = tmp;
  }
  *out = cum;
  return MDBX_SUCCESS;
}

/* The child index a descent for `key` takes: the last node whose key <= key
 * (node 0 stands for everything below node 1's key). */
static int branch_search(const os_q *q, MDBX_cmp_func cmp, const uint8_t *p, const MDBX_val *key, uint32_t *at) {
  uint32_t lo = 1, hi = pg_numkeys(p); /* answer in [0, n): last i with key_i <= key */
  while (lo < hi) {
    const uint32_t mid = lo + (hi - lo) / 2;
    const uint8_t *n = pg_node(p, mid, q->psize);
    if (unlikely(!n))
      return MDBX_CORRUPTED;
    MDBX_val k = nd_key(n);
    if (cmp(&k, key) <= 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *at = lo - 1;
  return MDBX_SUCCESS;
}

/* Nodes of a leaf before `key` (le: before or equal). */
static int leaf_search(const os_q *q, MDBX_cmp_func cmp, const uint8_t *p, const MDBX_val *key, int le, uint32_t *at) {
  uint32_t lo = 0, hi = pg_numkeys(p);
  while (lo < hi) {
    const uint32_t mid = lo + (hi - lo) / 2;
    const uint8_t *n = pg_node(p, mid, q->psize);
    if (unlikely(!n))
      return MDBX_CORRUPTED;
    MDBX_val k = nd_key(n);
    const int c = cmp(&k, key);
    if (c < 0 || (le && c == 0))
      lo = mid + 1;
    else
      hi = mid;
  }
  *at = lo;
  return MDBX_SUCCESS;
}

static int dup_rank(os_q *q, const uint8_t *node, const MDBX_val *val, int le, uint64_t *out);

/* Entries before key (le: up to and including key) in the main tree; with
 * `val` (a dupsort table counting values), entries before the pair (key, val). */
static int q_rank(os_q *q, const MDBX_val *key, const MDBX_val *val, int le, uint64_t *out) {
  uint64_t r = 0;
  *out = 0;
  if (q->tree.root == UINT32_MAX)
    return MDBX_SUCCESS;
  uint32_t pgno = q->tree.root;
  for (unsigned depth = 0;; depth++) {
    if (unlikely(depth > MAX_HEIGHT))
      return MDBX_CURSOR_FULL;
    const uint8_t *p;
    int rc = q_page(q, pgno, &p);
    if (rc != MDBX_SUCCESS)
      return rc;
    const uint16_t f = pg_flags(p);
    if (f & P_BRANCH) {
      uint32_t i;
      rc = branch_search(q, q->cmp, p, key, &i);
      if (rc != MDBX_SUCCESS)
        return rc;
      const uint8_t *node = pg_node(p, i, q->psize);
      if (unlikely(!node))
        return MDBX_CORRUPTED;
      pgno = nd_child(node);
      q_prefetch(q, pgno);
      const uint64_t *cum;
      rc = branch_sums(q, p, q->two, &cum, depth);
      if (rc != MDBX_SUCCESS)
        return rc;
      if (i > 0)
        r += q->keys ? cum[pg_numkeys(p) + i - 1] : cum[i - 1];
      continue;
    }
    if (unlikely(!(f & P_LEAF) || (f & P_DUPFIX)))
      return MDBX_CORRUPTED;
    uint32_t j;
    rc = leaf_search(q, q->cmp, p, key, val ? 0 : le, &j);
    if (rc != MDBX_SUCCESS)
      return rc;
    if (val && j < pg_numkeys(p)) {
      /* the key's own values before `val` */
      const uint8_t *node = pg_node(p, j, q->psize);
      if (unlikely(!node))
        return MDBX_CORRUPTED;
      const MDBX_val k = nd_key(node);
      if (q->cmp(&k, key) == 0) {
        uint64_t d;
        rc = dup_rank(q, node, val, le, &d);
        if (rc != MDBX_SUCCESS)
          return rc;
        r += d;
      }
    }
    if (!q->dupsort || q->keys)
      r += j;
    else
      for (uint32_t i = 0; i < j; i++) {
        uint64_t c;
        const uint8_t *node = pg_node(p, i, q->psize);
        if (unlikely(!node))
          return MDBX_CORRUPTED;
        rc = node_values(p, q->psize, node, &c);
        if (rc != MDBX_SUCCESS)
          return rc;
        r += c;
      }
    *out = r;
    return MDBX_SUCCESS;
  }
}

static uint64_t q_total_keys(os_q *q, int *rc);

/* Entries in the table (keys of a dupsort table with OS_KEYS). */
static int q_total(os_q *q, uint64_t *out) {
  if (!q->keys) {
    *out = q->tree.items;
    return MDBX_SUCCESS;
  }
  int rc = MDBX_SUCCESS;
  *out = q_total_keys(q, &rc);
  return rc;
}

static uint64_t q_total_keys(os_q *q, int *rc) {
  if (q->tree.root == UINT32_MAX)
    return 0;
  uint64_t v = 0, k = 0;
  *rc = subtree_counts(q, q->tree.root, q->two, &v, &k, 0);
  return k;
}

/* Descends from page `pgno` to the leaf that holds position *index (counting
 * values, or keys with `keys`); *index becomes the position within that leaf.
 * `two`: the tree is a dupsort main tree (its memo entries hold both sums). */
static int descend_by_index(os_q *q, uint32_t pgno, int two, int keys, uint64_t *index, const uint8_t **leaf) {
  for (unsigned depth = 0;; depth++) {
    if (unlikely(depth > MAX_HEIGHT))
      return MDBX_CURSOR_FULL;
    const uint8_t *p;
    int rc = q_page(q, pgno, &p);
    if (rc != MDBX_SUCCESS)
      return rc;
    const uint16_t f = pg_flags(p);
    if (!(f & P_BRANCH)) {
      if (unlikely(!(f & P_LEAF)))
        return MDBX_CORRUPTED;
      *leaf = p;
      return MDBX_SUCCESS;
    }
    const uint32_t n = pg_numkeys(p);
    const uint64_t *cum;
    rc = branch_sums(q, p, two, &cum, depth);
    if (rc != MDBX_SUCCESS)
      return rc;
    const uint64_t *c = keys ? cum + n : cum;
    if (*index >= c[n - 1])
      return MDBX_NOTFOUND;
    uint32_t lo = 0, hi = n - 1; /* the first child with c[i] > index */
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo) / 2;
      if (c[mid] > *index)
        hi = mid;
      else
        lo = mid + 1;
    }
    if (lo > 0)
      *index -= c[lo - 1];
    const uint8_t *node = pg_node(p, lo, q->psize);
    if (unlikely(!node))
      return MDBX_CORRUPTED;
    pgno = nd_child(node);
  }
}

/* Entry i of a leaf page or sub-page of `size` bytes holding single entries:
 * a DUPFIX slot, or a node's key (values are the keys of nested structures). */
static int slot_at(const uint8_t *p, uint32_t size, uint64_t i, MDBX_val *val) {
  if (unlikely(i >= pg_numkeys(p)))
    return MDBX_CORRUPTED;
  if (pg_flags(p) & P_DUPFIX) {
    const uint32_t ks = ld16(p + 8);
    if (unlikely(PAGE_HEADER + (i + 1) * ks > size))
      return MDBX_CORRUPTED;
    val->iov_base = (void *)(p + PAGE_HEADER + i * ks);
    val->iov_len = ks;
    return MDBX_SUCCESS;
  }
  const uint8_t *node = pg_node(p, (uint32_t)i, size);
  if (unlikely(!node))
    return MDBX_CORRUPTED;
  *val = nd_key(node);
  return MDBX_SUCCESS;
}

/* Entries of a leaf page or sub-page (of single entries) before `val` (le: or equal). */
static int slots_search(MDBX_cmp_func cmp, const uint8_t *p, uint32_t size, const MDBX_val *val, int le,
                        uint64_t *at) {
  uint64_t lo = 0, hi = pg_numkeys(p);
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    MDBX_val v;
    int rc = slot_at(p, size, mid, &v);
    if (rc != MDBX_SUCCESS)
      return rc;
    const int c = cmp(&v, val);
    if (c < 0 || (le && c == 0))
      lo = mid + 1;
    else
      hi = mid;
  }
  *at = lo;
  return MDBX_SUCCESS;
}

/* Values of one dupsort node before `val` (le: or equal to it). */
static int dup_rank(os_q *q, const uint8_t *n, const MDBX_val *val, int le, uint64_t *out) {
  const MDBX_cmp_func dcmp = mdbx_get_datacmp((MDBX_db_flags_t)q->tree.flags);
  const uint8_t f = nd_flags(n);
  const uint8_t *data = nd_data(n);
  *out = 0;
  if (!(f & N_DUP)) {
    const MDBX_val one = {(void *)data, nd_dsize(n)};
    const int c = dcmp(&one, val);
    *out = c < 0 || (le && c == 0);
    return MDBX_SUCCESS;
  }
  if (!(f & N_TREE))
    return slots_search(dcmp, data, nd_dsize(n), val, le, out);
  uint64_t r = 0;
  uint32_t pgno = ld32(data + 8);
  for (unsigned depth = 0;; depth++) {
    if (unlikely(depth > MAX_HEIGHT))
      return MDBX_CURSOR_FULL;
    const uint8_t *p;
    int rc = q_page(q, pgno, &p);
    if (rc != MDBX_SUCCESS)
      return rc;
    if (!(pg_flags(p) & P_BRANCH)) {
      uint64_t j;
      rc = slots_search(dcmp, p, q->psize, val, le, &j);
      *out = r + j;
      return rc;
    }
    uint32_t i;
    rc = branch_search(q, dcmp, p, val, &i);
    if (rc != MDBX_SUCCESS)
      return rc;
    const uint64_t *cum;
    rc = branch_sums(q, p, 0, &cum, depth);
    if (rc != MDBX_SUCCESS)
      return rc;
    if (i > 0)
      r += cum[i - 1];
    const uint8_t *node = pg_node(p, i, q->psize);
    if (unlikely(!node))
      return MDBX_CORRUPTED;
    pgno = nd_child(node);
  }
}

/* The value at position d of a dupsort node's values. */
static int dup_at(os_q *q, const uint8_t *n, uint64_t d, MDBX_val *val) {
  const uint8_t f = nd_flags(n);
  const uint8_t *data = nd_data(n);
  if (!(f & N_DUP)) {
    val->iov_base = (void *)data;
    val->iov_len = nd_dsize(n);
    return MDBX_SUCCESS;
  }
  if (!(f & N_TREE)) /* a sub-page: a page header (its pgno and txnid mean nothing), then slots or nodes */
    return slot_at(data, nd_dsize(n), d, val);
  const uint8_t *leaf;
  int rc = descend_by_index(q, ld32(data + 8), 0, 0, &d, &leaf);
  if (rc == MDBX_NOTFOUND)
    rc = MDBX_CORRUPTED; /* the node's item count promised more */
  return rc != MDBX_SUCCESS ? rc : slot_at(leaf, q->psize, d, val);
}

/* The key (and, for a dupsort table counting values, the value) of the
 * entry at `index` (0-based). */
static int q_at(os_q *q, uint64_t index, MDBX_val *key, MDBX_val *val, int *has_val) {
  *has_val = 0;
  if (q->tree.root == UINT32_MAX)
    return MDBX_NOTFOUND;
  const uint8_t *p;
  int rc = descend_by_index(q, q->tree.root, q->two, q->keys, &index, &p);
  if (rc != MDBX_SUCCESS)
    return rc;
  if (unlikely(pg_flags(p) & P_DUPFIX))
    return MDBX_CORRUPTED;
  const uint32_t n = pg_numkeys(p);
  if (!q->dupsort || q->keys) {
    if (index >= n)
      return MDBX_NOTFOUND;
    const uint8_t *node = pg_node(p, (uint32_t)index, q->psize);
    if (unlikely(!node))
      return MDBX_CORRUPTED;
    *key = nd_key(node);
    return MDBX_SUCCESS;
  }
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *node = pg_node(p, i, q->psize);
    if (unlikely(!node))
      return MDBX_CORRUPTED;
    uint64_t c;
    rc = node_values(p, q->psize, node, &c);
    if (rc != MDBX_SUCCESS)
      return rc;
    if (index < c) {
      *key = nd_key(node);
      *has_val = 1;
      return dup_at(q, node, index, val);
    }
    index -= c;
  }
  return MDBX_NOTFOUND;
}

/* Positions `cur` on the entry at `index`. */
static int q_seek(os_q *q, MDBX_cursor *cur, uint64_t index, MDBX_val *k, MDBX_val *v) {
  MDBX_val key, val = {0};
  int has_val;
  int rc = q_at(q, index, &key, &val, &has_val);
  if (rc != MDBX_SUCCESS)
    return rc;
  *k = key;
  *v = val;
  /* the key (and value) point into a page of this transaction: a lookup reads them, changes nothing */
  return mdbx_cursor_get(cur, k, v, has_val ? MDBX_GET_BOTH : MDBX_SET_KEY);
}

/* ------------------------------------------------------------- exports --- */

static inline MDBX_val tm_val(const void *p, uint32_t n) {
  MDBX_val v;
  v.iov_base = (void *)p;
  v.iov_len = n;
  return v;
}

/* A search key: integer keys are compared as aligned words, so they are copied. */
static inline MDBX_val q_key(const os_q *q, const void *key, uint32_t klen, uint64_t *aligned) {
  if ((q->tree.flags & MDBX_INTEGERKEY) && klen <= 8) {
    memcpy(aligned, key, klen);
    return tm_val(aligned, klen);
  }
  return tm_val(key, klen);
}

static int q_finish(os_q *q, int rc) {
  q_end(q);
  return tm_rc(rc);
}

/* Entries before `key` (OS_LE: up to and including it); with `val` (not
 * NULL; a dupsort table, counting values) entries before the pair; out[0]. */
TM_API int tm_ostat_rank(const MDBX_txn *txn, uint32_t dbi, uint32_t flags, const void *key, uint32_t klen,
                         const void *val, uint32_t vlen, double *out) {
  os_q q;
  int rc = q_begin(&q, txn, dbi, flags);
  if (rc != MDBX_SUCCESS)
    return q_finish(&q, rc);
  if (val && (!q.dupsort || q.keys))
    return q_finish(&q, MDBX_EINVAL);
  uint64_t aligned, valigned;
  const MDBX_val k = q_key(&q, key, klen, &aligned);
  MDBX_val v = tm_val(val, vlen);
  if ((q.tree.flags & MDBX_INTEGERDUP) && vlen <= 8 && val) {
    memcpy(&valigned, val, vlen);
    v.iov_base = &valigned;
  }
  uint64_t r = 0;
  rc = q_rank(&q, &k, val ? &v : NULL, (flags & OS_LE) != 0, &r);
  out[0] = (double)r;
  return q_finish(&q, rc);
}

/* Entries between two bounds; out[0] = count, out[1] = the index of the first
 * one (the rank of the lower bound), out[2] = entries in the table. */
TM_API int tm_ostat_count(const MDBX_txn *txn, uint32_t dbi, uint32_t flags, const void *lo, uint32_t lolen,
                          const void *hi, uint32_t hilen, double *out) {
  os_q q;
  int rc = q_begin(&q, txn, dbi, flags);
  if (rc != MDBX_SUCCESS)
    return q_finish(&q, rc);
  uint64_t a = 0, b = 0, total = 0;
  rc = q_total(&q, &total);
  b = total;
  if (rc == MDBX_SUCCESS && (flags & OS_HAS_LO)) {
    uint64_t aligned;
    const MDBX_val k = q_key(&q, lo, lolen, &aligned);
    rc = q_rank(&q, &k, NULL, (flags & OS_LO_EXCL) != 0, &a);
  }
  if (rc == MDBX_SUCCESS && (flags & OS_HAS_HI)) {
    uint64_t aligned;
    const MDBX_val k = q_key(&q, hi, hilen, &aligned);
    rc = q_rank(&q, &k, NULL, (flags & OS_HI_INCL) != 0, &b);
  }
  out[0] = (double)(b > a ? b - a : 0);
  out[1] = (double)a;
  out[2] = (double)total;
  return q_finish(&q, rc);
}

/* One query that puts `cur` on the entry at `index`; k and v: the entry there. */
static int seek_cursor(MDBX_cursor *cur, uint32_t flags, double index, MDBX_val *k, MDBX_val *v) {
  if (!(index >= 0) || index > 9007199254740991.0)
    return MDBX_NOTFOUND;
  os_q q;
  int rc = q_begin(&q, mdbx_cursor_txn(cur), mdbx_cursor_dbi(cur), flags);
  if (rc == MDBX_SUCCESS)
    rc = q_seek(&q, cur, (uint64_t)index, k, v);
  q_end(&q);
  return rc;
}

/* The entry at `index` into `out` as [u32 klen][u32 vlen][u32 0][key][value];
 * returns the bytes needed (more than cap: nothing copied, call again). */
TM_API int tm_ostat_at(MDBX_cursor *cur, uint32_t flags, double index, uint8_t *out, uint32_t cap) {
  MDBX_val k, v;
  /* plain, or dupsort by keys: MDBX_SET_KEY stands on the key's first value */
  const int rc = seek_cursor(cur, flags, index, &k, &v);
  if (rc != MDBX_SUCCESS)
    return tm_rc(rc);
  const uint32_t kl = (uint32_t)k.iov_len, vl = (uint32_t)v.iov_len, zero = 0;
  const uint64_t need = 12ull + kl + vl;
  if (need > INT32_MAX)
    return tm_rc(MDBX_TOO_LARGE);
  if (cap >= 12) {
    memcpy(out, &kl, 4);
    memcpy(out + 4, &vl, 4);
    memcpy(out + 8, &zero, 4);
  }
  if (need <= cap) {
    if (kl)
      memcpy(out + 12, k.iov_base, kl);
    if (vl)
      memcpy(out + 12 + kl, v.iov_base, vl);
  }
  return (int)need;
}

/* Positions `cur` on the entry at `index` (for a range read that skips
 * `offset` entries; tm_scan then goes on with TM_SCAN_CURRENT). */
TM_API int tm_ostat_seek(MDBX_cursor *cur, uint32_t flags, double index) {
  MDBX_val k, v;
  return tm_rc(seek_cursor(cur, flags, index, &k, &v));
}

/* The memo of an environment: out = [entries, bytes, hits, misses, computed,
 * pages read, turnovers, budget]. */
TM_API void tm_ostat_stats(MDBX_env *env, double *out) {
  const os_memo *m = os_memo_of(env, 0);
  memset(out, 0, 8 * sizeof(double));
  if (!m) {
    out[7] = (double)DEFAULT_BUDGET;
    return;
  }
  out[0] = (double)(m->young.count + m->old.count);
  out[1] = (double)(m->young.bytes + m->old.bytes) + (double)(m->young.cap + m->old.cap) * sizeof(os_slot);
  out[2] = m->hits;
  out[3] = m->misses;
  out[4] = m->computed;
  out[5] = m->pages_read;
  out[6] = m->turnovers;
  out[7] = (double)m->budget;
}

/* Sets the budget (bytes per generation; <= 0: the default) and, with clear, empties the memo. */
TM_API int tm_ostat_configure(MDBX_env *env, double budget, int32_t clear) {
  os_memo *m = os_memo_of(env, 1);
  if (!m)
    return tm_rc(MDBX_ENOMEM);
  m->budget = budget > 0 ? (size_t)budget : DEFAULT_BUDGET;
  if (clear) {
    gen_free(&m->young);
    gen_free(&m->old);
    m->hits = m->misses = m->computed = m->pages_read = m->turnovers = 0;
  }
  return 0;
}

/* Negative controls only (native/test/ostat.c): turns checks off for the whole process. */
TM_API void tm_ostat_test_disable(uint32_t mask) { os_test_disabled = mask; }
