/* turbomdbx: the size check of a data file before libmdbx opens it.
 *
 * libmdbx trusts the file's length. A data file cut short (a failed copy, a
 * full disk, `truncate`, a restore that stopped) is not refused when its
 * meta pages are gone: any short read of a meta page (a 0-byte file, one cut
 * to 8 KiB) counts as "a new database", and the first process to open it
 * writes three fresh meta pages over it, so 20,000 records become an empty,
 * valid database with a line on stderr as the only sign. With the meta pages
 * intact but the pages they point to cut off, a non-exclusive open maps past
 * the end of the file (SIGBUS on the first read there).
 *
 * tm_dxb_inspect() reads what the format records, without writing and
 * without libmdbx: the three meta pages (pages 0, 1 and 2, each starting with
 * a 20-byte page header), validated as libmdbx's meta_validate() does (magic
 * and version, page number and meta flag, page size, the txnid written at
 * both ends of the meta, a steady signature, geometry bounds); the valid meta
 * with the highest txnid is the database's state, and its first unallocated
 * page times the page size is the part of the file the database uses. A file
 * shorter than that, or shorter than its three meta pages, or with no valid
 * meta at all, is reported, and TypeScript refuses to open it unless asked
 * for recovery (src/env.ts).
 *
 * Races with other processes: the file's size is read before the meta pages
 * (a shrink commits the smaller meta before it truncates) and read again
 * before reporting a shortfall (a growth extends the file before it commits).
 * A 0-byte file is being created while another process holds the database's
 * lock (libmdbx creates the data file before it takes the lock, then writes
 * the meta pages under it); such a file is left to libmdbx, which never
 * initializes a file it does not hold exclusively.
 *
 * The layout (offsets from the start of a meta page), checked against
 * mdbx-internals.h when this file was written: page header: flags u16 @10,
 * pgno u32 @16; meta at @20: magic_and_version u64 @0, txnid_a u64 @8,
 * geometry lower/upper/now/first_unallocated u32 @24/@28/@32/@36, pagesize
 * u32 @44, sign u64 @168, txnid_b u64 @176.
 */
#include "mdbx.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(_WIN32) || defined(_WIN64)
#include <fcntl.h>
#include <io.h>
#include <windows.h>
typedef struct _stat64 tm_stat_t;
#define tm_fstat _fstat64
#else
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
typedef struct stat tm_stat_t;
#define tm_fstat fstat
#endif

#define TM_API __dll_export

enum {
  DXB_NEW = 0,       /* no data file: libmdbx creates the database */
  DXB_OK = 1,        /* the file holds every page its newest meta uses */
  DXB_EMPTY = 2,     /* 0 bytes, and no process is creating it */
  DXB_CREATING = 3,  /* 0 bytes (or no meta yet) while another process holds the lock */
  DXB_SHORT = 4,     /* a libmdbx file shorter than its three meta pages */
  DXB_NOMETA = 5,    /* no valid meta page: not a libmdbx file, or all three damaged */
  DXB_TRUNCATED = 6, /* shorter than the pages its newest meta uses */
};

enum { NUM_METAS = 3, MIN_PAGESIZE = 256, MAX_PAGESIZE = 65536, META = 20, P_META = 8 };
#define MAGIC UINT64_C(0x59659DBDEF4C11)
#define MAX_PAGENO UINT32_C(0x7FFFffff)
#define MAX_TXNID (UINT64_C(0xffffFFFF00000000) - 1)

static uint16_t rd16(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}
static uint32_t rd32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static uint64_t rd64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static char *cat(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *s = malloc(la + lb + 1);
  if (s) {
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
  }
  return s;
}

/* Reads up to `n` bytes at `off`; returns how many were read (short at the end of the file), -1 on error. */
static int64_t read_at(int fd, void *buf, size_t n, uint64_t off) {
  size_t got = 0;
  while (got < n) {
#if defined(_WIN32) || defined(_WIN64)
    if (_lseeki64(fd, (__int64)(off + got), SEEK_SET) < 0)
      return -1;
    int r = _read(fd, (char *)buf + got, (unsigned)(n - got));
#else
    ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
#endif
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (r == 0)
      break;
    got += (size_t)r;
  }
  return (int64_t)got;
}

/* The first 256 bytes of meta page `i` of a `ps`-byte-page file, read until two reads agree (a writer may be
 * rewriting it). False when it is not all there. */
