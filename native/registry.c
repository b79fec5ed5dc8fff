/* turbomdbx: one native environment per database file per process, shared by
 * every thread (Deno and Bun Workers, worker_threads) that opens it.
 *
 * libmdbx keeps one MDBX_env per file per process: its locks (the lock file's
 * fcntl locks) belong to the process, so a second MDBX_env of the same file in
 * the same process cannot coordinate with the first. Every Worker of a process
 * loads the same copy of this library (dlopen of one path returns one handle),
 * so this file's statics are the process's registry:
 *
 *  - Entries are keyed by the identity (st_dev, st_ino) of the data file, the
 *    file libmdbx maps (`<path>/mdbx.dat`, or `<path>` with MDBX_NOSUBDIR), so
 *    two spellings of one path (a symlink, a relative path) find one entry.
 *    tm_env_open registers the env it opened in the same critical section in
 *    which it checked that the file was not open yet: two Workers opening at
 *    once cannot both open it; the second is told to share (TM_OPEN_SHARED).
 *  - Each entry counts references (one per Env object of any thread); the last
 *    release closes the env (under the registry's lock, so that no new open of
 *    the file can race with the close).
 *  - Each thread records, in thread-local storage, the top-level transactions
 *    it began and the references it holds. When a thread exits with some of
 *    them still open (a Worker terminated, or one that returned without
 *    closing), the destructor of that storage runs on that thread as it exits:
 *    it aborts the transactions (a write transaction must be ended by the
 *    thread that holds libmdbx's writer lock, and only there; a read
 *    transaction frees its reader slot) and releases the references. Without
 *    this, the writer lock's robust mutex would pass to the next writer with
 *    EOWNERDEAD while the env still records the dead thread's transaction, and
 *    libmdbx would declare the whole env hosed (MDBX_PANIC).
 *  - The first opener's options (canonical JSON written by src/env.ts) are
 *    kept with the entry, so that a later open in another Worker can name the
 *    option it disagrees with and both values.
 *
 * docs/workers.md has the design, its invariants and how each is tested.
 */
#include "mdbx.h"
#include "codes.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TM_API __dll_export


static inline int rg_rc(int rc) { return rc > 0 ? -rc : rc; }

/* native/rebuild.c */
void tm_switch_detach(MDBX_env *env);
int tm_env_close_retired(MDBX_env *env);
void tm_cache_env_closing(MDBX_env *env);

#if defined(_WIN32) || defined(_WIN64)

/* The registry relies on pthreads and POSIX file identity: not on Windows yet,
 * where every open is a new env as before and a Worker's open of an open file
 * fails as libmdbx decides. */
int tm_registry_open(MDBX_env *env, const char *path, uint32_t flags, uint32_t mode) {
  return rg_rc(mdbx_env_open(env, path, (MDBX_env_flags_t)flags, (mdbx_mode_t)mode));
}
int tm_registry_release(MDBX_env *env, int dont_sync) {
  tm_cache_env_closing(env);
  tm_switch_detach(env);
  return rg_rc(mdbx_env_close_ex(env, dont_sync != 0));
}
int tm_registry_busy(const char *path) { (void)path; return 0; }
int tm_registry_shared(const MDBX_env *env) { (void)env; return 0; }
void tm_registry_track_txn(MDBX_txn *txn) { (void)txn; }
void tm_registry_untrack_txn(MDBX_txn *txn) { (void)txn; }
TM_API MDBX_env *tm_env_share(const char *path, uint32_t nosubdir, int32_t *rc) {
  (void)path, (void)nosubdir;
  *rc = 0;
  return NULL;
}
TM_API int tm_env_release_retired(MDBX_env *env) {
  tm_cache_env_closing(env);
  return tm_env_close_retired(env);
}
TM_API int tm_env_note_set(MDBX_env *env, const uint8_t *note, uint32_t len) {
  (void)env, (void)note, (void)len;
  return 0;
}
TM_API int tm_env_note_get(MDBX_env *env, uint8_t *out, uint32_t cap) {
  (void)env, (void)out, (void)cap;
  return 0;
}
TM_API int tm_registry_info(MDBX_env *env, double *out) {
  (void)env;
  memset(out, 0, 6 * sizeof(double));
  return 0;
}

#else

#include <pthread.h>
#include <sys/stat.h>

