/* turbomdbx: the get() cache's sidecar file, shared by every process that uses
 * a database (docs/cache.md, "Where the cache lives").
 *
 * The file sits next to the lock file ("<data>-tmcache" beside a data file
 * opened with noSubdir, "mdbx.tmcache" in a database folder). It is not part of
 * the database: libmdbx and mdbx_chk never look at it, and deleting it while
 * no process has the database open loses nothing but warm entries.
 *
 * Two open-file-description locks (Linux F_OFD_SETLK: per open file, so
 * threads and several environments in one process behave) keep it sane:
 *  - byte 0, "users": every process that maps the file holds a read lock for
 *    as long as it does; one that gets a write lock is alone, and only then is
 *    the file re-initialised (so a sidecar left by crashed processes, a
 *    reboot, or a data file replaced while nobody had it open starts clean);
 *  - byte 1, "mutex": held while joining, and for the rare changes that need
 *    one writer (a new directory entry, a new region).
 * The kernel drops both when a process dies, so kill -9 leaves nothing held.
 *
 * A sidecar of another data file (a live rebuild renamed a new file into
 * place while processes still use the old one) is replaced, not reused: a
 * fresh file is made under a temporary name and renamed over the path, so the
 * old file's users keep theirs and the new file's users share the new one.
 *
 * Elsewhere (no OFD locks: macOS, Windows) there is no shared sidecar and the
 * cache is private to each process. */
#define _GNU_SOURCE
#include "cache_shm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#if defined(__linux__)
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct ts_file {
  int fd;
  ts_header *h;
  size_t hbytes;
  uint64_t *retired;
  size_t rbytes;
};

static int ofd_lock(int fd, short type, off_t at, int wait) {
  struct flock l;
  memset(&l, 0, sizeof(l));
  l.l_type = type;
  l.l_whence = SEEK_SET;
  l.l_start = at;
  l.l_len = 1;
  for (;;) {
    if (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &l) == 0)
      return 0;
    if (errno != EINTR)
      return errno;
  }
}

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

static size_t header_bytes(void) { return round_up(sizeof(ts_header), TS_BLOCK); }

/* Writes a fresh header into an empty file and sizes it. */
static int init_file(int fd, uint64_t dev, uint64_t ino, uint32_t pagesize, uint64_t npages, uint64_t resets) {
  const size_t hb = header_bytes(), rb = round_up((size_t)npages * 8, TS_BLOCK);
  if (ftruncate(fd, 0) != 0 || ftruncate(fd, (off_t)(hb + rb)) != 0)
    return errno;
  ts_header *h = calloc(1, sizeof(*h));
  if (!h)
    return ENOMEM;
  h->version = TS_VERSION;
  h->pagesize = pagesize;
  h->dev = dev;
  h->ino = ino;
  h->npages = npages;
  h->retired_off = hb;
  h->arena_end = hb + rb;
  h->resets = resets + 1;
  h->magic = TS_MAGIC;
  ssize_t w = pwrite(fd, h, sizeof(*h), 0);
  free(h);
  return w == (ssize_t)sizeof(ts_header) ? 0 : (w < 0 ? errno : EIO);
}

