/*
 * turbomdbx: libmdbx's page and node layout, as the C files that read
 * committed pages of the map directly see it (native/cache.c for the get()
 * cache, native/ostat.c for order statistics; docs/cache.md explains why a
 * committed page version can be read without libmdbx). The layout is
 * libmdbx 0.14's on-disk format, which turbomdbx never changes.
 */
#pragma once

#include <stdint.h>
#include <string.h>

enum {
  PAGE_HEADER = 20, /* txnid u64 @0, dupfix_ksize u16 @8, flags u16 @10, lower @12, upper @14, pgno u32 @16 */
  P_BRANCH = 0x01,
  P_LEAF = 0x02,
  P_DUPFIX = 0x20,
  NODE_HEADER = 8, /* dsize | child pgno u32 @0, flags u8 @4, extra u8 @5, ksize u16 @6, then key, then data */
};

/* Unaligned little-endian loads (pages and nodes are only 2-byte aligned). */
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

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