static bool read_meta(int fd, uint32_t ps, unsigned i, uint8_t out[MIN_PAGESIZE]) {
  uint8_t again[MIN_PAGESIZE];
  for (int tries = 0; tries < 8; tries++) {
    if (read_at(fd, out, MIN_PAGESIZE, (uint64_t)ps * i) != MIN_PAGESIZE)
      return false;
    if (read_at(fd, again, MIN_PAGESIZE, (uint64_t)ps * i) != MIN_PAGESIZE)
      return false;
    if (memcmp(out, again, MIN_PAGESIZE) == 0)
      return true;
  }
  return true; /* still changing: validate whatever was read last (a torn meta fails the txnid check) */
}

static bool is_magic(uint64_t mv) {
  return mv == ((MAGIC << 8) + 3) /* current */ || mv == ((MAGIC << 8) + 2) /* legacy compatible */ ||
         mv == ((MAGIC << 8) + 255) /* legacy development */;
}

/* Why a meta page is not valid (tm_dxb_metas() reports these; src/check.ts words them). */
enum {
  META_OK = 0,
  META_UNREADABLE = 1, /* the file ends before it */
  META_MAGIC = 2,      /* not libmdbx's magic and format version */
  META_PGNO = 3,       /* the page header names another page */
  META_FLAGS = 4,      /* the page header does not say "meta" */
  META_PAGESIZE = 5,   /* not a power of two from 256 to 65536, or not the file's */
  META_TXNID = 6,      /* the txnids at its two ends differ (not completely written) or are out of range */
  META_SIGN = 7,       /* a steady signature that does not check */
  META_GEOMETRY = 8,   /* bounds or the first unallocated page out of range */
  META_PURGED = 9,     /* txnid 0 at both ends: libmdbx's own rollback purged it (not damage) */
};

/* Why `p` is not a valid meta page number `i` (META_OK if it is); `ps` 0 accepts any valid page size. */
static int meta_problem(const uint8_t *p, unsigned i, uint32_t ps) {
  const uint8_t *m = p + META;
  if (!is_magic(rd64(m)))
    return META_MAGIC;
  if (rd32(p + 16) != i)
    return META_PGNO;
  if (rd16(p + 10) != P_META)
    return META_FLAGS;
  const uint32_t pagesize = rd32(m + 44);
  if (pagesize < MIN_PAGESIZE || pagesize > MAX_PAGESIZE || (pagesize & (pagesize - 1)) || (ps && pagesize != ps))
    return META_PAGESIZE;
  const uint64_t txnid = rd64(m + 8);
  if (txnid == 0 && rd64(m + 176) == 0)
    return META_PURGED; /* a rollback after an unclean shutdown rewrites the meta it undoes with txnid 0 */
  if (txnid != rd64(m + 176) || txnid < 1 || txnid > MAX_TXNID)
    return META_TXNID; /* not completely written */
  const uint64_t sign = rd64(m + 168);
  if (sign > 1 && sign != ~UINT64_C(0))
    return META_SIGN; /* a steady signature that does not check */
  const uint32_t lower = rd32(m + 24), upper = rd32(m + 28), next = rd32(m + 36);
  if (lower < NUM_METAS || lower > MAX_PAGENO + 1 || upper < lower || upper > MAX_PAGENO + 1)
    return META_GEOMETRY;
  if (next < NUM_METAS || next - 1 > MAX_PAGENO)
    return META_GEOMETRY;
  return META_OK;
}

/* Whether `p` is a valid meta page number `i`; `ps` 0 accepts any valid page size. */
static bool meta_valid(const uint8_t *p, unsigned i, uint32_t ps) { return meta_problem(p, i, ps) == META_OK; }

/* Whether another process holds the database's lock file or an exclusive lock on its data file. */
static bool locked_by_other(int dxb_fd, const char *lck) {
#if defined(_WIN32) || defined(_WIN64)
  (void)dxb_fd, (void)lck;
  return false;
#else
#if defined(F_OFD_GETLK)
  const int getlk = F_OFD_GETLK; /* also sees the OFD locks libmdbx takes on Linux */
#else
  const int getlk = F_GETLK;
#endif
  struct flock fl;
  bool held = false;
  int fd = open(lck, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK, fl.l_whence = SEEK_SET, fl.l_start = 0, fl.l_len = 1;
    held = fcntl(fd, getlk, &fl) == 0 && fl.l_type != F_UNLCK;
    close(fd);
  }
  if (!held) {
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK, fl.l_whence = SEEK_SET, fl.l_start = 0, fl.l_len = 0;
    held = fcntl(dxb_fd, getlk, &fl) == 0 && fl.l_type != F_UNLCK;
  }
  return held;
#endif
}

