/* turbomdbx: live rebuild of a whole database, and the switch every process follows.
 *
 * The protocol (docs/rebuild.md has the argument in full):
 *
 *  1. Copy. A read transaction A pins a snapshot; mdbx_txn_copy2pathname_ex()
 *     (patch 0003) writes a compacted copy of it, every table's leaves in key
 *     order, to `<data>-rebuild`, reporting progress. Writers go on meanwhile.
 *  2. Catch up. Rounds: begin read transaction B on the newest snapshot,
 *     mdbx_txn_diff(A, B) (patch 0003) names every key that may differ, the
 *     key's state in B is written into the copy, the copy is synced; B becomes
 *     A. Each round replays what was written during the previous one, so the
 *     rounds shrink until one is short.
 *  3. Switch. Take the write lock of the database (mdbx_txn_begin of a write
 *     transaction: every writer of every process waits), replay the last
 *     difference (nothing can commit now, so the copy becomes exactly the
 *     database), sync the copy, then in the sidecar file `<data>-turbomdbx`
 *     publish "switching to file (dev, ino), generation + 1", rename the copy
 *     over the data file, unlink the lock file (the old processes keep theirs
 *     open; the new file gets a fresh one), mark the sidecar idle and release
 *     the write lock. The rename is the commit point.
 *
 * Why no write is lost: a write transaction of a process attached to the old
 * file checks the sidecar right after libmdbx gave it the write lock
 * (tm_switch_moved(), called by tm_txn_begin); a commit that got the lock
 * before the rebuild did is in the last difference, and one that gets it
 * after sees the new generation, aborts and moves to the new file first.
 * Opens (tm_switch_prepare) wait while a switch is in flight, so no process
 * opens the old data file with a fresh lock file.
 *
 * Crash safety: the rebuilding process holds an exclusive flock() on the
 * sidecar for its whole run. A process that finds the sidecar "switching"
 * while that lock is free knows the rebuild died mid-switch and finishes or
 * undoes it (sc_recover): the copy was complete and synced before "switching"
 * was published, so rolling forward is always safe; without the copy and
 * without the rename nothing happened and the state goes back to idle.
 */
#include "mdbx.h"
#include "codes.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TM_API __dll_export
#define MAIN_DBI ((MDBX_dbi)1) /* libmdbx's main (unnamed) table */

static inline int rb_rc(int rc) { return rc > 0 ? -rc : rc; }

#if defined(_WIN32) || defined(_WIN64)

/* The switch relies on POSIX rename-over-open-files semantics and flock(): not on Windows (yet). */
int tm_switch_moved(MDBX_env *env) {
  (void)env;
  return 0;
}
void tm_switch_detach(MDBX_env *env) { (void)env; }
void tm_switch_forget(const char *path) { (void)path; }
TM_API int tm_env_close_retired(MDBX_env *env) {
  tm_switch_detach(env);
  return rb_rc(mdbx_env_close_ex(env, true));
}
TM_API int tm_switch_prepare(const char *path, uint32_t nosubdir, uint32_t timeout_ms) {
  (void)path, (void)nosubdir, (void)timeout_ms;
  return 0;
}
TM_API int tm_switch_attach(MDBX_env *env, uint32_t expect_gen) {
  (void)env, (void)expect_gen;
  return 0;
}
TM_API int tm_switch_adopt(MDBX_env *env) {
  (void)env;
  return 0;
}
TM_API double tm_switch_view(MDBX_env *env) {
  (void)env;
  return 0;
}
TM_API uint32_t tm_switch_gen(MDBX_env *env) {
  (void)env;
  return 0;
}
TM_API void *tm_rebuild_start(MDBX_env *env, double max_bytes, int32_t *rc) {
  (void)env, (void)max_bytes;
  *rc = -MDBX_ENOSYS;
  return NULL;
}
TM_API int tm_rebuild_poll(void *rb, double *out) {
  (void)rb, (void)out;
  return -MDBX_ENOSYS;
}
TM_API void tm_rebuild_cancel(void *rb) { (void)rb; }
TM_API int tm_rebuild_join(void *rb, double *out) {
  (void)rb, (void)out;
  return -MDBX_ENOSYS;
}
TM_API int tm_leaf_order(MDBX_txn *txn, uint32_t dbi, double *out) {
  (void)txn, (void)dbi, (void)out;
  return -MDBX_ENOSYS;
}

#else

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* native/turbomdbx.c: creates a copy's destination with the source's mode */
int tm_copy_dest_prepare(MDBX_env *env, const char *dest, int32_t mode, uint32_t *flags);

/* ------------------------------------------------------------- sidecar --- */

#define SC_MAGIC 0x544d5357u /* "WSMT" */
#define SC_VERSION 1u
#define SC_SIZE 4096

/* The sidecar `<data>-turbomdbx`, mapped shared by every turbomdbx process of
 * the database. Only `gen` is read on hot paths (TypeScript reads it through a
 * view before each read transaction; tm_txn_begin before each write). */
typedef struct tm_sidecar {
  uint32_t magic, version;
  uint32_t gen;   /* the generation of the data file; +1 at each switch */
  uint32_t state; /* SC_IDLE or SC_SWITCHING */
  uint64_t dev, ino; /* while switching: the file that becomes the database */
  uint32_t pid;      /* the process that switched last */
  uint32_t reserved;
  uint64_t switches;
} tm_sidecar_t;

