/* turbomdbx: FFI-shaped entry points over libmdbx.
 *
 * The C API passes keys and values as MDBX_val structs and returns results
 * through out-pointers. Neither FFI handles that cheaply: building an MDBX_val
 * in JavaScript needs the address of a JS buffer, and u64/size_t results come
 * back as bigint in Deno. These wrappers take (buffer, length) pairs, copy
 * results into caller-owned buffers and report numbers as int32 or double, so
 * every hot call (get, put, cursor step, batched scan) is a fast call in both
 * runtimes and allocates nothing.
 *
 * Conventions:
 *  - An int return is >= 0 on success. Errors are returned negative: libmdbx's
 *    own codes are already negative (-30799 .. -30400), errno values are
 *    negated. TypeScript turns them back with `r <= -30000 ? r : -r`.
 *  - "pair" results are written to `out` as [u32 klen][u32 vlen][u32 flags]
 *    [key][value]; the return is the size needed (12 + klen + vlen). When it is
 *    larger than `cap` only the header was written and the caller grows its
 *    buffer and asks again (the cursor did not move).
 *  - Numbers that may exceed 32 bits (addresses, sizes, txnids) are written to
 *    a double array: exact below 2^53, which addresses, page counts and txnids
 *    stay under.
 */
#include "mdbx.h"
#include "codes.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(_WIN32) || defined(_WIN64)
#include <direct.h>
#define rmdir _rmdir
#else
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#endif

#define TM_API __dll_export

static inline int tm_rc(int rc) { return rc > 0 ? -rc : rc; }

/* native/cache.c: the get() cache learns whether a commit succeeded */
typedef struct tm_cache tm_cache;
tm_cache *tm_cache_of(MDBX_env *env);
void tm_cache_confirm(tm_cache *c, int ok);

/* native/registry.c: one env per file per process, shared by its Workers */
int tm_registry_open(MDBX_env *env, const char *path, uint32_t flags, uint32_t mode);
int tm_registry_release(MDBX_env *env, int dont_sync);
int tm_registry_busy(const char *path);
int tm_registry_shared(const MDBX_env *env);
void tm_registry_track_txn(MDBX_txn *txn);
void tm_registry_untrack_txn(MDBX_txn *txn);

/* native/rebuild.c: the switch of a live rebuild */
int tm_switch_moved(MDBX_env *env);
void tm_switch_detach(MDBX_env *env);
void tm_switch_forget(const char *path);

static inline MDBX_val tm_val(const void *p, uint32_t n) {
  MDBX_val v;
  v.iov_base = (void *)p;
  v.iov_len = n;
  return v;
}

enum { TM_PAIR_HEADER = 12 };

static int tm_pair_out(uint8_t *out, uint32_t cap, const MDBX_val *k, const MDBX_val *v, uint32_t flags) {
  const uint32_t kl = k ? (uint32_t)k->iov_len : 0, vl = v ? (uint32_t)v->iov_len : 0;
  const uint64_t need = (uint64_t)TM_PAIR_HEADER + kl + vl;
  if (need > INT32_MAX)
    return tm_rc(MDBX_TOO_LARGE);
  if (cap >= TM_PAIR_HEADER) {
    memcpy(out, &kl, 4);
    memcpy(out + 4, &vl, 4);
    memcpy(out + 8, &flags, 4);
  }
  if (need <= cap) {
    if (kl)
      memcpy(out + TM_PAIR_HEADER, k->iov_base, kl);
    if (vl)
      memcpy(out + TM_PAIR_HEADER + kl, v->iov_base, vl);
  }
  return (int)need;
}

/* native/log.c: libmdbx's log goes to a ring that JavaScript drains, never to stderr */
void tm_log_install(void);

/* Called once by the loader: names the patch level and installs turbomdbx's
 * logger, before any other call can make libmdbx log. */
TM_API const char *tm_version(void) {
  static int once;
  if (!once) {
    once = 1;
    tm_log_install();
  }
  return mdbx_turbomdbx_patchlevel();
}

/* libraryInfo() (src/ffi/library.ts): the libmdbx release and the target this
 * library was built for, as "major.minor.patch<TAB>git describe<TAB>target". */
TM_API const char *tm_build_info(void) {
  static char info[256];
  if (!info[0])
    snprintf(info, sizeof(info), "%u.%u.%u\t%.100s\t%.100s", (unsigned)mdbx_version.major,
             (unsigned)mdbx_version.minor, (unsigned)mdbx_version.patch,
             mdbx_version.git.describe ? mdbx_version.git.describe : "", mdbx_build.target ? mdbx_build.target : "");
  return info;
}

/* The constants src/constants.ts mirrors. */
_Static_assert(MDBX_TO_KEY_GREATER_THAN == 25, "cursor op numbering changed");
_Static_assert(MDBX_SET_LOWERBOUND == 19, "cursor op numbering changed");
_Static_assert(MDBX_opt_presync_threshold == 22, "option numbering changed");
_Static_assert(MDBX_NOSTICKYTHREADS == 0x200000, "env flag changed");
_Static_assert(MDBX_INTEGERDUP == 0x20, "db flag changed");

/* ------------------------------------------------------------------ env --- */

TM_API MDBX_env *tm_env_create(int32_t *rc) {
  MDBX_env *env = NULL;
  *rc = tm_rc(mdbx_env_create(&env));
  return env;
}

TM_API int tm_env_set_option(MDBX_env *env, int32_t option, double value) {
  return tm_rc(mdbx_env_set_option(env, (MDBX_option_t)option, (uint64_t)value));
}

TM_API double tm_env_get_option(MDBX_env *env, int32_t option, int32_t *rc) {
  uint64_t v = 0;
  *rc = tm_rc(mdbx_env_get_option(env, (MDBX_option_t)option, &v));
  return (double)v;
}

/* Sizes as doubles; -1 keeps libmdbx's default for that field. */
TM_API int tm_env_set_geometry(MDBX_env *env, double lower, double now, double upper, double growth, double shrink,
                               double pagesize) {
  return tm_rc(mdbx_env_set_geometry(env, (intptr_t)lower, (intptr_t)now, (intptr_t)upper, (intptr_t)growth,
                                     (intptr_t)shrink, (intptr_t)pagesize));
}

/* Registers the env in native/registry.c, or answers TM_OPEN_SHARED (-29998)
 * when this process has the file open already: share that env instead. */
TM_API int tm_env_open(MDBX_env *env, const char *path, uint32_t flags, uint32_t mode) {
  return tm_registry_open(env, path, flags, mode);
}

/* Releases one Env's reference; the last one closes the env. */
TM_API int tm_env_close(MDBX_env *env, int32_t dont_sync) { return tm_registry_release(env, dont_sync); }

TM_API int tm_env_sync(MDBX_env *env, int32_t force, int32_t nonblock) {
  return tm_rc(mdbx_env_sync_ex(env, force != 0, nonblock != 0));
}

TM_API int tm_env_get_flags(MDBX_env *env, uint32_t *flags) { return tm_rc(mdbx_env_get_flags(env, flags)); }

TM_API int tm_env_set_flags(MDBX_env *env, uint32_t flags, int32_t onoff) {
  return tm_rc(mdbx_env_set_flags(env, (MDBX_env_flags_t)flags, onoff != 0));
}