typedef struct tm_entry {
  struct tm_entry *next;
  MDBX_env *env;
  uint64_t dev, ino;
  uint32_t refs;
  uint8_t *note;
  uint32_t note_len;
} tm_entry;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static tm_entry *reg_head;
/* what thread exits recovered, for tests and diagnostics */
static uint64_t recovered_txns, recovered_refs, exited_threads;

/* ----------------------------------------------------- per-thread records --- */

typedef struct tm_thread {
  MDBX_txn **txns;
  uint32_t ntxn, captxn;
  MDBX_env **envs; /* one element per reference held */
  uint32_t nenv, capenv;
} tm_thread;

static pthread_key_t thr_key;
static pthread_once_t thr_once = PTHREAD_ONCE_INIT;
static int thr_key_ok;

static int reg_release(MDBX_env *env, int dont_sync, int retired, int from_thread_exit);

/* Runs on a thread that exits with transactions or references still recorded:
 * a Worker that was terminated, or whose script ended without closing. */
static void thr_exit(void *arg) {
  tm_thread *t = arg;
  uint64_t txns = 0, refs = 0;
  while (t->ntxn > 0) {
    MDBX_txn *txn = t->txns[--t->ntxn];
    const MDBX_env *env = mdbx_txn_env(txn);
    MDBX_env_flags_t flags = 0;
    /* With stickyThreads libmdbx's own thread destructor frees the thread's
     * reader slots (in an unknown order with this one), so a read transaction
     * is left alone then; a write transaction takes no reader slot. */
    if (env && mdbx_env_get_flags(env, &flags) == MDBX_SUCCESS && !(flags & MDBX_NOSTICKYTHREADS) &&
        (mdbx_txn_flags(txn) & MDBX_TXN_RDONLY))
      continue;
    mdbx_txn_abort(txn);
    txns++;
  }
  while (t->nenv > 0) {
    reg_release(t->envs[--t->nenv], 0, 0, 1);
    refs++;
  }
  free(t->txns);
  free(t->envs);
  free(t);
  __atomic_add_fetch(&recovered_txns, txns, __ATOMIC_RELAXED);
  __atomic_add_fetch(&recovered_refs, refs, __ATOMIC_RELAXED);
  __atomic_add_fetch(&exited_threads, 1, __ATOMIC_RELAXED);
}

static void thr_init(void) { thr_key_ok = pthread_key_create(&thr_key, thr_exit) == 0; }

/* When the library is unloaded (the last dlclose: Deno closes it with each
 * isolate that loaded it, e.g. after each test file), the key goes with it: a
 * thread that exits later must not call thr_exit, whose code is gone (that was
 * a SIGSEGV in __nptl_deallocate_tsd). What such threads still recorded is
 * left as it is: no code of this library can use it any more. */
__attribute__((destructor)) static void thr_unload(void) {
  if (thr_key_ok) {
    thr_key_ok = 0;
    pthread_key_delete(thr_key);
  }
}

static tm_thread *thr_self(int create) {
  pthread_once(&thr_once, thr_init);
  if (!thr_key_ok)
    return NULL;
  tm_thread *t = pthread_getspecific(thr_key);
  if (!t && create) {
    t = calloc(1, sizeof(*t));
    if (t && pthread_setspecific(thr_key, t) != 0) {
      free(t);
      t = NULL;
    }
  }
  return t;
}

static int push(void ***arr, uint32_t *n, uint32_t *cap, void *p) {
  if (*n == *cap) {
    uint32_t nc = *cap ? *cap * 2 : 8;
    void **a = realloc(*arr, nc * sizeof(void *));
    if (!a)
      return MDBX_ENOMEM;
    *arr = a;
    *cap = nc;
  }
  (*arr)[(*n)++] = p;
  return MDBX_SUCCESS;
}

/* Removes one occurrence, searching from the newest (the usual one to end). */
static int pull(void **arr, uint32_t *n, const void *p) {
  for (uint32_t i = *n; i-- > 0;)
    if (arr[i] == p) {
      arr[i] = arr[--*n];
      return 1;
    }
  return 0;
}

/* Called by tm_txn_begin for every top-level transaction it began. Failing to
 * record one (out of memory) only loses the recovery of that transaction. */
void tm_registry_track_txn(MDBX_txn *txn) {
  tm_thread *t = thr_self(1);
  if (t)
    push((void ***)&t->txns, &t->ntxn, &t->captxn, txn);
}