enum { SC_IDLE = 0, SC_SWITCHING = 1 };

typedef struct tm_paths {
  char *data, *lck, *side, *tmp, *tmplck, *dir;
} tm_paths_t;

static char *cat(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *s = malloc(la + lb + 1);
  if (s) {
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
  }
  return s;
}

static void paths_free(tm_paths_t *p) {
  free(p->data), free(p->lck), free(p->side), free(p->tmp), free(p->tmplck), free(p->dir);
  memset(p, 0, sizeof(*p));
}

/* The files of a database opened at `path` (a folder unless nosubdir). */
static int paths_make(const char *path, int nosubdir, tm_paths_t *p) {
  memset(p, 0, sizeof(*p));
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/')
    n--;
  char *base = malloc(n + 1);
  if (!base)
    return MDBX_ENOMEM;
  memcpy(base, path, n);
  base[n] = 0;
  if (nosubdir) {
    p->data = cat(base, "");
    p->lck = cat(base, "-lck");
    char *slash = strrchr(base, '/');
    if (slash == base)
      p->dir = cat("/", "");
    else if (slash) {
      *slash = 0;
      p->dir = cat(base, "");
    } else
      p->dir = cat(".", "");
  } else {
    p->data = cat(base, "/mdbx.dat");
    p->lck = cat(base, "/mdbx.lck");
    p->dir = cat(base, "");
  }
  free(base);
  if (p->data) {
    p->side = cat(p->data, "-turbomdbx");
    /* the copy is opened by libmdbx as a no-subdir database: its name must have
     * no '.' in the last part, or libmdbx takes the part after it for an
     * extension and refuses when "<name>.lck" exists (MDBX_DUPLICATED_LCK) */
    p->tmp = cat(p->data, "-rebuild");
    if (p->tmp) {
      char *last = strrchr(p->tmp, '/');
      for (char *c = last ? last + 1 : p->tmp; *c; c++)
        if (*c == '.')
          *c = '_';
      p->tmplck = cat(p->tmp, "-lck");
    }
  }
  if (!p->data || !p->lck || !p->dir || !p->side || !p->tmp || !p->tmplck) {
    paths_free(p);
    return MDBX_ENOMEM;
  }
  return MDBX_SUCCESS;
}

static int env_paths(MDBX_env *env, tm_paths_t *p) {
  const char *path = NULL;
  MDBX_env_flags_t flags = 0;
  int rc = mdbx_env_get_path(env, &path);
  if (rc == MDBX_SUCCESS)
    rc = mdbx_env_get_flags(env, &flags);
  if (rc != MDBX_SUCCESS)
    return rc;
  return paths_make(path, (flags & MDBX_NOSUBDIR) != 0, p);
}