TM_API int tm_env_maxkeysize(MDBX_env *env, uint32_t dbflags) {
  return mdbx_env_get_maxkeysize_ex(env, (MDBX_db_flags_t)dbflags);
}

TM_API int tm_env_maxvalsize(MDBX_env *env, uint32_t dbflags) {
  return mdbx_env_get_maxvalsize_ex(env, (MDBX_db_flags_t)dbflags);
}

#if defined(_WIN32) || defined(_WIN64)
int tm_copy_dest_prepare(MDBX_env *env, const char *dest, int32_t mode, uint32_t *flags) {
  (void)env, (void)dest, (void)mode, (void)flags; /* Windows: the destination inherits its folder's ACL */
  return MDBX_SUCCESS;
}
#else
/* libmdbx creates a copy with mode 0660 less the umask: a database kept 0664
 * would get a copy others cannot read, one kept 0600 a copy the group can. So
 * the destination is created here first, with the permission bits of the
 * source's data file (or `mode` when >= 0) set exactly, whatever the umask;
 * libmdbx then writes into it (MDBX_CP_OVERWRITE). Without `overwrite` an
 * existing destination is still refused (EEXIST), as libmdbx would. Also used
 * by native/rebuild.c for the file a live rebuild switches to. */
int tm_copy_dest_prepare(MDBX_env *env, const char *dest, int32_t mode, uint32_t *flags) {
  if (mode < 0) {
    mdbx_filehandle_t sfd;
    struct stat st;
    int rc = mdbx_env_get_fd(env, &sfd);
    if (rc != MDBX_SUCCESS)
      return rc;
    if (fstat(sfd, &st) != 0)
      return errno;
    mode = (int32_t)(st.st_mode & 0777);
  }
  bool created = true;
  int fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST && (*flags & MDBX_CP_OVERWRITE)) {
    created = false;
    fd = open(dest, O_WRONLY | O_CLOEXEC);
  }
  if (fd < 0)
    return errno;
  int rc = fchmod(fd, (mode_t)(mode & 0777)) != 0 ? errno : MDBX_SUCCESS;
  close(fd);
  if (rc != MDBX_SUCCESS && created)
    unlink(dest);
  if (rc == MDBX_SUCCESS)
    *flags |= MDBX_CP_OVERWRITE;
  return rc;
}
#endif

TM_API int tm_env_copy(MDBX_env *env, const char *dest, uint32_t flags, int32_t mode) {
  int rc = tm_copy_dest_prepare(env, dest, mode, &flags);
  return tm_rc(rc != MDBX_SUCCESS ? rc : mdbx_env_copy(env, dest, (MDBX_copy_flags_t)flags));
}

TM_API int tm_txn_copy(MDBX_txn *txn, const char *dest, uint32_t flags, int32_t mode) {
  int rc = tm_copy_dest_prepare(mdbx_txn_env(txn), dest, mode, &flags);
  return tm_rc(rc != MDBX_SUCCESS ? rc : mdbx_txn_copy2pathname(txn, dest, (MDBX_copy_flags_t)flags));
}

/* mdbx_env_delete, plus turbomdbx's own files (the rebuild sidecar, which in a
 * folder database otherwise keeps libmdbx from removing the folder). */
TM_API int tm_env_delete(const char *path, int32_t mode) {
  /* another Worker of this process has it open: its fcntl locks are this process's, so libmdbx would not see them */
  if (mode != MDBX_ENV_JUST_DELETE && tm_registry_busy(path))
    return tm_rc(MDBX_BUSY);
  int rc = mdbx_env_delete(path, (MDBX_env_delete_mode_t)mode);
  if (rc == MDBX_SUCCESS || rc == MDBX_RESULT_TRUE || rc == ENOTEMPTY) {
    tm_switch_forget(path);
    if (rc == ENOTEMPTY)
      rc = rmdir(path) == 0 ? MDBX_SUCCESS : errno;
  }
  return tm_rc(rc);
}

TM_API int tm_reader_check(MDBX_env *env, int32_t *dead) {
  int d = 0, rc = mdbx_reader_check(env, &d);
  *dead = d;
  return rc == MDBX_RESULT_TRUE ? 0 : tm_rc(rc);
}

TM_API int tm_env_warmup(MDBX_env *env, MDBX_txn *txn, uint32_t flags, uint32_t timeout_seconds_16dot16) {
  int rc = mdbx_env_warmup(env, txn, (MDBX_warmup_flags_t)flags, timeout_seconds_16dot16);
  return rc == MDBX_RESULT_TRUE ? 1 : tm_rc(rc);
}

static void tm_stat_out(const MDBX_stat *st, double *out) {
  out[0] = st->ms_psize;
  out[1] = st->ms_depth;
  out[2] = (double)st->ms_branch_pages;
  out[3] = (double)st->ms_leaf_pages;
  out[4] = (double)st->ms_overflow_pages;
  out[5] = (double)st->ms_entries;
  out[6] = (double)st->ms_mod_txnid;
}

/* out: 7 doubles, see tm_stat_out */
TM_API int tm_env_stat(MDBX_env *env, MDBX_txn *txn, double *out) {
  MDBX_stat st;
  int rc = mdbx_env_stat_ex(env, txn, &st, sizeof(st));
  if (rc == MDBX_SUCCESS)
    tm_stat_out(&st, out);
  return tm_rc(rc);
}

TM_API int tm_dbi_stat(MDBX_txn *txn, uint32_t dbi, double *out) {
  MDBX_stat st;
  int rc = mdbx_dbi_stat(txn, dbi, &st, sizeof(st));
  if (rc == MDBX_SUCCESS)
    tm_stat_out(&st, out);
  return tm_rc(rc);
}

/* out: 24 doubles in the order of src/env.ts ENV_INFO_FIELDS */
TM_API int tm_env_info(MDBX_env *env, MDBX_txn *txn, double *out) {
  MDBX_envinfo i;
  int rc = mdbx_env_info_ex(env, txn, &i, sizeof(i));
  if (rc != MDBX_SUCCESS)
    return tm_rc(rc);
  size_t n = 0;
  out[n++] = (double)i.mi_geo.lower;
  out[n++] = (double)i.mi_geo.upper;
  out[n++] = (double)i.mi_geo.current;
  out[n++] = (double)i.mi_geo.shrink;
  out[n++] = (double)i.mi_geo.grow;
  out[n++] = (double)i.mi_mapsize;
  out[n++] = (double)i.mi_dxb_fsize;
  out[n++] = (double)i.mi_last_pgno;
  out[n++] = (double)i.mi_recent_txnid;
  out[n++] = (double)i.mi_latter_reader_txnid;
  out[n++] = (double)i.mi_self_latter_reader_txnid;
  out[n++] = i.mi_maxreaders;
  out[n++] = i.mi_numreaders;
  out[n++] = i.mi_dxb_pagesize;
  out[n++] = i.mi_sys_pagesize;
  out[n++] = (double)i.mi_unsync_volume;
  out[n++] = (double)i.mi_autosync_threshold;
  out[n++] = i.mi_since_sync_seconds16dot16 / 65536.0;
  out[n++] = i.mi_autosync_period_seconds16dot16 / 65536.0;
  out[n++] = i.mi_since_reader_check_seconds16dot16 / 65536.0;
  out[n++] = i.mi_mode;
  out[n++] = (double)i.mi_pgop_stat.newly;
  out[n++] = (double)i.mi_pgop_stat.cow;
  out[n++] = (double)i.mi_pgop_stat.wops;
  return 0;
}