/* Called before a transaction is committed or aborted (a nested one is not recorded: nothing happens). */
void tm_registry_untrack_txn(MDBX_txn *txn) {
  tm_thread *t = thr_self(0);
  if (t && t->ntxn)
    pull((void **)t->txns, &t->ntxn, txn);
}

static void thr_ref(MDBX_env *env) {
  tm_thread *t = thr_self(1);
  if (t)
    push((void ***)&t->envs, &t->nenv, &t->capenv, env);
}

static int thr_holds(const MDBX_env *env) {
  tm_thread *t = thr_self(0);
  if (t)
    for (uint32_t i = 0; i < t->nenv; i++)
      if (t->envs[i] == env)
        return 1;
  return 0;
}

/* ---------------------------------------------------------------- entries --- */

static char *data_path(const char *path, int nosubdir) {
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/')
    n--;
  char *s = malloc(n + sizeof("/mdbx.dat"));
  if (!s)
    return NULL;
  memcpy(s, path, n);
  if (nosubdir)
    s[n] = 0;
  else
    memcpy(s + n, "/mdbx.dat", sizeof("/mdbx.dat"));
  return s;
}

/* Under reg_lock: the entry of the data file `path` names now, or NULL. */
static tm_entry *find_path(const char *path, int nosubdir, int *err) {
  *err = 0;
  char *dp = data_path(path, nosubdir);
  if (!dp) {
    *err = MDBX_ENOMEM;
    return NULL;
  }
  struct stat st;
  const int ok = stat(dp, &st) == 0;
  free(dp);
  if (!ok)
    return NULL; /* not there (yet): not open here either */
  for (tm_entry *e = reg_head; e; e = e->next)
    if (e->dev == (uint64_t)st.st_dev && e->ino == (uint64_t)st.st_ino)
      return e;
  return NULL;
}

static tm_entry *find_env(const MDBX_env *env) {
  for (tm_entry *e = reg_head; e; e = e->next)
    if (e->env == env)
      return e;
  return NULL;
}

static void entry_unlink(tm_entry *e) {
  for (tm_entry **p = &reg_head; *p; p = &(*p)->next)
    if (*p == e) {
      *p = e->next;
      break;
    }
  free(e->note);
  free(e);
}

/* The open of native/turbomdbx.c's tm_env_open: refuses a file this process
 * has open already (TM_OPEN_SHARED: share that env instead), otherwise opens
 * it and registers it, with one reference held by the calling thread. */
int tm_registry_open(MDBX_env *env, const char *path, uint32_t flags, uint32_t mode) {
  pthread_mutex_lock(&reg_lock);
  int err;
  if (find_path(path, (flags & MDBX_NOSUBDIR) != 0, &err)) {
    pthread_mutex_unlock(&reg_lock);
    return TM_OPEN_SHARED;
  }
  int rc = mdbx_env_open(env, path, (MDBX_env_flags_t)flags, (mdbx_mode_t)mode);
  if (rc == MDBX_SUCCESS) {
    mdbx_filehandle_t fd;
    struct stat st;
    tm_entry *e = calloc(1, sizeof(*e));
    if (e && mdbx_env_get_fd(env, &fd) == MDBX_SUCCESS && fstat(fd, &st) == 0) {
      e->env = env;
      e->dev = (uint64_t)st.st_dev;
      e->ino = (uint64_t)st.st_ino;
      e->refs = 1;
      e->next = reg_head;
      reg_head = e;
      thr_ref(env);
    } else {
      /* unregistered, it still works as one Env (closed directly); only sharing is lost */
      free(e);
    }
  }
  pthread_mutex_unlock(&reg_lock);
  return rg_rc(rc);
}

/* Drops one reference; the last closes the env (for a file a live rebuild
 * replaced: on a thread of its own, see tm_env_close_retired). An env that was
 * never registered is closed at once. */
static int reg_release(MDBX_env *env, int dont_sync, int retired, int from_thread_exit) {
  if (!from_thread_exit) {
    tm_thread *t = thr_self(0);
    if (t)
      pull((void **)t->envs, &t->nenv, env);
  }
  pthread_mutex_lock(&reg_lock);
  tm_entry *e = find_env(env);
  if (e && --e->refs > 0) {
    pthread_mutex_unlock(&reg_lock);
    return MDBX_SUCCESS;
  }
  if (e)
    entry_unlink(e);
  tm_cache_env_closing(env); /* a cache an exited thread's Env left on it */
  int rc = MDBX_SUCCESS;
  if (retired)
    rc = tm_env_close_retired(env);
  else {
    tm_switch_detach(env);
    rc = mdbx_env_close_ex(env, dont_sync != 0);
  }
  pthread_mutex_unlock(&reg_lock);
  return rg_rc(rc);
}