static int open_ro(const char *path) {
#if defined(_WIN32) || defined(_WIN64)
  return _open(path, _O_RDONLY | _O_BINARY);
#else
  return open(path, O_RDONLY | O_CLOEXEC);
#endif
}

static void close_fd(int fd) {
#if defined(_WIN32) || defined(_WIN64)
  _close(fd);
#else
  close(fd);
#endif
}

static void pause_ms(int ms) {
#if defined(_WIN32) || defined(_WIN64)
  Sleep((DWORD)ms);
#else
  struct timespec ts = {0, (long)ms * 1000000L};
  nanosleep(&ts, NULL);
#endif
}

/* Inspects the data file of the database at `path` (`nosubdir`: `path` is the data file, the lock file
 * `<path>-lck`; otherwise `path/mdbx.dat` and `path/mdbx.lck`). Returns a DXB_* status, or a negative errno
 * when the file cannot be read (libmdbx will report it in its own words). `out` (doubles): [0] file size,
 * [1] bytes the newest meta uses (first unallocated page × page size), [2] page size, [3] its txnid,
 * [4] its geometry's current size in bytes, [5] valid meta pages, [6] 1 when the newest meta is steady
 * (synced). Writes nothing. */
TM_API int tm_dxb_inspect(const char *path, int32_t nosubdir, double *out) {
  memset(out, 0, 7 * sizeof(double));
  char *dxb = nosubdir ? cat(path, "") : cat(path, "/mdbx.dat");
  char *lck = nosubdir ? cat(path, "-lck") : cat(path, "/mdbx.lck");
  int status = DXB_OK, fd = -1;
  if (!dxb || !lck) {
    status = -ENOMEM;
    goto done;
  }
  fd = open_ro(dxb);
  if (fd < 0) {
    status = errno == ENOENT ? DXB_NEW : -errno;
    goto done;
  }
  tm_stat_t st;
  if (tm_fstat(fd, &st) != 0) {
    status = -errno;
    goto done;
  }
  if ((st.st_mode & S_IFMT) != S_IFREG) {
    status = DXB_OK; /* a device or something else: libmdbx decides */
    goto done;
  }
  uint64_t size = (uint64_t)st.st_size;
  /* libmdbx creates the file a moment before it takes the lock: look again before calling it empty */
  for (int i = 0; size == 0 && i < 3 && !locked_by_other(fd, lck); i++) {
    pause_ms(10);
    if (tm_fstat(fd, &st) == 0)
      size = (uint64_t)st.st_size;
  }
  out[0] = (double)size;
  if (size == 0) {
    status = locked_by_other(fd, lck) ? DXB_CREATING : DXB_EMPTY;
    goto done;
  }

  /* the page size: meta 0's, else that of a valid meta 1 or 2 at a candidate size */
  uint8_t page[MIN_PAGESIZE];
  uint32_t ps = 0;
  if (read_meta(fd, 0, 0, page) && meta_valid(page, 0, 0))
    ps = rd32(page + META + 44);
  for (uint32_t cand = MIN_PAGESIZE; !ps && cand <= MAX_PAGESIZE; cand <<= 1)
    for (unsigned i = 1; !ps && i < NUM_METAS; i++)
      if (read_meta(fd, cand, i, page) && meta_valid(page, i, cand))
        ps = cand;
  if (!ps) {
    /* no valid meta: a libmdbx file (its magic at the start) too short for its meta pages, a libmdbx file whose
     * metas are all damaged, or not a libmdbx file at all */
    uint8_t head[MIN_PAGESIZE];
    const int64_t got = read_at(fd, head, sizeof(head), 0);
    const bool ours = got >= META + 8 && (rd64(head + META) >> 8) == MAGIC;
    uint32_t ps0 = got >= META + 48 ? rd32(head + META + 44) : 0;
    if (ps0 < MIN_PAGESIZE || ps0 > MAX_PAGESIZE || (ps0 & (ps0 - 1)))
      ps0 = MIN_PAGESIZE;
    if (locked_by_other(fd, lck))
      status = DXB_CREATING;
    else if (ours && size < (uint64_t)ps0 * NUM_METAS) {
      status = DXB_SHORT;
      out[2] = ps0;
    } else
      status = DXB_NOMETA;
    goto done;
  }
  out[2] = ps;
  if (size < (uint64_t)ps * NUM_METAS) {
    status = DXB_SHORT;
    goto done;
  }

  unsigned valid = 0;
  uint64_t best_txnid = 0;
  for (unsigned i = 0; i < NUM_METAS; i++) {
    if (!read_meta(fd, ps, i, page) || !meta_valid(page, i, ps))
      continue;
    valid++;
    const uint8_t *m = page + META;
    const uint64_t txnid = rd64(m + 8);
    if (txnid > best_txnid) {
      best_txnid = txnid;
      out[1] = (double)rd32(m + 36) * ps;
      out[3] = (double)txnid;
      out[4] = (double)rd32(m + 32) * ps;
      out[6] = rd64(m + 168) > 1 ? 1 : 0;
    }
  }
  out[5] = valid;
  if (out[1] > (double)size) {
    /* another process may have grown the file and committed since it was measured */
    if (tm_fstat(fd, &st) == 0 && (uint64_t)st.st_size > size) {
      size = (uint64_t)st.st_size;
      out[0] = (double)size;
    }
    if (out[1] > (double)size)
      status = DXB_TRUNCATED;
  }

done:
  if (fd >= 0)
    close_fd(fd);
  free(dxb);
  free(lck);
  return status;
}