/* ----------------------------------------------------------------- txns --- */

#if !(defined(_WIN32) || defined(_WIN64))
/* Waits for the writer lock of an env that other Workers share in slices: tries
 * it with backoff (20 us doubling to 1 ms) and returns TM_WRITE_WAIT after
 * about 10 ms, so that the calling thread gets back to JavaScript and can be
 * terminated while it waits (Bun's worker.terminate() waits for a thread blocked
 * in a native call; a thread blocked on the lock its terminator holds would
 * never come back). */
static int tm_write_begin_sliced(MDBX_env *env, uint32_t flags, MDBX_txn **txn) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long us = 20;
  for (;;) {
    int rc = mdbx_txn_begin_ex(env, NULL, (MDBX_txn_flags_t)(flags | MDBX_TXN_TRY), txn, NULL);
    if (rc != MDBX_BUSY)
      return rc;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) > 10000000L)
      return TM_WRITE_WAIT;
    struct timespec d = {0, us * 1000};
    nanosleep(&d, NULL);
    us = us < 500 ? us * 2 : 1000;
  }
}

#endif

/* A top-level write transaction checks, once it holds the write lock, that a
 * live rebuild has not moved the database to a new file (native/rebuild.c);
 * if it has, nothing may be written here: TM_SWITCHED tells the caller to
 * follow the database and begin again. */
TM_API MDBX_txn *tm_txn_begin(MDBX_env *env, MDBX_txn *parent, uint32_t flags, int32_t *rc) {
  MDBX_txn *txn = NULL;
#if defined(_WIN32) || defined(_WIN64)
  *rc = tm_rc(mdbx_txn_begin_ex(env, parent, (MDBX_txn_flags_t)flags, &txn, NULL));
#else
  if (!parent && !(flags & MDBX_TXN_RDONLY) && tm_registry_shared(env))
    *rc = tm_rc(tm_write_begin_sliced(env, flags, &txn));
  else
    *rc = tm_rc(mdbx_txn_begin_ex(env, parent, (MDBX_txn_flags_t)flags, &txn, NULL));
#endif
  if (txn && !parent && !(flags & MDBX_TXN_RDONLY) && tm_switch_moved(env)) {
    mdbx_txn_abort(txn);
    *rc = TM_SWITCHED;
    return NULL;
  }
  if (txn && !parent)
    tm_registry_track_txn(txn); /* ended by its thread's exit if the thread forgets it (a terminated Worker) */
  return txn;
}

/* The get() cache's relocation events are applied inside the commit; whether
 * the commit succeeded it learns here (tm_cache_confirm). */
TM_API int tm_txn_commit(MDBX_txn *txn) {
  tm_registry_untrack_txn(txn);
  tm_cache *const cache = tm_cache_of(mdbx_txn_env(txn));
  int rc = mdbx_txn_commit_ex(txn, NULL);
  tm_cache_confirm(cache, rc == MDBX_SUCCESS); /* always: it ends what tm_cache_of began */
  return tm_rc(rc);
}

TM_API int tm_txn_abort(MDBX_txn *txn) {
  tm_registry_untrack_txn(txn);
  return tm_rc(mdbx_txn_abort(txn));
}
TM_API int tm_txn_reset(MDBX_txn *txn) { return tm_rc(mdbx_txn_reset(txn)); }
TM_API int tm_txn_renew(MDBX_txn *txn) { return tm_rc(mdbx_txn_renew(txn)); }
TM_API int tm_txn_break(MDBX_txn *txn) { return tm_rc(mdbx_txn_break(txn)); }
TM_API int tm_txn_park(MDBX_txn *txn, int32_t autounpark) { return tm_rc(mdbx_txn_park(txn, autounpark != 0)); }

/* Returns 0, or 1 when the reader was ousted and restarted on a new snapshot. */
TM_API int tm_txn_unpark(MDBX_txn *txn, int32_t restart_if_ousted) {
  int rc = mdbx_txn_unpark(txn, restart_if_ousted != 0);
  return rc == MDBX_RESULT_TRUE ? 1 : tm_rc(rc);
}

TM_API double tm_txn_id(MDBX_txn *txn) { return (double)mdbx_txn_id(txn); }
TM_API int tm_txn_flags(MDBX_txn *txn) { return (int)mdbx_txn_flags(txn); }

/* out: 9 doubles: id, reader_lag, space used, limit soft, limit hard, retired, leftover, dirty, pget */
TM_API int tm_txn_info(MDBX_txn *txn, int32_t scan_rlt, double *out) {
  MDBX_txn_info i;
  int rc = mdbx_txn_info(txn, &i, scan_rlt != 0);
  if (rc != MDBX_SUCCESS)
    return tm_rc(rc);
  out[0] = (double)i.txn_id;
  out[1] = (double)i.txn_reader_lag;
  out[2] = (double)i.txn_space_used;
  out[3] = (double)i.txn_space_limit_soft;
  out[4] = (double)i.txn_space_limit_hard;
  out[5] = (double)i.txn_space_retired;
  out[6] = (double)i.txn_space_leftover;
  out[7] = (double)i.txn_space_dirty;
  out[8] = (double)i.txn_pget;
  return 0;
}

/* canary: 4 doubles x, y, z, v (v is read-only: the txnid of the canary's last change) */
TM_API int tm_canary_get(MDBX_txn *txn, double *out) {
  MDBX_canary c;
  int rc = mdbx_canary_get(txn, &c);
  if (rc == MDBX_SUCCESS) {
    out[0] = (double)c.x;
    out[1] = (double)c.y;
    out[2] = (double)c.z;
    out[3] = (double)c.v;
  }
  return tm_rc(rc);
}

TM_API int tm_canary_put(MDBX_txn *txn, double x, double y, double z) {
  MDBX_canary c;
  c.x = (uint64_t)x;
  c.y = (uint64_t)y;
  c.z = (uint64_t)z;
  c.v = 0;
  return tm_rc(mdbx_canary_put(txn, &c));
}

/* --------------------------------------------------------------- tables --- */

TM_API int tm_dbi_open(MDBX_txn *txn, const void *name, uint32_t name_len, int32_t has_name, uint32_t flags,
                       uint32_t *dbi) {
  MDBX_val n = tm_val(name, name_len);
  return tm_rc(mdbx_dbi_open2(txn, has_name ? &n : NULL, (MDBX_db_flags_t)flags, dbi));
}

TM_API int tm_dbi_rename(MDBX_txn *txn, uint32_t dbi, const void *name, uint32_t name_len) {
  MDBX_val n = tm_val(name, name_len);
  return tm_rc(mdbx_dbi_rename2(txn, dbi, &n));
}

TM_API int tm_dbi_flags(MDBX_txn *txn, uint32_t dbi, uint32_t *out /* [flags, state] */) {
  unsigned f = 0, s = 0;
  int rc = mdbx_dbi_flags_ex(txn, dbi, &f, &s);
  out[0] = f;
  out[1] = s;
  return tm_rc(rc);
}

TM_API int tm_dbi_close(MDBX_env *env, uint32_t dbi) { return tm_rc(mdbx_dbi_close(env, dbi)); }
/* Deleting a table closes its handle for the whole env, and libmdbx may give
 * the handle number to the next table opened: an Env of another Worker still
 * holding it would then read that other table. So while the env is shared a
 * table is not deleted (TM_DROP_SHARED: src/txn.ts explains); clearing it is fine. */