int tm_registry_release(MDBX_env *env, int dont_sync) { return reg_release(env, dont_sync, 0, 0); }

/* Whether the database at `path` is open in this process (tm_env_delete refuses it). */
int tm_registry_busy(const char *path) {
  int busy = 0, err;
  pthread_mutex_lock(&reg_lock);
  for (int nosub = 0; nosub < 2 && !busy; nosub++)
    busy = find_path(path, nosub, &err) != NULL;
  pthread_mutex_unlock(&reg_lock);
  return busy;
}

/* Whether another Env (of any thread) holds a reference to env too. */
int tm_registry_shared(const MDBX_env *env) {
  pthread_mutex_lock(&reg_lock);
  const tm_entry *e = find_env(env);
  const int shared = e && e->refs > 1;
  pthread_mutex_unlock(&reg_lock);
  return shared;
}

/* The env of the database at `path` if this process has it open, with a new
 * reference held by the calling thread; NULL with *rc 0 if it is not open,
 * TM_SAME_THREAD if this thread holds it already (under another spelling of
 * the path). Envs sharing an env share its get() cache too (native/cache.c). */
TM_API MDBX_env *tm_env_share(const char *path, uint32_t nosubdir, int32_t *rc) {
  int err;
  MDBX_env *env = NULL;
  pthread_mutex_lock(&reg_lock);
  tm_entry *e = find_path(path, nosubdir != 0, &err);
  if (e == NULL)
    *rc = rg_rc(err);
  else if (thr_holds(e->env))
    *rc = TM_SAME_THREAD;
  else {
    e->refs++;
    thr_ref(e->env);
    env = e->env;
    *rc = 0;
  }
  pthread_mutex_unlock(&reg_lock);
  return env;
}

/* Releases a reference to the env of a file a live rebuild replaced. */
TM_API int tm_env_release_retired(MDBX_env *env) { return reg_release(env, 1, 1, 0); }

/* The first opener's options (canonical JSON from src/env.ts). */
TM_API int tm_env_note_set(MDBX_env *env, const uint8_t *note, uint32_t len) {
  int rc = MDBX_SUCCESS;
  pthread_mutex_lock(&reg_lock);
  tm_entry *e = find_env(env);
  if (e) {
    uint8_t *copy = malloc(len ? len : 1);
    if (copy) {
      memcpy(copy, note, len);
      free(e->note);
      e->note = copy;
      e->note_len = len;
    } else
      rc = MDBX_ENOMEM;
  }
  pthread_mutex_unlock(&reg_lock);
  return rg_rc(rc);
}

/* Copies the note to `out` if it fits; returns its length (0: none). */
TM_API int tm_env_note_get(MDBX_env *env, uint8_t *out, uint32_t cap) {
  int n = 0;
  pthread_mutex_lock(&reg_lock);
  tm_entry *e = find_env(env);
  if (e && e->note) {
    n = (int)e->note_len;
    if (e->note_len <= cap)
      memcpy(out, e->note, e->note_len);
  }
  pthread_mutex_unlock(&reg_lock);
  return n;
}

/* out: [references to env (0: not registered), entries in the registry,
 *       transactions and references recovered from exited threads, threads
 *       that exited with records, the address of the registry (one per copy of
 *       the library: equal in every Worker that loaded the same one)] */
TM_API int tm_registry_info(MDBX_env *env, double *out) {
  pthread_mutex_lock(&reg_lock);
  tm_entry *e = env ? find_env(env) : NULL;
  uint32_t n = 0;
  for (tm_entry *i = reg_head; i; i = i->next)
    n++;
  out[0] = e ? e->refs : 0;
  out[1] = n;
  pthread_mutex_unlock(&reg_lock);
  out[2] = (double)__atomic_load_n(&recovered_txns, __ATOMIC_RELAXED);
  out[3] = (double)__atomic_load_n(&recovered_refs, __ATOMIC_RELAXED);
  out[4] = (double)__atomic_load_n(&exited_threads, __ATOMIC_RELAXED);
  out[5] = (double)(uintptr_t)&reg_head;
  return 0;
}

#endif
