/* turbomdbx: the memory of the get() cache, shared by every process that uses
 * a database (native/cache_shm.c) or private to one (docs/cache.md, "Where the
 * cache lives").
 *
 * One layout for both: a header (the accounting of commits, the directory of
 * cached tables), retired[] (one txnid per page of the data file) and the slot
 * regions of the tables. Shared, it is the sidecar file next to the lock file,
 * mapped MAP_SHARED by every process; private, the same layout in anonymous
 * memory. Everything in it that changes after creation is read and written
 * with atomic operations (the __atomic builtins): several threads of several
 * processes use it at once. Internal to native/cache.c and native/cache_shm.c. */
#ifndef TURBOMDBX_CACHE_SHM_H
#define TURBOMDBX_CACHE_SHM_H

#include <stddef.h>
#include <stdint.h>

enum {
  TS_TABLES = 64,   /* cached tables in the directory of a shared sidecar */
  TS_RING = 4096,   /* commits remembered: ring[t % TS_RING] says whether commit t was published */
  TS_NAME = 216,    /* longest table name kept in the directory (longer: the table's slots are private) */
  TS_WAYS = 4,      /* slots per bucket */
  TS_BLOCK = 4096,  /* regions are placed at multiples of this in the file */
};

#define TS_MAGIC 0x31656863614d5474ull /* "tTMache1" */
#define TS_VERSION 1u
#define TS_PENDING ((uint64_t)1 << 63) /* ring entry of a commit that reached its callback, not yet confirmed */
#define TS_MAIN 0xffffffffu            /* namelen of the main (unnamed) table */

/* A bucket: one cache line, four slots behind a seqlock word.
 * word = gen << 32 | seq: seq is odd while a writer changes the bucket; a
 * bucket whose gen is not its table's current gen is empty (a drop is one
 * increment of the table's gen). Slot i: tag[i] (16 bits of the key's hash, 0:
 * empty), pgno[i] (the leaf page), loc[i] (page version << 16 | node offset). */
typedef struct {
  uint64_t word;
  uint16_t tag[TS_WAYS];
  uint32_t pgno[TS_WAYS];
  uint64_t loc[TS_WAYS];
} ts_bucket;

/* A cached table: its slot region and its generation. Directory entries of a
 * shared sidecar are matched by name; a private one lives in process memory. */
typedef struct {
  uint32_t state;   /* 0: free, 1: ready */
  uint32_t namelen; /* TS_MAIN: the main table */
  uint32_t max;     /* bounded: at most this many entries; 0: unbounded (the region grows) */
  uint32_t gen;     /* bumped by every drop; read by every lookup */
  uint64_t region;  /* block << 32 | buckets: where the slots are (a block is TS_BLOCK bytes of the file) */
  char name[TS_NAME];
  /* entries, approximately (racing inserts and removals of several processes); written by every insert, so
   * it sits in another cache line than gen and region, which every lookup reads */
  int64_t count;
} ts_desc;

typedef struct {
  uint64_t magic;
  uint32_t version, pagesize;
  uint64_t dev, ino;     /* the data file this sidecar belongs to */
  uint64_t npages;       /* pages covered by retired[] */
  uint64_t retired_off;  /* where retired[] starts */
  uint64_t arena_end;    /* the file's length: regions are appended */
  uint64_t acct;         /* every commit up to this txnid is accounted for in the shared state */
  uint64_t fence;        /* snapshots below it may not insert (they may know locations a foreign writer moved) */
  uint64_t resets;       /* how many times this file was (re)initialised */
  uint64_t pad[6];
  ts_desc tables[TS_TABLES];
  uint64_t ring[TS_RING];
} ts_header;

typedef struct ts_file ts_file;

/* Opens (creating, or re-initialising when no other process uses it) the
 * sidecar at `path` for the data file (dev, ino), covering `npages` pages of
 * retired[] if it is made now. Returns NULL with *err (an errno value) when no
 * shared sidecar can be had here: the caller then uses private memory. */
ts_file *ts_file_open(const char *path, uint64_t dev, uint64_t ino, uint32_t pagesize, uint64_t npages, int mode,
                      int *err);
void ts_file_close(ts_file *f);
ts_header *ts_file_header(ts_file *f);
uint64_t *ts_file_retired(ts_file *f);
/* The cross-process mutex for rare changes (directory entries, new regions). */
void ts_file_lock(ts_file *f);
int ts_file_trylock(ts_file *f);
void ts_file_unlock(ts_file *f);
/* Appends a zeroed region of `bytes` (under the lock); returns its block or 0. */
uint64_t ts_file_grow(ts_file *f, size_t bytes);
/* Maps a region; NULL on failure. */
void *ts_file_map(ts_file *f, uint64_t block, size_t bytes);
void ts_file_unmap(void *p, size_t bytes);
/* Gives a region's memory back (the region is no longer referenced; late readers see zeros: empty buckets). */
void ts_file_release(ts_file *f, uint64_t block, size_t bytes);

#endif