TM_API int tm_drop(MDBX_txn *txn, uint32_t dbi, int32_t del) {
  if (del && tm_registry_shared(mdbx_txn_env(txn)))
    return TM_DROP_SHARED;
  return tm_rc(mdbx_drop(txn, dbi, del != 0));
}

TM_API int tm_dbi_sequence(MDBX_txn *txn, uint32_t dbi, double increment, double *out) {
  uint64_t r = 0;
  int rc = mdbx_dbi_sequence(txn, dbi, &r, (uint64_t)increment);
  out[0] = (double)r;
  return tm_rc(rc);
}

typedef struct {
  uint8_t *out;
  uint32_t cap, used, count;
} tm_list_ctx;

/* Each table: [u32 name_len][u32 flags][u32 dbi][7 doubles stat][name], 4-aligned. */
static int tm_enum_cb(void *ctx, const MDBX_txn *txn, const MDBX_val *name, MDBX_db_flags_t flags,
                      const struct MDBX_stat *stat, MDBX_dbi dbi) {
  (void)txn;
  tm_list_ctx *c = ctx;
  const uint32_t nl = (uint32_t)name->iov_len, fl = flags, d = dbi;
  const uint32_t size = (12 + 56 + nl + 7) & ~7u;
  if (c->used + size <= c->cap) {
    uint8_t *p = c->out + c->used;
    memcpy(p, &nl, 4);
    memcpy(p + 4, &fl, 4);
    memcpy(p + 8, &d, 4);
    double st[7];
    tm_stat_out(stat, st);
    memcpy(p + 12, st, sizeof(st));
    memcpy(p + 68, name->iov_base, nl);
    c->count++;
  }
  c->used += size;
  return MDBX_SUCCESS;
}

/* Returns the bytes needed; when that is <= cap, `out` holds them all. */
TM_API int tm_enumerate_tables(MDBX_txn *txn, uint8_t *out, uint32_t cap) {
  tm_list_ctx c = {out, cap, 0, 0};
  int rc = mdbx_enumerate_tables(txn, tm_enum_cb, &c);
  return rc ? tm_rc(rc) : (int)c.used;
}

/* Each reader: 8 doubles: slot, pid, thread, txnid, lag, bytes_used, bytes_retained, num */
static int tm_reader_cb(void *ctx, int num, int slot, mdbx_pid_t pid, mdbx_tid_t thread, uint64_t txnid, uint64_t lag,
                        size_t bytes_used, size_t bytes_retained) {
  tm_list_ctx *c = ctx;
  if (c->used + 64 <= c->cap) {
    double r[8] = {slot, (double)pid, (double)(uintptr_t)thread, (double)txnid, (double)lag, (double)bytes_used,
                   (double)bytes_retained, num};
    memcpy(c->out + c->used, r, 64);
    c->count++;
  }
  c->used += 64;
  return 0;
}

TM_API int tm_reader_list(MDBX_env *env, uint8_t *out, uint32_t cap) {
  tm_list_ctx c = {out, cap, 0, 0};
  int rc = mdbx_reader_list(env, tm_reader_cb, &c);
  return rc < 0 && rc != MDBX_RESULT_TRUE ? tm_rc(rc) : (int)c.used;
}

/* out: pages_total, backed, allocated, gc, reclaimable, max_reader_lag, max_retained_pages */
TM_API int tm_gc_info(MDBX_txn *txn, double *out) {
  MDBX_gc_info_t i;
  int rc = mdbx_gc_info(txn, &i, sizeof(i), NULL, NULL);
  if (rc != MDBX_SUCCESS)
    return tm_rc(rc);
  out[0] = (double)i.pages_total;
  out[1] = (double)i.pages_backed;
  out[2] = (double)i.pages_allocated;
  out[3] = (double)i.pages_gc;
  out[4] = (double)i.gc_reclaimable.pages;
  out[5] = (double)i.max_reader_lag;
  out[6] = (double)i.max_retained_pages;
  return 0;
}

/* ------------------------------------------------------------- key/value --- */

/* mdbx_get, copying the value to `out` when it fits in `cap`; `*d` is where it lives.
 * Returns the value's length or an error. */
static int tm_get_val(const MDBX_txn *txn, uint32_t dbi, const void *key, uint32_t klen, void *out, uint32_t cap,
                      MDBX_val *d) {
  MDBX_val k = tm_val(key, klen);
  int rc = mdbx_get(txn, dbi, &k, d);
  if (rc != MDBX_SUCCESS)
    return tm_rc(rc);
  if (d->iov_len <= cap)
    memcpy(out, d->iov_base, d->iov_len);
  return (int)d->iov_len;
}

/* Returns the value's length, copying it to `out` when it fits in `cap`. */
TM_API int tm_get(const MDBX_txn *txn, uint32_t dbi, const void *key, uint32_t klen, void *out, uint32_t cap) {
  MDBX_val d;
  return tm_get_val(txn, dbi, key, klen, out, cap, &d);
}

/* tm_get writing at out + off: lets TypeScript copy a value straight into the
 * free part of a shared slab, so the result is a view with no second copy. */
TM_API int tm_get_at(const MDBX_txn *txn, uint32_t dbi, const void *key, uint32_t klen, uint8_t *out, uint32_t off,
                     uint32_t cap) {
  return tm_get(txn, dbi, key, klen, out + off, cap);
}

/* The value's address and length, for zero-copy views: ref[0] = address, ref[1] = length. */
TM_API int tm_get_ref(const MDBX_txn *txn, uint32_t dbi, const void *key, uint32_t klen, double *ref) {
  MDBX_val k = tm_val(key, klen), d;
  int rc = mdbx_get(txn, dbi, &k, &d);
  if (rc != MDBX_SUCCESS)
    return tm_rc(rc);
  ref[0] = (double)(uintptr_t)d.iov_base;
  ref[1] = (double)d.iov_len;
  return 0;
}

/* Like tm_get, and count[0] = the number of values of the key (dupsort). */
TM_API int tm_get_ex(const MDBX_txn *txn, uint32_t dbi, const void *key, uint32_t klen, void *out, uint32_t cap,
                     double *count) {
  MDBX_val k = tm_val(key, klen), d;
  size_t n = 0;
  int rc = mdbx_get_ex(txn, dbi, &k, &d, &n);
  count[0] = (double)n;
  if (rc != MDBX_SUCCESS)
    return tm_rc(rc);
  if (d.iov_len <= cap)
    memcpy(out, d.iov_base, d.iov_len);
  return (int)d.iov_len;
}

/* The first pair with key >= `key`, as a pair (flags bit 0: exact match). */
TM_API int tm_get_ge(const MDBX_txn *txn, uint32_t dbi, const void *key, uint32_t klen, uint8_t *out, uint32_t cap) {
  MDBX_val k = tm_val(key, klen), d;
  int rc = mdbx_get_equal_or_great(txn, dbi, &k, &d);
  if (rc != MDBX_SUCCESS && rc != MDBX_RESULT_TRUE)
    return tm_rc(rc);
  return tm_pair_out(out, cap, &k, &d, rc == MDBX_SUCCESS ? 1 : 0);
}