/* Recovery: extends the data file with zeros to `bytes` (never shortens it), so that libmdbx can map every
 * page the newest meta uses; the pages that were cut off read back as zeros. Returns 0 or a negative errno. */
TM_API int tm_dxb_extend(const char *path, int32_t nosubdir, double bytes) {
  char *dxb = nosubdir ? cat(path, "") : cat(path, "/mdbx.dat");
  if (!dxb)
    return -ENOMEM;
  int rc = 0;
#if defined(_WIN32) || defined(_WIN64)
  int fd = _open(dxb, _O_RDWR | _O_BINARY);
#else
  int fd = open(dxb, O_RDWR | O_CLOEXEC);
#endif
  if (fd < 0)
    rc = -errno;
  else {
    tm_stat_t st;
    if (tm_fstat(fd, &st) != 0)
      rc = -errno;
#if defined(_WIN32) || defined(_WIN64)
    else if ((double)st.st_size < bytes && _chsize_s(fd, (__int64)bytes) != 0)
      rc = -errno;
#else
    else if ((double)st.st_size < bytes && ftruncate(fd, (off_t)bytes) != 0)
      rc = -errno;
    else if (fsync(fd) != 0)
      rc = -errno;
#endif
    close_fd(fd);
  }
  free(dxb);
  return rc;
}

/* For a check: the state of each of the three meta pages of the data file, which mdbx_env_chk does not look at
 * (it checks the trees of the meta it uses). `out` (doubles): per meta i, [3i] a META_* code (0: valid), [3i+1]
 * its txnid, [3i+2] 1 when steady, at the page size tm_dxb_inspect() finds. Returns that page size; 0 when the
 * file is missing, empty, shorter than its meta pages or has no valid meta (tm_dxb_inspect()'s verdicts, which
 * open() refuses); or a negative errno. Writes nothing. */
TM_API int tm_dxb_metas(const char *path, int32_t nosubdir, double *out) {
  memset(out, 0, 3 * NUM_METAS * sizeof(double));
  double found[8];
  const int st = tm_dxb_inspect(path, nosubdir, found);
  if (st < 0)
    return st;
  if (st != DXB_OK && st != DXB_TRUNCATED)
    return 0;
  const uint32_t ps = (uint32_t)found[2];
  char *dxb = nosubdir ? cat(path, "") : cat(path, "/mdbx.dat");
  if (!dxb)
    return -ENOMEM;
  const int fd = open_ro(dxb);
  free(dxb);
  if (fd < 0)
    return -errno;
  uint8_t page[MIN_PAGESIZE];
  for (unsigned i = 0; i < NUM_METAS; i++) {
    if (!read_meta(fd, ps, i, page)) {
      out[3 * i] = META_UNREADABLE;
      continue;
    }
    out[3 * i] = meta_problem(page, i, ps);
    out[3 * i + 1] = (double)rd64(page + META + 8);
    out[3 * i + 2] = rd64(page + META + 168) > 1 ? 1 : 0;
  }
  close_fd(fd);
  return (int)ps;
}