static int header_matches(int fd, uint64_t dev, uint64_t ino, uint32_t pagesize, uint64_t *resets) {
  struct {
    uint64_t magic;
    uint32_t version, pagesize;
    uint64_t dev, ino;
  } h;
  struct stat st;
  *resets = 0;
  if (fstat(fd, &st) != 0 || (size_t)st.st_size < header_bytes() || pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
    return 0;
  if (h.magic == TS_MAGIC)
    (void)(pread(fd, resets, 8, offsetof(ts_header, resets)) == 8);
  return h.magic == TS_MAGIC && h.version == TS_VERSION && h.pagesize == pagesize && h.dev == dev && h.ino == ino;
}

static int map_file(ts_file *f) {
  f->hbytes = header_bytes();
  f->h = mmap(NULL, f->hbytes, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
  if (f->h == MAP_FAILED) {
    f->h = NULL;
    return errno;
  }
  f->rbytes = round_up((size_t)f->h->npages * 8, TS_BLOCK);
  if (f->rbytes) {
    f->retired = mmap(NULL, f->rbytes, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, (off_t)f->h->retired_off);
    if (f->retired == MAP_FAILED) {
      f->retired = NULL;
      munmap(f->h, f->hbytes);
      f->h = NULL;
      return errno;
    }
  }
  return 0;
}

ts_file *ts_file_open(const char *path, uint64_t dev, uint64_t ino, uint32_t pagesize, uint64_t npages, int mode,
                      int *err) {
  ts_file *f = calloc(1, sizeof(*f));
  if (!f) {
    *err = ENOMEM;
    return NULL;
  }
  for (int attempt = 0; attempt < 16; attempt++) {
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, mode);
    if (fd < 0) {
      *err = errno;
      break;
    }
    int e = ofd_lock(fd, F_WRLCK, 1, 1);
    if (e) {
      close(fd);
      *err = e;
      break;
    }
    /* the path may have been given another file while this process waited */
    struct stat a, b;
    if (fstat(fd, &a) != 0 || stat(path, &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
      close(fd);
      continue;
    }
    uint64_t resets = 0;
    const int valid = header_matches(fd, dev, ino, pagesize, &resets);
    if (ofd_lock(fd, F_WRLCK, 0, 0) == 0) {
      /* alone: whatever the file holds was left by processes that are gone; start clean */
      e = init_file(fd, dev, ino, pagesize, npages, resets);
      if (!e)
        e = ofd_lock(fd, F_RDLCK, 0, 0); /* converting a lock is atomic */
    } else if (!valid) {
      /* other processes use a sidecar of another data file: put a fresh one in place */
      char tmp[4200];
      snprintf(tmp, sizeof(tmp), "%s.%ld.new", path, (long)getpid());
      int nfd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
      e = nfd < 0 ? errno : 0;
      if (!e)
        e = init_file(nfd, dev, ino, pagesize, npages, 0);
      if (!e)
        e = ofd_lock(nfd, F_RDLCK, 0, 0);
      if (!e)
        e = ofd_lock(nfd, F_WRLCK, 1, 0);
      if (!e && rename(tmp, path) != 0)
        e = errno;
      if (e) {
        if (nfd >= 0)
          close(nfd);
        unlink(tmp);
      } else {
        close(fd); /* releases the old file's locks */
        fd = nfd;
      }
    } else
      e = ofd_lock(fd, F_RDLCK, 0, 0);
    if (!e) {
      f->fd = fd;
      e = map_file(f);
    }
    if (e) {
      close(fd);
      *err = e;
      break;
    }
    ofd_lock(fd, F_UNLCK, 1, 0);
    return f;
  }
  free(f);
  if (!*err)
    *err = EBUSY;
  return NULL;
}

void ts_file_close(ts_file *f) {
  if (!f)
    return;
  if (f->retired)
    munmap(f->retired, f->rbytes);
  if (f->h)
    munmap(f->h, f->hbytes);
  close(f->fd); /* drops the users lock */
  free(f);
}

ts_header *ts_file_header(ts_file *f) { return f->h; }
uint64_t *ts_file_retired(ts_file *f) { return f->retired; }
void ts_file_lock(ts_file *f) { ofd_lock(f->fd, F_WRLCK, 1, 1); }
int ts_file_trylock(ts_file *f) { return ofd_lock(f->fd, F_WRLCK, 1, 0) == 0; }
void ts_file_unlock(ts_file *f) { ofd_lock(f->fd, F_UNLCK, 1, 0); }

uint64_t ts_file_grow(ts_file *f, size_t bytes) {
  const uint64_t at = __atomic_load_n(&f->h->arena_end, __ATOMIC_RELAXED), n = round_up(bytes, TS_BLOCK);
  if (ftruncate(f->fd, (off_t)(at + n)) != 0)
    return 0;
  __atomic_store_n(&f->h->arena_end, at + n, __ATOMIC_RELEASE);
  return at / TS_BLOCK;
}

void *ts_file_map(ts_file *f, uint64_t block, size_t bytes) {
  void *p = mmap(NULL, round_up(bytes, TS_BLOCK), PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, (off_t)(block * TS_BLOCK));
  return p == MAP_FAILED ? NULL : p;
}

void ts_file_unmap(void *p, size_t bytes) { munmap(p, round_up(bytes, TS_BLOCK)); }

void ts_file_release(ts_file *f, uint64_t block, size_t bytes) {
  (void)fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(block * TS_BLOCK),
                  (off_t)round_up(bytes, TS_BLOCK));
}

#else /* no shared sidecar on this platform: the cache is private to each process */

struct ts_file {
  int unused;
};

ts_file *ts_file_open(const char *path, uint64_t dev, uint64_t ino, uint32_t pagesize, uint64_t npages, int mode,
                      int *err) {
  (void)path, (void)dev, (void)ino, (void)pagesize, (void)npages, (void)mode;
  *err = ENOSYS;
  return NULL;
}
void ts_file_close(ts_file *f) { (void)f; }
ts_header *ts_file_header(ts_file *f) { return (void)f, NULL; }
uint64_t *ts_file_retired(ts_file *f) { return (void)f, NULL; }
void ts_file_lock(ts_file *f) { (void)f; }
int ts_file_trylock(ts_file *f) { return (void)f, 0; }
void ts_file_unlock(ts_file *f) { (void)f; }
uint64_t ts_file_grow(ts_file *f, size_t bytes) { return (void)f, (void)bytes, 0; }
void *ts_file_map(ts_file *f, uint64_t block, size_t bytes) { return (void)f, (void)block, (void)bytes, NULL; }
void ts_file_unmap(void *p, size_t bytes) { (void)p, (void)bytes; }
void ts_file_release(ts_file *f, uint64_t block, size_t bytes) { (void)f, (void)block, (void)bytes; }

#endif