TM_API int tm_put(MDBX_txn *txn, uint32_t dbi, const void *key, uint32_t klen, const void *val, uint32_t vlen,
                  uint32_t flags) {
  MDBX_val k = tm_val(key, klen), d = tm_val(val, vlen);
  return tm_rc(mdbx_put(txn, dbi, &k, &d, (MDBX_put_flags_t)flags));
}

/* MDBX_RESERVE: ref[0] = address of `vlen` bytes to fill before the next change in this txn. */
TM_API int tm_put_reserve(MDBX_txn *txn, uint32_t dbi, const void *key, uint32_t klen, uint32_t vlen, uint32_t flags,
                          double *ref) {
  MDBX_val k = tm_val(key, klen), d = tm_val(NULL, vlen);
  int rc = mdbx_put(txn, dbi, &k, &d, (MDBX_put_flags_t)(flags | MDBX_RESERVE));
  if (rc == MDBX_SUCCESS) {
    ref[0] = (double)(uintptr_t)d.iov_base;
    ref[1] = (double)d.iov_len;
  }
  return tm_rc(rc);
}

TM_API int tm_del(MDBX_txn *txn, uint32_t dbi, const void *key, uint32_t klen, const void *val, uint32_t vlen,
                  int32_t has_val) {
  MDBX_val k = tm_val(key, klen), d = tm_val(val, vlen);
  return tm_rc(mdbx_del(txn, dbi, &k, has_val ? &d : NULL));
}

/* Replace (or delete, when has_val is 0) and copy the previous value to `out`.
 * Returns the previous value's length; MDBX_NOTFOUND when there was none (the
 * new value was still stored). When the previous value is larger than `cap`
 * nothing is changed and the length is returned: the caller grows its buffer
 * and asks again. */
TM_API int tm_replace(MDBX_txn *txn, uint32_t dbi, const void *key, uint32_t klen, const void *val, uint32_t vlen,
                      int32_t has_val, uint32_t flags, void *out, uint32_t cap) {
  MDBX_val k = tm_val(key, klen), d = tm_val(val, vlen), old = tm_val(out, cap), present;
  /* mdbx_replace copies only out of dirty pages; from a clean page it returns a
   * pointer. Learn the size first so that no change is made unless it fits. */
  int rc = mdbx_get(txn, dbi, &k, &present);
  if (rc == MDBX_SUCCESS && present.iov_len > cap)
    return (int)present.iov_len;
  if (rc != MDBX_SUCCESS && rc != MDBX_NOTFOUND)
    return tm_rc(rc);
  const int existed = rc == MDBX_SUCCESS;
  /* libmdbx deletes through mdbx_replace only with MDBX_CURRENT (EINVAL otherwise). */
  const MDBX_put_flags_t f = (MDBX_put_flags_t)(has_val ? flags : flags | MDBX_CURRENT);
  rc = mdbx_replace(txn, dbi, &k, has_val ? &d : NULL, &old, f);
  if (rc == MDBX_RESULT_TRUE)
    return (int)old.iov_len > (int)cap ? (int)old.iov_len : (int)cap + 1;
  if (rc != MDBX_SUCCESS)
    return tm_rc(rc);
  if (!existed || old.iov_base == NULL)
    return MDBX_NOTFOUND;
  if (old.iov_base != out && old.iov_len <= cap)
    memmove(out, old.iov_base, old.iov_len);
  return (int)old.iov_len;
}

/* out: [0] = estimated number of items between the two positions (may be negative). */
TM_API int tm_estimate_range(const MDBX_txn *txn, uint32_t dbi, const void *bkey, uint32_t bklen, int32_t has_begin,
                             const void *ekey, uint32_t eklen, int32_t has_end, double *out) {
  MDBX_val b = tm_val(bkey, bklen), e = tm_val(ekey, eklen);
  ptrdiff_t dist = 0;
  int rc = mdbx_estimate_range(txn, dbi, has_begin ? &b : NULL, NULL, has_end ? &e : NULL, NULL, &dist);
  out[0] = (double)dist;
  return tm_rc(rc);
}

TM_API int tm_cmp(const MDBX_txn *txn, uint32_t dbi, const void *a, uint32_t alen, const void *b, uint32_t blen) {
  MDBX_val x = tm_val(a, alen), y = tm_val(b, blen);
  return mdbx_cmp(txn, dbi, &x, &y);
}

/* -------------------------------------------------------------- cursors --- */

TM_API MDBX_cursor *tm_cursor_open(MDBX_txn *txn, uint32_t dbi, int32_t *rc) {
  MDBX_cursor *c = NULL;
  *rc = tm_rc(mdbx_cursor_open(txn, dbi, &c));
  return c;
}

TM_API void tm_cursor_close(MDBX_cursor *c) { mdbx_cursor_close(c); }

/* One positioning operation; the pair at the new position goes to `out`
 * (flags bit 0: exact match, for MDBX_SET_LOWERBOUND / UPPERBOUND). */
TM_API int tm_cursor_get(MDBX_cursor *cur, int32_t op, const void *key, uint32_t klen, const void *val, uint32_t vlen,
                         uint8_t *out, uint32_t cap) {
  MDBX_val k = tm_val(key, klen), d = tm_val(val, vlen);
  int rc = mdbx_cursor_get(cur, &k, &d, (MDBX_cursor_op)op);
  /* An unpositioned (not fresh) cursor answers relative moves with ENODATA,
   * whose number differs per OS: to the caller it is "no entry there". */
  if (rc == MDBX_ENODATA)
    rc = MDBX_NOTFOUND;
  if (rc != MDBX_SUCCESS && rc != MDBX_RESULT_TRUE)
    return tm_rc(rc);
  return tm_pair_out(out, cap, &k, &d, rc == MDBX_SUCCESS ? 1 : 0);
}

TM_API int tm_cursor_put(MDBX_cursor *cur, const void *key, uint32_t klen, const void *val, uint32_t vlen,
                         uint32_t flags) {
  MDBX_val k = tm_val(key, klen), d = tm_val(val, vlen);
  return tm_rc(mdbx_cursor_put(cur, &k, &d, (MDBX_put_flags_t)flags));
}

TM_API int tm_cursor_del(MDBX_cursor *cur, uint32_t flags) {
  return tm_rc(mdbx_cursor_del(cur, (MDBX_put_flags_t)flags));
}

TM_API int tm_cursor_count(MDBX_cursor *cur, double *out) {
  size_t n = 0;
  int rc = mdbx_cursor_count(cur, &n);
  out[0] = (double)n;
  return tm_rc(rc);
}

/* Batched range scan: fills `out` with as many entries as fit, so that
 * iterating a range costs one FFI call per batch instead of one per entry.
 *
 * out: [u32 count][u32 state][u32 need] then per entry [u32 klen][u32 vlen][key][value],
 * where key/value are present only with TM_SCAN_KEYS / TM_SCAN_VALUES.
 * state: 1 = the range is exhausted;
 *        2 = more to come: the cursor stands on the next, not yet emitted
 *            entry; continue with TM_SCAN_CURRENT (after growing `out` to
 *            `need` bytes when need > 0: that entry alone did not fit).
 * Returns count, or a negative error. */
enum {
  TM_SCAN_FIRST = 0,   /* position at the range start (or the table's first/last entry) */
  TM_SCAN_NEXT = 1,    /* step from the last emitted entry */
  TM_SCAN_CURRENT = 2, /* re-read the entry that did not fit */
  TM_SCAN_MODE_MASK = 3,