/* Opens (creating it if need be) and maps the sidecar. */
static int sc_open(const char *side, bool create, int *pfd, tm_sidecar_t **psc) {
  int fd = open(side, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
  if (fd < 0)
    return errno;
  struct stat st;
  if (fstat(fd, &st) != 0 || (st.st_size < SC_SIZE && ftruncate(fd, SC_SIZE) != 0)) {
    int err = errno;
    close(fd);
    return err;
  }
  void *m = mmap(NULL, SC_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    int err = errno;
    close(fd);
    return err;
  }
  tm_sidecar_t *sc = m;
  uint32_t zero = 0;
  if (__atomic_compare_exchange_n(&sc->magic, &zero, SC_MAGIC, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
    __atomic_store_n(&sc->version, SC_VERSION, __ATOMIC_SEQ_CST);
  else if (__atomic_load_n(&sc->magic, __ATOMIC_SEQ_CST) != SC_MAGIC) {
    munmap(m, SC_SIZE);
    close(fd);
    return MDBX_INVALID;
  }
  *pfd = fd;
  *psc = sc;
  return MDBX_SUCCESS;
}

static void sc_close(int fd, tm_sidecar_t *sc) {
  if (sc)
    munmap(sc, SC_SIZE);
  if (fd >= 0)
    close(fd);
}

/* Takes the rebuild lock (exclusive flock on a new open file description of
 * the sidecar). Returns the descriptor holding it, or -1 if a live process
 * holds it (a rebuild is running). Released by closing the descriptor, or by
 * the death of the process. */
static int rebuild_lock(const char *side) {
  int fd = open(side, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return -1;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Whether the data file `env` has open is the one at the database's path. */
static bool env_file_current(MDBX_env *env, const tm_paths_t *p) {
  mdbx_filehandle_t dfd;
  struct stat a, b;
  return mdbx_env_get_fd(env, &dfd) == MDBX_SUCCESS && fstat(dfd, &a) == 0 && stat(p->data, &b) == 0 &&
         a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static void sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

/* Finishes or undoes a switch whose rebuilding process died. Call holding the
 * rebuild lock, with the sidecar "switching". */
static void sc_recover(const tm_paths_t *p, tm_sidecar_t *sc) {
  struct stat st;
  const uint64_t dev = __atomic_load_n(&sc->dev, __ATOMIC_SEQ_CST), ino = __atomic_load_n(&sc->ino, __ATOMIC_SEQ_CST);
  bool forward = false;
  if (stat(p->tmp, &st) == 0 && (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino) {
    /* the copy was complete and synced before "switching" was published */
    if (rename(p->tmp, p->data) == 0)
      forward = true;
  } else if (stat(p->data, &st) == 0 && (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino)
    forward = true; /* renamed already */
  if (forward) {
    /* while "switching" no turbomdbx process opens the database, so this is the old file's lock file */
    unlink(p->lck);
    sync_dir(p->dir);
  }
  unlink(p->tmplck);
  __atomic_store_n(&sc->state, SC_IDLE, __ATOMIC_SEQ_CST);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_us(unsigned us) {
  struct timespec ts = {us / 1000000u, (long)(us % 1000000u) * 1000};
  nanosleep(&ts, NULL);
}

/* Before opening the database at `path`: waits while a switch is in flight
 * (recovering it if its process died), removes the leftovers of a rebuild that
 * died before switching, and returns the current generation (>= 0), or a
 * negative error. Without a usable sidecar (read-only folder) returns 0: the
 * process then cannot follow a rebuild, which it cannot run either. */
TM_API int tm_switch_prepare(const char *path, uint32_t nosubdir, uint32_t timeout_ms) {
  tm_paths_t p;
  int rc = paths_make(path, nosubdir != 0, &p);
  if (rc != MDBX_SUCCESS)
    return rb_rc(rc);
  int fd = -1;
  tm_sidecar_t *sc = NULL;
  if (sc_open(p.side, false, &fd, &sc) != MDBX_SUCCESS) {
    /* no sidecar: no rebuild has ever run here (attach creates it) */
    paths_free(&p);
    return 0;
  }
  const uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
  for (;;) {
    const uint32_t gen = __atomic_load_n(&sc->gen, __ATOMIC_SEQ_CST);
    const uint32_t state = __atomic_load_n(&sc->state, __ATOMIC_SEQ_CST);
    struct stat st;
    if (state == SC_IDLE && stat(p.tmp, &st) != 0) {
      rc = (int)(gen & 0x7fffffff);
      break;
    }
    int lk = rebuild_lock(p.side);
    if (lk >= 0) {
      /* nobody is rebuilding: finish a dead switch, or remove a dead copy */
      if (__atomic_load_n(&sc->state, __ATOMIC_SEQ_CST) == SC_SWITCHING)
        sc_recover(&p, sc);
      else {
        unlink(p.tmp);
        unlink(p.tmplck);
      }
      close(lk);
      continue;
    }
    if (state == SC_IDLE) {
      /* a rebuild is copying; it does not concern an open */
      rc = (int)(gen & 0x7fffffff);
      break;
    }
    if (now_ns() > deadline) {
      rc = MDBX_BUSY;
      break;
    }
    sleep_us(500);
  }
  sc_close(fd, sc);
  paths_free(&p);
  return rc;
}

/* Per-env state, kept in the env's user context. */
typedef struct tm_envx {
  int fd;
  tm_sidecar_t *sc;
  uint32_t gen;
} tm_envx_t;

/* After opening: attaches the env to the sidecar if its data file is the
 * database of generation `expect_gen`. Returns 0 (attached, or no sidecar), or
 * 1: a switch happened in between; close the env and open again. */
TM_API int tm_switch_attach(MDBX_env *env, uint32_t expect_gen) {
  tm_paths_t p;
  int rc = env_paths(env, &p);
  if (rc != MDBX_SUCCESS)
    return rb_rc(rc);
  tm_envx_t *x = calloc(1, sizeof(*x));
  if (!x) {
    paths_free(&p);
    return rb_rc(MDBX_ENOMEM);
  }
  x->fd = -1;
  if (sc_open(p.side, true, &x->fd, &x->sc) != MDBX_SUCCESS) {
    free(x);
    paths_free(&p);
    return 0;
  }
  const uint32_t gen = __atomic_load_n(&x->sc->gen, __ATOMIC_SEQ_CST);
  const uint32_t state = __atomic_load_n(&x->sc->state, __ATOMIC_SEQ_CST);
  const bool current = (gen & 0x7fffffff) == expect_gen && state == SC_IDLE && env_file_current(env, &p);
  paths_free(&p);
  if (!current) {
    sc_close(x->fd, x->sc);
    free(x);
    return 1;
  }
  x->gen = gen;
  mdbx_env_set_userctx(env, x);
  return 0;
}

/* Whether the database moved to a new file since this env was opened. */
int tm_switch_moved(MDBX_env *env) {
  const tm_envx_t *x = mdbx_env_get_userctx(env);
  return x && __atomic_load_n(&x->sc->gen, __ATOMIC_SEQ_CST) != x->gen;
}

/* When the generation changed: 0 if this env's file is still the database (a
 * switch was undone; the env adopts the generation), 1 if the database is now
 * another file (close and open again), 2 while a switch is in flight. */
TM_API int tm_switch_adopt(MDBX_env *env) {
  tm_envx_t *x = mdbx_env_get_userctx(env);
  if (!x)
    return 0;
  tm_paths_t p;
  int rc = env_paths(env, &p);
  if (rc != MDBX_SUCCESS)
    return rb_rc(rc);
  const uint32_t gen = __atomic_load_n(&x->sc->gen, __ATOMIC_SEQ_CST);
  int r = 2;
  if (__atomic_load_n(&x->sc->state, __ATOMIC_SEQ_CST) == SC_IDLE) {
    r = env_file_current(env, &p) ? 0 : 1;
    if (r == 0)
      x->gen = gen;
  }
  paths_free(&p);
  return r;
}

/* The address of the mapped sidecar (its u32 at byte 8 is the generation), or 0. */
TM_API double tm_switch_view(MDBX_env *env) {
  const tm_envx_t *x = mdbx_env_get_userctx(env);
  return x ? (double)(uintptr_t)x->sc : 0;
}

/* The generation this env belongs to. */
TM_API uint32_t tm_switch_gen(MDBX_env *env) {
  const tm_envx_t *x = mdbx_env_get_userctx(env);
  return x ? x->gen : 0;
}

/* Called by tm_env_close before libmdbx closes the env. */
void tm_switch_detach(MDBX_env *env) {
  tm_envx_t *x = mdbx_env_get_userctx(env);
  if (x) {
    mdbx_env_set_userctx(env, NULL);
    sc_close(x->fd, x->sc);
    free(x);
  }
}

static void *close_thread(void *arg) {
  MDBX_env *env = arg;
  tm_switch_detach(env);
  mdbx_env_close_ex(env, true);
  return NULL;
}

/* Closes the env of a file a live rebuild replaced, on a thread of its own:
 * its last close frees the unlinked file, which takes the kernel hundreds of
 * milliseconds for a large one, and syncing it is pointless. No transaction of
 * it may be open. */
TM_API int tm_env_close_retired(MDBX_env *env) {
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int rc = pthread_create(&t, &attr, close_thread, env);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    close_thread(env);
    return 0;
  }
  return 0;
}

/* After mdbx_env_delete: removes the sidecar and a dead rebuild's leftovers. */
void tm_switch_forget(const char *path) {
  for (int nosubdir = 0; nosubdir < 2; nosubdir++) {
    tm_paths_t p;
    if (paths_make(path, nosubdir, &p) == MDBX_SUCCESS) {
      unlink(p.side);
      unlink(p.tmp);
      unlink(p.tmplck);
      paths_free(&p);
    }
  }
}

/* ------------------------------------------------------------- rebuild --- */

enum { RB_COPY = 1, RB_CATCHUP = 2, RB_SWITCH = 3, RB_DONE = 4, RB_FAILED = 5 };

typedef struct tm_rebuild {
  MDBX_env *env;
  tm_paths_t p;
  pthread_t thread;
  bool started;
  uint64_t max_bytes;
  volatile int cancel;
  /* progress, written by the rebuild thread, read by tm_rebuild_poll */
  uint64_t phase, pages_copied, pages_total, page_size, rounds, keys, last_keys, stall_ns, started_ns, ended_ns;
  uint64_t copy_ns, catchup_ns, pages_before, pages_after;
  int rc;
} tm_rebuild_t;

static void put64(uint64_t *dst, uint64_t v) { __atomic_store_n(dst, v, __ATOMIC_RELEASE); }
static uint64_t get64(const uint64_t *src) { return __atomic_load_n(src, __ATOMIC_ACQUIRE); }

static int copy_progress(void *ctx, uint64_t done, uint64_t total) {
  tm_rebuild_t *rb = ctx;
  put64(&rb->pages_total, total);
  put64(&rb->pages_copied, done);
  if (rb->cancel)
    return MDBX_EINTR;
  if (rb->max_bytes && total * get64(&rb->page_size) > rb->max_bytes)
    return MDBX_MAP_FULL;
  return 0;
}

/* One replay: the state of the keys `diff` names, from `src` into `dst`. */
typedef struct replay {
  tm_rebuild_t *rb;
  MDBX_txn *src, *dst;
  MDBX_dbi sdbi, ddbi;
  bool dupsort;
  MDBX_cursor *cur;
  uint64_t keys;
  /* names of tables reported by the MAIN_DBI diff */
  MDBX_val *names;
  size_t nnames, cap;
} replay_t;

/* Remembers a name of the main table whose table-ness may have changed (replay_table handles it). */
static int push_name(replay_t *r, const MDBX_val *key) {
  if (r->nnames == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    MDBX_val *n = realloc(r->names, cap * sizeof(MDBX_val));
    if (!n)
      return MDBX_ENOMEM;
    r->names = n, r->cap = cap;
  }
  char *copy = malloc(key->iov_len + 1);
  if (!copy)
    return MDBX_ENOMEM;
  memcpy(copy, key->iov_base, key->iov_len);
  copy[key->iov_len] = 0;
  r->names[r->nnames].iov_base = copy;
  r->names[r->nnames].iov_len = key->iov_len;
  r->nnames++;
  return MDBX_SUCCESS;
}

static int replay_key(replay_t *r, const MDBX_val *key) {
  MDBX_val k = *key, v;
  r->keys++;
  int rc;
  if (!r->dupsort) {
    rc = mdbx_get(r->src, r->sdbi, &k, &v);
    if (rc == MDBX_SUCCESS)
      rc = mdbx_put(r->dst, r->ddbi, &k, &v, MDBX_UPSERT);
    else if (rc == MDBX_NOTFOUND) {
      rc = mdbx_del(r->dst, r->ddbi, &k, NULL);
      if (rc == MDBX_NOTFOUND)
        rc = MDBX_SUCCESS;
    }
  } else {
    rc = mdbx_del(r->dst, r->ddbi, &k, NULL);
    if (rc == MDBX_SUCCESS || rc == MDBX_NOTFOUND)
      rc = mdbx_cursor_get(r->cur, &k, &v, MDBX_SET_KEY);
    while (rc == MDBX_SUCCESS) {
      rc = mdbx_put(r->dst, r->ddbi, &k, &v, MDBX_UPSERT);
      if (rc == MDBX_SUCCESS)
        rc = mdbx_cursor_get(r->cur, &k, &v, MDBX_NEXT_DUP);
    }
    if (rc == MDBX_NOTFOUND)
      rc = MDBX_SUCCESS;
  }
  /* in the main table, a name that is a table record on one side is left to replay_table */
  if (rc == MDBX_INCOMPATIBLE && r->sdbi == MAIN_DBI)
    rc = push_name(r, key);
  return rc;
}

static int on_key(void *ctx, const MDBX_val *key, MDBX_diff_flags_t flags) {
  replay_t *r = ctx;
  if (r->rb->cancel)
    return MDBX_EINTR;
  if (flags & MDBX_DIFF_TABLE)
    return push_name(r, key);
  return replay_key(r, key);
}

static int replay_table_keys(replay_t *r, MDBX_txn *older, MDBX_dbi sdbi, MDBX_dbi ddbi, bool dupsort,
                             bool everything) {
  r->sdbi = sdbi, r->ddbi = ddbi, r->dupsort = dupsort;
  int rc = mdbx_cursor_open(r->src, sdbi, &r->cur);
  if (rc != MDBX_SUCCESS)
    return rc;
  if (everything) {
    MDBX_val k, v;
    rc = mdbx_cursor_get(r->cur, &k, &v, MDBX_FIRST);
    while (rc == MDBX_SUCCESS) {
      r->keys++;
      rc = mdbx_put(r->dst, ddbi, &k, &v, MDBX_UPSERT);
      if (rc == MDBX_SUCCESS)
        rc = mdbx_cursor_get(r->cur, &k, &v, MDBX_NEXT);
    }
    if (rc == MDBX_NOTFOUND)
      rc = MDBX_SUCCESS;
  } else
    rc = mdbx_txn_diff(older, r->src, sdbi, on_key, r, NULL);
  mdbx_cursor_close(r->cur);
  r->cur = NULL;
  return rc;
}

static int is_plain_key(int rc) { return rc == MDBX_INCOMPATIBLE; }

/* A named table reported by the main-table diff: created, dropped, changed. */
static int replay_table(replay_t *r, MDBX_txn *older, const char *name) {
  MDBX_dbi sdbi = 0, ddbi = 0;
  unsigned sflags = 0, dflags = 0, state = 0;
  int src = mdbx_dbi_open(r->src, name, MDBX_DB_ACCEDE, &sdbi);
  if (src == MDBX_SUCCESS)
    src = mdbx_dbi_flags_ex(r->src, sdbi, &sflags, &state);
  int dst = mdbx_dbi_open(r->dst, name, MDBX_DB_ACCEDE, &ddbi);
  if (dst == MDBX_SUCCESS)
    dst = mdbx_dbi_flags_ex(r->dst, ddbi, &dflags, &state);
  if (src != MDBX_SUCCESS && src != MDBX_NOTFOUND && !is_plain_key(src))
    return src;
  if (dst != MDBX_SUCCESS && dst != MDBX_NOTFOUND && !is_plain_key(dst))
    return dst;
  if (src != MDBX_SUCCESS) {
    /* gone, or a plain key of the main table now */
    if (dst == MDBX_SUCCESS) {
      int rc = mdbx_drop(r->dst, ddbi, true);
      if (rc != MDBX_SUCCESS)
        return rc;
    }
    if (!is_plain_key(src))
      return MDBX_SUCCESS;
    MDBX_val k = {(void *)name, strlen(name)}, v;
    int rc = mdbx_get(r->src, MAIN_DBI, &k, &v);
    return rc == MDBX_SUCCESS ? mdbx_put(r->dst, MAIN_DBI, &k, &v, MDBX_UPSERT) : rc;
  }
  if (is_plain_key(dst)) {
    /* a plain key of the main table in the copy, a table now */
    MDBX_val k = {(void *)name, strlen(name)};
    int rc = mdbx_del(r->dst, MAIN_DBI, &k, NULL);
    if (rc != MDBX_SUCCESS)
      return rc;
    dst = MDBX_NOTFOUND;
  }
  bool everything = false;
  if (dst == MDBX_SUCCESS && dflags != sflags) {
    int rc = mdbx_drop(r->dst, ddbi, true);
    if (rc != MDBX_SUCCESS)
      return rc;
    dst = MDBX_NOTFOUND;
  }
  if (dst != MDBX_SUCCESS) {
    int rc = mdbx_dbi_open(r->dst, name, (MDBX_db_flags_t)sflags | MDBX_CREATE, &ddbi);
    if (rc != MDBX_SUCCESS)
      return rc;
    everything = true;
  }
  int rc = replay_table_keys(r, older, sdbi, ddbi, (sflags & MDBX_DUPSORT) != 0, everything);
  if (rc != MDBX_SUCCESS)
    return rc;
  uint64_t sseq = 0, dseq = 0;
  rc = mdbx_dbi_sequence(r->src, sdbi, &sseq, 0);
  if (rc == MDBX_SUCCESS)
    rc = mdbx_dbi_sequence(r->dst, ddbi, &dseq, 0);
  if (rc == MDBX_SUCCESS && sseq > dseq)
    rc = mdbx_dbi_sequence(r->dst, ddbi, NULL, sseq - dseq);
  return rc;
}

/* Makes `dst` (a write txn of the copy) hold what `newer` holds, given that it
 * held what `older` holds. Returns the number of keys replayed or an error. */
static int replay(tm_rebuild_t *rb, MDBX_txn *older, MDBX_txn *newer, MDBX_txn *dst, uint64_t *keys) {
  replay_t r;
  memset(&r, 0, sizeof(r));
  r.rb = rb, r.src = newer, r.dst = dst;
  unsigned mflags = 0, state = 0;
  int rc = mdbx_dbi_flags_ex(newer, MAIN_DBI, &mflags, &state);
  if (rc == MDBX_SUCCESS)
    rc = replay_table_keys(&r, older, MAIN_DBI, MAIN_DBI, (mflags & MDBX_DUPSORT) != 0, false);
  for (size_t i = 0; rc == MDBX_SUCCESS && i < r.nnames; i++) {
    bool seen = false;
    for (size_t j = 0; j < i && !seen; j++)
      seen = r.names[j].iov_len == r.names[i].iov_len &&
             memcmp(r.names[j].iov_base, r.names[i].iov_base, r.names[i].iov_len) == 0;
    if (!seen)
      rc = replay_table(&r, older, r.names[i].iov_base);
  }
  for (size_t i = 0; i < r.nnames; i++)
    free(r.names[i].iov_base);
  free(r.names);
  if (rc == MDBX_SUCCESS) {
    MDBX_canary canary;
    rc = mdbx_canary_get(newer, &canary);
    if (rc == MDBX_SUCCESS && (canary.x || canary.y || canary.z))
      rc = mdbx_canary_put(dst, &canary);
  }
  *keys = r.keys;
  return rc;
}

/* One catch-up round into the copy: older -> newer, committed and synced. */
static int round_into(tm_rebuild_t *rb, MDBX_env *copy, MDBX_txn *older, MDBX_txn *newer, uint64_t *keys) {
  MDBX_txn *dst = NULL;
  int rc = mdbx_txn_begin(copy, NULL, MDBX_TXN_READWRITE, &dst);
  if (rc != MDBX_SUCCESS)
    return rc;
  rc = replay(rb, older, newer, dst, keys);
  if (rc != MDBX_SUCCESS) {
    mdbx_txn_abort(dst);
    return rc;
  }
  rc = mdbx_txn_commit(dst);
  if (rc == MDBX_SUCCESS)
    rc = mdbx_env_sync_ex(copy, true, false);
  return rc;
}

/* Begins a read transaction on the newest snapshot, replays *older -> it into
 * the copy, and makes it the new *older. */
static int advance(tm_rebuild_t *rb, MDBX_env *copy, MDBX_txn **older, uint64_t *keys) {
  MDBX_txn *newer = NULL;
  int rc = mdbx_txn_begin(rb->env, NULL, MDBX_TXN_RDONLY, &newer);
  if (rc != MDBX_SUCCESS)
    return rc;
  rc = round_into(rb, copy, *older, newer, keys);
  if (rc != MDBX_SUCCESS) {
    mdbx_txn_abort(newer);
    return rc;
  }
  mdbx_txn_abort(*older);
  *older = newer;
  put64(&rb->keys, get64(&rb->keys) + *keys);
  put64(&rb->last_keys, *keys);
  return MDBX_SUCCESS;
}

/* Catch-up stops when a round replayed fewer keys than this, or took less than ROUND_SHORT_NS. */
#define ROUND_FEW_KEYS 2048u
#define ROUND_SHORT_NS 10000000u
#define ROUNDS_MAX 64u

/* Test hook (test/rebuild.test.ts): TURBOMDBX_REBUILD_PAUSE=<step> makes the
 * rebuild stop at that step of the switch, say so in `<data>-paused` and sleep
 * until the test kills the process: 1 = "switching" published, 2 = renamed. */
static void test_pause(const tm_paths_t *p, int step) {
  const char *want = getenv("TURBOMDBX_REBUILD_PAUSE");
  if (!want || atoi(want) != step)
    return;
  char *flag = cat(p->data, "-paused");
  if (flag) {
    int fd = open(flag, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0)
      close(fd);
    free(flag);
  }
  for (;;)
    sleep_us(1000000);
}

static int rebuild_run(tm_rebuild_t *rb) {
  tm_paths_t *p = &rb->p;
  int side_fd = -1, lock_fd = -1;
  tm_sidecar_t *sc = NULL;
  MDBX_txn *a = NULL, *w = NULL;
  MDBX_env *copy = NULL;
  bool switched = false;
  int rc = sc_open(p->side, true, &side_fd, &sc);
  if (rc != MDBX_SUCCESS)
    return rc;
  lock_fd = rebuild_lock(p->side);
  if (lock_fd < 0) {
    rc = MDBX_BUSY;
    goto bailout;
  }
  if (__atomic_load_n(&sc->state, __ATOMIC_SEQ_CST) == SC_SWITCHING)
    sc_recover(p, sc);
  unlink(p->tmp);
  unlink(p->tmplck);

  MDBX_envinfo info;
  rc = mdbx_env_info_ex(rb->env, NULL, &info, sizeof(info));
  if (rc != MDBX_SUCCESS)
    goto bailout;
  put64(&rb->page_size, info.mi_dxb_pagesize);
  put64(&rb->pages_before, info.mi_geo.current / info.mi_dxb_pagesize);

  /* 1. copy a snapshot, compacted, in key order */
  put64(&rb->phase, RB_COPY);
  rc = mdbx_txn_begin(rb->env, NULL, MDBX_TXN_RDONLY, &a);
  if (rc != MDBX_SUCCESS)
    goto bailout;
  uint64_t t0 = now_ns();
  /* the copy becomes the database: it keeps the database's permission bits */
  uint32_t cpflags = MDBX_CP_COMPACT | MDBX_CP_OVERWRITE;
  rc = tm_copy_dest_prepare(rb->env, p->tmp, -1, &cpflags);
  if (rc != MDBX_SUCCESS)
    goto bailout;
  rc = mdbx_txn_copy2pathname_ex(a, p->tmp, (MDBX_copy_flags_t)cpflags, copy_progress, rb);
  if (rc != MDBX_SUCCESS)
    goto bailout;
  put64(&rb->copy_ns, now_ns() - t0);

  rc = mdbx_env_create(&copy);
  if (rc != MDBX_SUCCESS)
    goto bailout;
  uint64_t maxdbs = 0;
  if (mdbx_env_get_option(rb->env, MDBX_opt_max_db, &maxdbs) == MDBX_SUCCESS)
    mdbx_env_set_option(copy, MDBX_opt_max_db, maxdbs);
  if (rb->max_bytes) {
    rc = mdbx_env_set_geometry(copy, -1, -1, (intptr_t)rb->max_bytes, -1, -1, -1);
    if (rc != MDBX_SUCCESS)
      goto bailout;
  }
  rc = mdbx_env_open(copy, p->tmp, MDBX_NOSUBDIR | MDBX_SAFE_NOSYNC | MDBX_NOSTICKYTHREADS | MDBX_EXCLUSIVE, 0644);
  if (rc != MDBX_SUCCESS)
    goto bailout;

  /* 2. catch up in rounds until one is short */
  put64(&rb->phase, RB_CATCHUP);
  t0 = now_ns();
  for (;;) {
    if (rb->cancel) {
      rc = MDBX_EINTR;
      goto bailout;
    }
    const uint64_t r0 = now_ns();
    uint64_t keys = 0;
    rc = advance(rb, copy, &a, &keys);
    if (rc != MDBX_SUCCESS)
      goto bailout;
    put64(&rb->rounds, get64(&rb->rounds) + 1);
    if (keys < ROUND_FEW_KEYS || now_ns() - r0 < ROUND_SHORT_NS || get64(&rb->rounds) >= ROUNDS_MAX)
      break;
  }
  put64(&rb->catchup_ns, now_ns() - t0);
  if (rb->cancel) {
    rc = MDBX_EINTR;
    goto bailout;
  }

  /* 3. switch: with the write lock held nothing commits, so after the last
   * replay the copy is exactly the database */
  put64(&rb->phase, RB_SWITCH);
  rc = mdbx_txn_begin(rb->env, NULL, MDBX_TXN_READWRITE, &w);
  if (rc != MDBX_SUCCESS)
    goto bailout;
  const uint64_t w0 = now_ns();
  uint64_t keys = 0;
  rc = advance(rb, copy, &a, &keys);
  if (rc != MDBX_SUCCESS)
    goto bailout;
  mdbx_txn_abort(a), a = NULL;
  {
    MDBX_envinfo ci;
    if (mdbx_env_info_ex(copy, NULL, &ci, sizeof(ci)) == MDBX_SUCCESS)
      put64(&rb->pages_after, ci.mi_geo.current / ci.mi_dxb_pagesize);
  }
  rc = mdbx_env_close_ex(copy, false);
  copy = NULL;
  if (rc != MDBX_SUCCESS)
    goto bailout;
  unlink(p->tmplck);
  struct stat st;
  if (stat(p->tmp, &st) != 0) {
    rc = errno;
    goto bailout;
  }
  __atomic_store_n(&sc->dev, (uint64_t)st.st_dev, __ATOMIC_SEQ_CST);
  __atomic_store_n(&sc->ino, (uint64_t)st.st_ino, __ATOMIC_SEQ_CST);
  __atomic_store_n(&sc->pid, (uint32_t)getpid(), __ATOMIC_SEQ_CST);
  __atomic_store_n(&sc->state, SC_SWITCHING, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&sc->gen, 1, __ATOMIC_SEQ_CST);
  test_pause(p, 1);
  if (rename(p->tmp, p->data) != 0) {
    /* nothing moved: back to idle (processes see the generation change and stay) */
    rc = errno;
    __atomic_store_n(&sc->state, SC_IDLE, __ATOMIC_SEQ_CST);
    goto bailout;
  }
  switched = true;
  test_pause(p, 2);
  unlink(p->lck);
  sync_dir(p->dir);
  __atomic_add_fetch(&sc->switches, 1, __ATOMIC_SEQ_CST);
  __atomic_store_n(&sc->state, SC_IDLE, __ATOMIC_SEQ_CST);
  mdbx_txn_abort(w), w = NULL;
  put64(&rb->stall_ns, now_ns() - w0);
  rc = MDBX_SUCCESS;

bailout:
  if (w)
    mdbx_txn_abort(w);
  if (a)
    mdbx_txn_abort(a);
  if (copy)
    mdbx_env_close_ex(copy, true);
  if (!switched) {
    unlink(p->tmp);
    unlink(p->tmplck);
  }
  if (lock_fd >= 0)
    close(lock_fd);
  sc_close(side_fd, sc);
  return rc;
}

static void *rebuild_thread(void *arg) {
  tm_rebuild_t *rb = arg;
  put64(&rb->started_ns, now_ns());
  int rc = rebuild_run(rb);
  rb->rc = rc;
  put64(&rb->ended_ns, now_ns());
  put64(&rb->phase, rc == MDBX_SUCCESS ? RB_DONE : RB_FAILED);
  return NULL;
}

/* Starts a rebuild of `env` on a thread of its own. `max_bytes` (0: none)
 * limits the size of the new file (MDBX_MAP_FULL beyond). */
TM_API void *tm_rebuild_start(MDBX_env *env, double max_bytes, int32_t *rc) {
  tm_rebuild_t *rb = calloc(1, sizeof(*rb));
  if (!rb) {
    *rc = rb_rc(MDBX_ENOMEM);
    return NULL;
  }
  rb->env = env;
  rb->max_bytes = max_bytes > 0 ? (uint64_t)max_bytes : 0;
  int err = env_paths(env, &rb->p);
  if (err == MDBX_SUCCESS) {
    /* refuse early when another rebuild runs, so the caller gets a clear error at once */
    int lk = rebuild_lock(rb->p.side);
    if (lk >= 0)
      close(lk);
    else {
      int fd = -1;
      tm_sidecar_t *sc = NULL;
      err = sc_open(rb->p.side, true, &fd, &sc);
      sc_close(fd, sc);
      if (err == MDBX_SUCCESS)
        err = MDBX_BUSY;
    }
  }
  if (err == MDBX_SUCCESS)
    err = pthread_create(&rb->thread, NULL, rebuild_thread, rb);
  if (err != MDBX_SUCCESS) {
    paths_free(&rb->p);
    free(rb);
    *rc = rb_rc(err);
    return NULL;
  }
  rb->started = true;
  *rc = 0;
  return rb;
}

/* out: [phase, pages copied, pages total, page size, rounds, keys replayed,
 *       keys of the last round, stall ns, elapsed ns, copy ns, catch-up ns,
 *       pages before, pages after, rc]. Returns the phase. */
TM_API int tm_rebuild_poll(void *arg, double *out) {
  tm_rebuild_t *rb = arg;
  const uint64_t phase = get64(&rb->phase), start = get64(&rb->started_ns), end = get64(&rb->ended_ns);
  out[0] = (double)phase;
  out[1] = (double)get64(&rb->pages_copied);
  out[2] = (double)get64(&rb->pages_total);
  out[3] = (double)get64(&rb->page_size);
  out[4] = (double)get64(&rb->rounds);
  out[5] = (double)get64(&rb->keys);
  out[6] = (double)get64(&rb->last_keys);
  out[7] = (double)get64(&rb->stall_ns);
  out[8] = start ? (double)((end ? end : now_ns()) - start) : 0;
  out[9] = (double)get64(&rb->copy_ns);
  out[10] = (double)get64(&rb->catchup_ns);
  out[11] = (double)get64(&rb->pages_before);
  out[12] = (double)get64(&rb->pages_after);
  out[13] = phase >= RB_DONE ? (double)rb_rc(rb->rc) : 0;
  return (int)phase;
}

/* Asks the rebuild to stop; it stops before the switch or not at all. */
TM_API void tm_rebuild_cancel(void *arg) {
  tm_rebuild_t *rb = arg;
  rb->cancel = 1;
}

/* Waits for the rebuild thread, fills `out` as tm_rebuild_poll, frees it. */
TM_API int tm_rebuild_join(void *arg, double *out) {
  tm_rebuild_t *rb = arg;
  if (rb->started)
    pthread_join(rb->thread, NULL);
  tm_rebuild_poll(rb, out);
  const int rc = rb_rc(rb->rc);
  paths_free(&rb->p);
  free(rb);
  return rc;
}

/* out: [leaf pages, leaf pages out of key order] of table `dbi`. */
TM_API int tm_leaf_order(MDBX_txn *txn, uint32_t dbi, double *out) {
  uint64_t leaves = 0, bad = 0;
  int rc = mdbx_txn_leaf_order(txn, dbi, &leaves, &bad);
  out[0] = (double)leaves;
  out[1] = (double)bad;
  return rb_rc(rc);
}

#endif