  TM_SCAN_REVERSE = 1 << 2,
  TM_SCAN_HAS_START = 1 << 3,
  TM_SCAN_START_EXCLUSIVE = 1 << 4,
  TM_SCAN_HAS_END = 1 << 5,
  TM_SCAN_END_INCLUSIVE = 1 << 6,
  TM_SCAN_PREFIX = 1 << 7, /* `end` is a prefix every key must start with */
  TM_SCAN_KEYS = 1 << 8,
  TM_SCAN_VALUES = 1 << 9,
  TM_SCAN_DUPS_OF_KEY = 1 << 10, /* only the values of `start` (dupsort) */
  TM_SCAN_NODUP = 1 << 11,       /* one entry per key (first value) */
  TM_SCAN_DUPSORT = 1 << 12,     /* the table is dupsort: reverse starts land on the last duplicate */
};

static int tm_scan_in_range(const MDBX_txn *txn, MDBX_dbi dbi, uint32_t flags, const MDBX_val *k, const MDBX_val *end) {
  if (flags & TM_SCAN_PREFIX)
    return k->iov_len >= end->iov_len && memcmp(k->iov_base, end->iov_base, end->iov_len) == 0;
  if (!(flags & TM_SCAN_HAS_END))
    return 1;
  int c = mdbx_cmp(txn, dbi, k, end);
  if (flags & TM_SCAN_REVERSE)
    c = -c;
  return (flags & TM_SCAN_END_INCLUSIVE) ? c <= 0 : c < 0;
}

static int tm_scan_position(MDBX_cursor *cur, const MDBX_txn *txn, MDBX_dbi dbi, uint32_t flags, const MDBX_val *start,
                            MDBX_val *k, MDBX_val *d) {
  const int rev = (flags & TM_SCAN_REVERSE) != 0;
  int rc;
  if (flags & TM_SCAN_DUPS_OF_KEY) {
    *k = *start;
    rc = mdbx_cursor_get(cur, k, d, MDBX_SET_KEY);
    if (rc == MDBX_SUCCESS && rev)
      rc = mdbx_cursor_get(cur, k, d, MDBX_LAST_DUP);
    return rc;
  }
  if (!(flags & TM_SCAN_HAS_START))
    return mdbx_cursor_get(cur, k, d, rev ? MDBX_LAST : MDBX_FIRST);
  *k = *start;
  rc = mdbx_cursor_get(cur, k, d, MDBX_SET_RANGE);
  if (!rev) {
    if (rc == MDBX_SUCCESS && (flags & TM_SCAN_START_EXCLUSIVE) && mdbx_cmp(txn, dbi, k, start) == 0)
      rc = mdbx_cursor_get(cur, k, d, MDBX_NEXT_NODUP);
    return rc;
  }
  /* reverse: the last entry with key <= start (or < start when exclusive) */
  if (rc == MDBX_NOTFOUND)
    return mdbx_cursor_get(cur, k, d, MDBX_LAST);
  if (rc != MDBX_SUCCESS)
    return rc;
  int c = mdbx_cmp(txn, dbi, k, start);
  if (c > 0 || (c == 0 && (flags & TM_SCAN_START_EXCLUSIVE)))
    return mdbx_cursor_get(cur, k, d, MDBX_PREV_NODUP);
  if (c == 0 && (flags & TM_SCAN_DUPSORT))
    return mdbx_cursor_get(cur, k, d, MDBX_LAST_DUP);
  return rc;
}

/* One entry per key in reverse: stand on each key's first value, as a forward
 * scan does (MDBX_LAST and MDBX_PREV_NODUP land on the last value). */
static int tm_scan_first_dup(MDBX_cursor *cur, uint32_t flags, int rc, MDBX_val *k, MDBX_val *d) {
  const uint32_t all = TM_SCAN_REVERSE | TM_SCAN_NODUP | TM_SCAN_DUPSORT;
  if (rc == MDBX_SUCCESS && (flags & all) == all)
    rc = mdbx_cursor_get(cur, k, d, MDBX_FIRST_DUP);
  return rc;
}

TM_API int tm_scan(MDBX_cursor *cur, uint32_t flags, const void *start, uint32_t slen, const void *end, uint32_t elen,
                   uint32_t skip, uint32_t max_count, uint8_t *out, uint32_t cap) {
  const MDBX_txn *txn = mdbx_cursor_txn(cur);
  const MDBX_dbi dbi = mdbx_cursor_dbi(cur);
  const MDBX_val s = tm_val(start, slen), e = tm_val(end, elen);
  const int rev = (flags & TM_SCAN_REVERSE) != 0;
  const MDBX_cursor_op step = (flags & TM_SCAN_DUPS_OF_KEY) ? (rev ? MDBX_PREV_DUP : MDBX_NEXT_DUP)
                              : (flags & TM_SCAN_NODUP)     ? (rev ? MDBX_PREV_NODUP : MDBX_NEXT_NODUP)
                              : rev                         ? MDBX_PREV
                                                            : MDBX_NEXT;
  const uint32_t want_k = (flags & TM_SCAN_KEYS) != 0, want_v = (flags & TM_SCAN_VALUES) != 0;
  MDBX_val k = {0}, d = {0};
  uint32_t count = 0, state = 1, need = 0, used = 12;
  int rc;
  if (cap < 12)
    return tm_rc(MDBX_EINVAL);

  switch (flags & TM_SCAN_MODE_MASK) {
  case TM_SCAN_FIRST:
    rc = tm_scan_first_dup(cur, flags, tm_scan_position(cur, txn, dbi, flags, &s, &k, &d), &k, &d);
    while (rc == MDBX_SUCCESS && skip && tm_scan_in_range(txn, dbi, flags, &k, &e)) {
      --skip;
      rc = tm_scan_first_dup(cur, flags, mdbx_cursor_get(cur, &k, &d, step), &k, &d);
    }
    break;
  case TM_SCAN_NEXT:
    rc = tm_scan_first_dup(cur, flags, mdbx_cursor_get(cur, &k, &d, step), &k, &d);
    break;
  default:
    rc = mdbx_cursor_get(cur, &k, &d, MDBX_GET_CURRENT);
  }

  while (rc == MDBX_SUCCESS) {
    if (!tm_scan_in_range(txn, dbi, flags, &k, &e))
      break;
    if (count >= max_count) {
      /* the cursor already stands on the next entry: re-read it next time */
      state = 2;
      break;
    }
    const uint32_t kl = (uint32_t)k.iov_len, vl = (uint32_t)d.iov_len;
    const uint64_t size = 8 + (want_k ? kl : 0) + (uint64_t)(want_v ? vl : 0);
    if (used + size > cap) {
      state = 2;
      need = (uint32_t)(size + 12 > UINT32_MAX ? UINT32_MAX : size + 12);
      break;
    }
    uint8_t *p = out + used;
    memcpy(p, &kl, 4);
    memcpy(p + 4, &vl, 4);
    p += 8;
    if (want_k) {
      memcpy(p, k.iov_base, kl);
      p += kl;
    }
    if (want_v)
      memcpy(p, d.iov_base, vl);
    used += (uint32_t)size;
    ++count;
    rc = tm_scan_first_dup(cur, flags, mdbx_cursor_get(cur, &k, &d, step), &k, &d);
  }
  if (rc != MDBX_SUCCESS && rc != MDBX_NOTFOUND)
    return tm_rc(rc);
  memcpy(out, &count, 4);
  memcpy(out + 4, &state, 4);
  memcpy(out + 8, &need, 4);
  return (int)count;
}

/* ------------------------------------------------------------------ map --- */

/* Where the data file is mapped: out = [base address, mapping length, mapped file size]. */
TM_API int tm_env_map(MDBX_env *env, double *out) {
  void *base = NULL;
  size_t limit = 0, current = 0;
  int rc = mdbx_env_get_mapping(env, &base, &limit, &current);
  out[0] = (double)(uintptr_t)base;
  out[1] = (double)limit;
  out[2] = (double)current;
  return tm_rc(rc);
}

/* In-place defragmentation (mdbx_env_defrag): holds the write lock throughout.
 * res: pages shrinked, moved, retained by readers, left, whole, cycles, stopping reasons, seconds spent. */
TM_API int tm_env_defrag(MDBX_env *env, double atleast, double time_atleast_s, double enough, double time_limit_s,
                         double *res) {
  MDBX_defrag_result_t r;
  memset(&r, 0, sizeof(r));
  tm_cache *const cache = tm_cache_of(env);
  int rc = mdbx_env_defrag(env, (size_t)atleast, (size_t)(time_atleast_s * 65536), (size_t)enough,
                           (size_t)(time_limit_s * 65536), -1, 0, NULL, NULL, &r);
  /* its checkpoints are commits: confirm them unless it failed */
  tm_cache_confirm(cache, rc == MDBX_SUCCESS || rc == MDBX_RESULT_TRUE); /* always: it ends tm_cache_of */
  res[0] = (double)r.pages_shrinked;
  res[1] = (double)r.pages_moved;
  res[2] = (double)r.pages_retained;
  res[3] = (double)r.pages_left;
  res[4] = (double)r.pages_whole;
  res[5] = r.cycles;
  res[6] = r.stopping_reasons;
  res[7] = r.spent_time_dot16 / 65536.0;
  return rc == MDBX_RESULT_TRUE ? 1 : tm_rc(rc);
}

/* ---------------------------------------------------------------- check --- */

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#if defined(_WIN32) || defined(_WIN64)
#include <windows.h>
#endif

/* The check context with our report after it: callbacks get &ctx and recover the report.
 *
 * A check reports damage rather than failing on it: every issue libmdbx finds
 * (through the `issue` callback) and every error line it prints (a stage that
 * could not go on: "walk_pages() failed, error …") becomes one line of `out`,
 * naming the page, table or entry and what is wrong; the first stage that
 * ended with an error is recorded, so that JavaScript can say where the check
 * had to stop. The check's cursors validate every page they read
 * (mdbx_env_chk sets z_pagecheck on them whatever the environment's
 * MDBX_VALIDATION), so a damaged page is reported as such. */
typedef struct {
  MDBX_chk_context_t ctx;
  uint8_t *out;
  uint32_t cap, used, lines;
  /* the first stage that ended with an error, and that error */
  int stop_stage, stop_err;
  /* the deadline of `timeout` (monotonic ms; 0: none) */
  double deadline_ms;
  int timed_out;
  /* the one line libmdbx prints into at a time */
  MDBX_chk_line_t line;
  int line_busy;
  char line_buf[8];
  char pending[1024];
  size_t pending_len;
} tm_chk_log;

static double tm_now_ms(void) {
#if defined(_WIN32) || defined(_WIN64)
  return (double)GetTickCount64();
#else
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
#endif
}

static void tm_chk_emit(tm_chk_log *l, const char *line, size_t n) {
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
    n--;
  if (n == 0)
    return;
  l->lines++;
  if (l->used + n + 1 <= l->cap) {
    memcpy(l->out + l->used, line, n);
    l->out[l->used + n] = '\n';
    l->used += (uint32_t)n + 1;
  }
}

/* Names the table a table's scope is about: "table \"name\"", "the main table" or "the GC". */
static int tm_chk_table_name(const MDBX_chk_table_t *t, char *buf, size_t cap) {
  const MDBX_val *v = &t->name;
  if (v->iov_base == MDBX_CHK_MAIN)
    return snprintf(buf, cap, "the main table");
  if (v->iov_base == MDBX_CHK_GC)
    return snprintf(buf, cap, "the GC");
  int n = snprintf(buf, cap, "table \"");
  const uint8_t *p = v->iov_base;
  for (size_t i = 0; i < v->iov_len && n > 0 && (size_t)n + 6 < cap; i++)
    n += (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\') ? snprintf(buf + n, cap - n, "%c", p[i])
                                                                        : snprintf(buf + n, cap - n, "\\x%02x", p[i]);
  if (n > 0 && (size_t)n + 2 < cap)
    n += snprintf(buf + n, cap - n, "\"");
  return n;
}

/* What the innermost scope with an object (a table) or else its stage is about. */
static int tm_chk_scope_name(const MDBX_chk_context_t *ctx, char *buf, size_t cap) {
  const MDBX_chk_scope_t *s = ctx->scope;
  if (!s)
    return snprintf(buf, cap, "the database");
  for (int d = ctx->scope_nesting; d > 0 && !s->object; d--)
    s = s - 1;
  if (s->object && (s->stage == MDBX_chk_maindb || s->stage == MDBX_chk_tables || s->stage == MDBX_chk_gc))
    return tm_chk_table_name(s->object, buf, cap);
  switch (ctx->scope->stage) {
  case MDBX_chk_meta:
    return snprintf(buf, cap, "the meta pages");
  case MDBX_chk_tree:
    return snprintf(buf, cap, "the page trees");
  case MDBX_chk_gc:
    return snprintf(buf, cap, "the GC");
  case MDBX_chk_space:
    return snprintf(buf, cap, "the page accounting");
  case MDBX_chk_maindb:
    return snprintf(buf, cap, "the main table");
  case MDBX_chk_tables:
    return snprintf(buf, cap, "the tables");
  default:
    return snprintf(buf, cap, "the database");
  }
}

/* Each issue becomes one line: "page 123: invalid/corrupted (leaf-page, parent 5)", "table \"t\", entry 7: wrong
 * order of entries", "the meta pages: backed-pages 9 > dxb-file-pages 8". */
static void tm_chk_issue(MDBX_chk_context_t *ctx, const char *object, uint64_t entry_number, const char *issue,
                         const char *extra_fmt, va_list extra_args) {
  tm_chk_log *l = (tm_chk_log *)ctx;
  char line[768];
  int n;
  const int numbered = entry_number != UINT64_MAX && (entry_number || object);
  if (object && strcmp(object, "page") == 0 && numbered)
    n = snprintf(line, sizeof(line), "page %llu: %s", (unsigned long long)entry_number, issue ? issue : "damaged");
  else {
    char where[160];
    tm_chk_scope_name(ctx, where, sizeof(where));
    if (object && numbered)
      n = snprintf(line, sizeof(line), "%s, %s %llu: %s", where, object, (unsigned long long)entry_number,
                   issue ? issue : "damaged");
    else if (object)
      n = snprintf(line, sizeof(line), "%s, %s: %s", where, object, issue ? issue : "damaged");
    else
      n = snprintf(line, sizeof(line), "%s: %s", where, issue ? issue : "");
  }
  if (n < 0)
    return;
  if (n >= (int)sizeof(line))
    n = sizeof(line) - 1;
  if (extra_fmt && n + 4 < (int)sizeof(line)) {
    n += snprintf(line + n, sizeof(line) - n, issue ? " (" : "");
    int m = vsnprintf(line + n, sizeof(line) - n, extra_fmt, extra_args);
    if (m > 0)
      n += m;
    if (n >= (int)sizeof(line) - 1)
      n = sizeof(line) - 2;
    while (n > 0 && line[n - 1] == '\n')
      n--;
    if (issue)
      line[n++] = ')';
  }
  tm_chk_emit(l, line, (size_t)n);
}

/* libmdbx prints error lines (a stage that failed) through these; the rest of its report is not wanted. The text
 * goes straight into `pending` (print_chars, print_format), so libmdbx's own line buffer stays empty. */
static MDBX_chk_line_t *tm_chk_print_begin(MDBX_chk_context_t *ctx, MDBX_chk_severity_t severity) {
  tm_chk_log *l = (tm_chk_log *)ctx;
  if ((severity & MDBX_chk_severity_kind_mask) > (MDBX_chk_error & MDBX_chk_severity_kind_mask) || l->line_busy)
    return NULL;
  l->line_busy = 1;
  memset(&l->line, 0, sizeof(l->line));
  l->line.severity = (uint8_t)severity;
  l->line.empty = 1;
  l->line.begin = l->line.out = l->line.end = l->line_buf;
  int n = tm_chk_scope_name(ctx, l->pending, sizeof(l->pending) - 2);
  l->pending_len = n < 0 ? 0 : (size_t)n < sizeof(l->pending) - 2 ? (size_t)n : sizeof(l->pending) - 3;
  l->pending[l->pending_len++] = ':';
  l->pending[l->pending_len++] = ' ';
  return &l->line;
}

static void tm_chk_print_chars(MDBX_chk_line_t *line, const char *str, size_t len) {
  tm_chk_log *l = (tm_chk_log *)line->ctx;
  const size_t room = sizeof(l->pending) - l->pending_len;
  if (len > room)
    len = room;
  memcpy(l->pending + l->pending_len, str, len);
  l->pending_len += len;
}

static void tm_chk_print_format(MDBX_chk_line_t *line, const char *fmt, va_list args) {
  tm_chk_log *l = (tm_chk_log *)line->ctx;
  const size_t room = sizeof(l->pending) - l->pending_len;
  if (room < 2)
    return;
  const int n = vsnprintf(l->pending + l->pending_len, room, fmt, args);
  if (n > 0)
    l->pending_len += (size_t)n < room ? (size_t)n : room - 1;
}

static void tm_chk_print_flush(MDBX_chk_line_t *line) { (void)line; }

static void tm_chk_print_done(MDBX_chk_line_t *line) {
  tm_chk_log *l = (tm_chk_log *)line->ctx;
  tm_chk_emit(l, l->pending, l->pending_len);
  l->pending_len = 0;
  l->line_busy = 0;
}

static int tm_chk_stage_end(MDBX_chk_context_t *ctx, MDBX_chk_stage_t stage, int err) {
  tm_chk_log *l = (tm_chk_log *)ctx;
  if (!l->stop_err && err != MDBX_SUCCESS && err != MDBX_RESULT_TRUE && err != MDBX_PROBLEM) {
    l->stop_stage = (int)stage;
    l->stop_err = err;
  }
  return err;
}

static bool tm_chk_break(MDBX_chk_context_t *ctx) {
  tm_chk_log *l = (tm_chk_log *)ctx;
  if (l->deadline_ms > 0 && tm_now_ms() > l->deadline_ms)
    l->timed_out = 1;
  return l->timed_out != 0;
}

/* Integrity check of an open environment (mdbx_env_chk), which reports damage instead of failing on it.
 * `res` gets 21 doubles: total problems, meta, tree, gc tree, kv tree, gc, kv problems, tables, processed pages,
 * allocated pages, backed pages, gc pages, reclaimable pages, unused pages, payload bytes, recent txnid; then
 * [16] mdbx_env_chk's result, [17] the first stage that ended with an error (MDBX_chk_stage_t, 0: none) and
 * [18] that error, [19] 1 when the check stopped at `timeout_16dot16` (0: none), [20] issue lines (also those
 * that did not fit in `cap`). `log` gets one line per issue. Returns the log's length. */
TM_API int tm_env_chk(MDBX_env *env, uint32_t flags, uint32_t timeout_16dot16, uint8_t *log, uint32_t cap,
                      double *res) {
  MDBX_chk_callbacks_t cb;
  memset(&cb, 0, sizeof(cb));
  cb.issue = tm_chk_issue;
  cb.print_begin = tm_chk_print_begin;
  cb.print_flush = tm_chk_print_flush;
  cb.print_done = tm_chk_print_done;
  cb.print_chars = tm_chk_print_chars;
  cb.print_format = tm_chk_print_format;
  cb.stage_end = tm_chk_stage_end;
  cb.check_break = tm_chk_break;
  tm_chk_log *l = calloc(1, sizeof(tm_chk_log));
  if (!l)
    return tm_rc(MDBX_ENOMEM);
  l->out = log;
  l->cap = cap;
  if (timeout_16dot16)
    l->deadline_ms = tm_now_ms() + timeout_16dot16 / 65.536;
  /* mdbx_env_chk leaves result.recent_txnid unset: the newest txnid when the check began stands for it */
  MDBX_envinfo info;
  memset(&info, 0, sizeof(info));
  mdbx_env_info_ex(env, NULL, &info, sizeof(info));
  int rc = mdbx_env_chk(env, &cb, &l->ctx, (MDBX_chk_flags_t)flags, MDBX_chk_error, timeout_16dot16);
  const MDBX_chk_context_t ctx = l->ctx;
  size_t n = 0;
  res[n++] = (double)ctx.result.total_problems;
  res[n++] = (double)ctx.result.problems_meta;
  res[n++] = (double)ctx.result.tree_problems;
  res[n++] = (double)ctx.result.gc_tree_problems;
  res[n++] = (double)ctx.result.kv_tree_problems;
  res[n++] = (double)ctx.result.problems_gc;
  res[n++] = (double)ctx.result.problems_kv;
  res[n++] = (double)ctx.result.table_total;
  res[n++] = (double)ctx.result.processed_pages;
  res[n++] = (double)ctx.result.alloc_pages;
  res[n++] = (double)ctx.result.backed_pages;
  res[n++] = (double)ctx.result.gc_pages;
  res[n++] = (double)ctx.result.reclaimable_pages;
  res[n++] = (double)ctx.result.unused_pages;
  res[n++] = (double)ctx.result.total_payload_bytes;
  res[n++] = (double)(ctx.result.recent_txnid ? ctx.result.recent_txnid : info.mi_recent_txnid);
  res[n++] = (double)rc;
  res[n++] = (double)l->stop_stage;
  res[n++] = (double)l->stop_err;
  res[n++] = (double)l->timed_out;
  res[n++] = (double)l->lines;
  const int used = (int)l->used;
  free(l);
  return used;
}

/* -------------------------------------------------------------- errors --- */

TM_API const char *tm_strerror(int32_t code) { return mdbx_strerror(code); }
