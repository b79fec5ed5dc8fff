/**
 * The one table of C symbols turbomdbx calls, with their FFI types.
 *
 * Types use Deno's names; `bun.ts` maps them to bun:ffi. Only 32-bit integers,
 * doubles, booleans, pointers (opaque handles) and buffers (TypedArrays) cross
 * the boundary, so every call is a fast call in Deno and no bigint appears on
 * a hot path. The C side is `native/turbomdbx.c`: it returns errors as negative
 * ints (`tm_rc`) and writes results into caller-owned buffers.
 *
 * @module
 */

/** FFI value types used by the table (Deno spelling). */
export type NativeType = "pointer" | "buffer" | "u32" | "i32" | "f64" | "void";

/** One C function: parameter and result types. */
export interface SymbolDef {
  readonly parameters: readonly NativeType[];
  readonly result: NativeType;
}

export const symbols = {
  // const char *tm_version(void)
  tm_version: { parameters: [], result: "pointer" },
  // const char *tm_build_info(void): "libmdbx version<TAB>git describe<TAB>build target"
  tm_build_info: { parameters: [], result: "pointer" },
  // const char *tm_strerror(int32_t code)
  tm_strerror: { parameters: ["i32"], result: "pointer" },

  // MDBX_env *tm_env_create(int32_t *rc)
  tm_env_create: { parameters: ["buffer"], result: "pointer" },
  // int tm_env_set_option(MDBX_env *env, int32_t option, double value)
  tm_env_set_option: { parameters: ["pointer", "i32", "f64"], result: "i32" },
  // double tm_env_get_option(MDBX_env *env, int32_t option, int32_t *rc)
  tm_env_get_option: { parameters: ["pointer", "i32", "buffer"], result: "f64" },
  // int tm_env_set_geometry(MDBX_env *env, double lower, double now, double upper, double growth, double shrink, double pagesize)
  tm_env_set_geometry: { parameters: ["pointer", "f64", "f64", "f64", "f64", "f64", "f64"], result: "i32" },
  // int tm_env_open(MDBX_env *env, const char *path, uint32_t flags, uint32_t mode)
  tm_env_open: { parameters: ["pointer", "buffer", "u32", "u32"], result: "i32" },
  // int tm_env_close(MDBX_env *env, int32_t dont_sync)
  tm_env_close: { parameters: ["pointer", "i32"], result: "i32" },
  // int tm_env_sync(MDBX_env *env, int32_t force, int32_t nonblock)
  tm_env_sync: { parameters: ["pointer", "i32", "i32"], result: "i32" },
  // int tm_env_get_flags(MDBX_env *env, uint32_t *flags)
  tm_env_get_flags: { parameters: ["pointer", "buffer"], result: "i32" },
  // int tm_env_set_flags(MDBX_env *env, uint32_t flags, int32_t onoff)
  tm_env_set_flags: { parameters: ["pointer", "u32", "i32"], result: "i32" },
  // int tm_env_maxkeysize(MDBX_env *env, uint32_t dbflags)
  tm_env_maxkeysize: { parameters: ["pointer", "u32"], result: "i32" },
  // int tm_env_maxvalsize(MDBX_env *env, uint32_t dbflags)
  tm_env_maxvalsize: { parameters: ["pointer", "u32"], result: "i32" },
  // int tm_env_copy(MDBX_env *env, const char *dest, uint32_t flags, int32_t mode /* -1: the source's */)
  tm_env_copy: { parameters: ["pointer", "buffer", "u32", "i32"], result: "i32" },
  // int tm_txn_copy(MDBX_txn *txn, const char *dest, uint32_t flags, int32_t mode /* -1: the source's */)
  tm_txn_copy: { parameters: ["pointer", "buffer", "u32", "i32"], result: "i32" },
  // int tm_env_delete(const char *path, int32_t mode)
  tm_env_delete: { parameters: ["buffer", "i32"], result: "i32" },
  // int tm_reader_check(MDBX_env *env, int32_t *dead)
  tm_reader_check: { parameters: ["pointer", "buffer"], result: "i32" },
  // int tm_env_warmup(MDBX_env *env, MDBX_txn *txn, uint32_t flags, uint32_t timeout_16dot16)
  tm_env_warmup: { parameters: ["pointer", "pointer", "u32", "u32"], result: "i32" },
  // int tm_env_stat(MDBX_env *env, MDBX_txn *txn, double out[7])
  tm_env_stat: { parameters: ["pointer", "pointer", "buffer"], result: "i32" },
  // int tm_env_info(MDBX_env *env, MDBX_txn *txn, double out[24])
  tm_env_info: { parameters: ["pointer", "pointer", "buffer"], result: "i32" },
  // int tm_reader_list(MDBX_env *env, uint8_t *out, uint32_t cap)
  tm_reader_list: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  // int tm_env_chk(MDBX_env *env, uint32_t flags, uint32_t timeout_16dot16, uint8_t *log, uint32_t cap, double res[16])
  tm_env_chk: { parameters: ["pointer", "u32", "u32", "buffer", "u32", "buffer"], result: "i32" },
  // int tm_env_defrag(MDBX_env *env, double atleast, double time_atleast_s, double enough, double time_limit_s,
  //                   double res[8])
  tm_env_defrag: { parameters: ["pointer", "f64", "f64", "f64", "f64", "buffer"], result: "i32" },
  // int tm_env_map(MDBX_env *env, double out[3])
  tm_env_map: { parameters: ["pointer", "buffer"], result: "i32" },
  // native/cache.c — the get() cache
  // tm_cache *tm_cache_open(MDBX_env *env, int32_t shared, int32_t *rc)
  tm_cache_open: { parameters: ["pointer", "i32", "buffer"], result: "pointer" },
  // int tm_cache_info(tm_cache *c, double out[4]): 1 shared, 0 private
  tm_cache_info: { parameters: ["pointer", "buffer"], result: "i32" },
  // void tm_cache_taint(void): this thread's next commit is not confirmed (a renamed cached table)
  tm_cache_taint: { parameters: [], result: "void" },
  // int tm_cache_close(MDBX_env *env, tm_cache *c)
  tm_cache_close: { parameters: ["pointer", "pointer"], result: "i32" },
  // double tm_cache_sync(tm_cache *c, const MDBX_txn *txn, double snap): the snapshot to read the cache with
  tm_cache_sync: { parameters: ["pointer", "pointer", "f64"], result: "f64" },
  // tm_ctable *tm_ctable_open(tm_cache *c, uint32_t dbi, double max, const uint8_t *name, uint32_t namelen,
  //                           int32_t *rc)
  tm_ctable_open: { parameters: ["pointer", "u32", "f64", "buffer", "u32", "buffer"], result: "pointer" },
  // void tm_ctable_close(tm_ctable *t)
  tm_ctable_close: { parameters: ["pointer"], result: "void" },
  // void tm_ctable_clear(tm_ctable *t)
  tm_ctable_clear: { parameters: ["pointer"], result: "void" },
  // void tm_ctable_stats(const tm_ctable *t, double out[8])
  tm_ctable_stats: { parameters: ["pointer", "buffer"], result: "void" },
  // int tm_cache_get(tm_ctable *t /* NULL: uncached */, const MDBX_txn *txn, uint32_t dbi, double snap,
  //                  const uint8_t *key, uint32_t klen, uint8_t *out, uint32_t cap)
  tm_cache_get: { parameters: ["pointer", "pointer", "u32", "f64", "buffer", "u32", "buffer", "u32"], result: "i32" },
  // int tm_cache_get_at(tm_ctable *t, const MDBX_txn *txn, uint32_t dbi, double snap, const uint8_t *key,
  //                     uint32_t klen, uint8_t *out, uint32_t off, uint32_t cap)
  tm_cache_get_at: {
    parameters: ["pointer", "pointer", "u32", "f64", "buffer", "u32", "buffer", "u32", "u32"],
    result: "i32",
  },
  // int tm_get_many(tm_ctable *t, const MDBX_txn *txn, uint32_t dbi, double snap, const uint8_t *keys,
  //                 const uint32_t *koff, uint32_t ksize, uint32_t first, uint32_t n, uint8_t *out, uint32_t at,
  //                 uint32_t cap, int32_t *pos)
  tm_get_many: {
    parameters: [
      "pointer",
      "pointer",
      "u32",
      "f64",
      "buffer",
      "buffer",
      "u32",
      "u32",
      "u32",
      "buffer",
      "u32",
      "u32",
      "buffer",
    ],
    result: "i32",
  },
  // int tm_follow(MDBX_cursor *cur, uint32_t flags, const uint8_t *prefix, uint32_t plen, uint32_t at, uint32_t len,
  //               tm_ctable *t, uint32_t dbi, double snap, uint32_t max_count, uint8_t *out, uint32_t cap)
  tm_follow: {
    parameters: ["pointer", "u32", "buffer", "u32", "u32", "u32", "pointer", "u32", "f64", "u32", "buffer", "u32"],
    result: "i32",
  },
  // native/rebuild.c — live rebuild and the switch every process follows
  // int tm_dxb_inspect(const char *path, int32_t nosubdir, double *out) (native/integrity.c)
  tm_dxb_inspect: { parameters: ["buffer", "i32", "buffer"], result: "i32" },
  // int tm_dxb_metas(const char *path, int32_t nosubdir, double out[9]) (native/integrity.c)
  tm_dxb_metas: { parameters: ["buffer", "i32", "buffer"], result: "i32" },
  // int tm_dxb_extend(const char *path, int32_t nosubdir, double bytes)
  tm_dxb_extend: { parameters: ["buffer", "i32", "f64"], result: "i32" },
  // int tm_switch_prepare(const char *path, uint32_t nosubdir, uint32_t timeout_ms)
  tm_switch_prepare: { parameters: ["buffer", "u32", "u32"], result: "i32" },
  // int tm_switch_attach(MDBX_env *env, uint32_t expect_gen)
  tm_switch_attach: { parameters: ["pointer", "u32"], result: "i32" },
  // int tm_switch_adopt(MDBX_env *env)
  tm_switch_adopt: { parameters: ["pointer"], result: "i32" },
  // double tm_switch_view(MDBX_env *env)
  tm_switch_view: { parameters: ["pointer"], result: "f64" },
  // uint32_t tm_switch_gen(MDBX_env *env)
  tm_switch_gen: { parameters: ["pointer"], result: "u32" },
  // tm_rebuild *tm_rebuild_start(MDBX_env *env, double max_bytes, int32_t *rc)
  tm_rebuild_start: { parameters: ["pointer", "f64", "buffer"], result: "pointer" },
  // int tm_rebuild_poll(tm_rebuild *rb, double out[14])
  tm_rebuild_poll: { parameters: ["pointer", "buffer"], result: "i32" },
  // void tm_rebuild_cancel(tm_rebuild *rb)
  tm_rebuild_cancel: { parameters: ["pointer"], result: "void" },
  // int tm_rebuild_join(tm_rebuild *rb, double out[14])
  tm_rebuild_join: { parameters: ["pointer", "buffer"], result: "i32" },
  // int tm_env_close_retired(MDBX_env *env)
  tm_env_close_retired: { parameters: ["pointer"], result: "i32" },
  // --- native/registry.c: one env per file per process, shared by its Workers (docs/workers.md)
  // MDBX_env *tm_env_share(const char *path, uint32_t nosubdir, int32_t *rc)
  tm_env_share: { parameters: ["buffer", "u32", "buffer"], result: "pointer" },
  // int tm_env_release_retired(MDBX_env *env)
  tm_env_release_retired: { parameters: ["pointer"], result: "i32" },
  // int tm_env_note_set(MDBX_env *env, const uint8_t *note, uint32_t len)
  tm_env_note_set: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  // int tm_env_note_get(MDBX_env *env, uint8_t *out, uint32_t cap)
  tm_env_note_get: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  // int tm_registry_info(MDBX_env *env, double out[6])
  tm_registry_info: { parameters: ["pointer", "buffer"], result: "i32" },
  // int tm_leaf_order(MDBX_txn *txn, uint32_t dbi, double out[2])
  tm_leaf_order: { parameters: ["pointer", "u32", "buffer"], result: "i32" },
  // native/log.c — libmdbx's log, kept in a ring instead of printed
  // int tm_log_level(int32_t level)
  tm_log_level: { parameters: ["i32"], result: "i32" },
  // double tm_log_counter(void) (the address of a u32: messages written)
  tm_log_counter: { parameters: [], result: "f64" },
  // int tm_log_drain(uint8_t *out, uint32_t cap)
  tm_log_drain: { parameters: ["buffer", "u32"], result: "i32" },
  // int mdbx_env_set_hsr(MDBX_env *env, MDBX_hsr_func fn)
  mdbx_env_set_hsr: { parameters: ["pointer", "pointer"], result: "i32" },

  // MDBX_txn *tm_txn_begin(MDBX_env *env, MDBX_txn *parent, uint32_t flags, int32_t *rc)
  tm_txn_begin: { parameters: ["pointer", "pointer", "u32", "buffer"], result: "pointer" },
  // int tm_txn_commit(MDBX_txn *txn)
  tm_txn_commit: { parameters: ["pointer"], result: "i32" },
  // int tm_txn_abort(MDBX_txn *txn)
  tm_txn_abort: { parameters: ["pointer"], result: "i32" },
  // int tm_txn_reset(MDBX_txn *txn)
  tm_txn_reset: { parameters: ["pointer"], result: "i32" },
  // int tm_txn_renew(MDBX_txn *txn)
  tm_txn_renew: { parameters: ["pointer"], result: "i32" },
  // int tm_txn_break(MDBX_txn *txn)
  tm_txn_break: { parameters: ["pointer"], result: "i32" },
  // int tm_txn_park(MDBX_txn *txn, int32_t autounpark)
  tm_txn_park: { parameters: ["pointer", "i32"], result: "i32" },
  // int tm_txn_unpark(MDBX_txn *txn, int32_t restart_if_ousted)
  tm_txn_unpark: { parameters: ["pointer", "i32"], result: "i32" },
  // double tm_txn_id(MDBX_txn *txn)
  tm_txn_id: { parameters: ["pointer"], result: "f64" },
  // int tm_txn_flags(MDBX_txn *txn)
  tm_txn_flags: { parameters: ["pointer"], result: "i32" },
  // int tm_txn_info(MDBX_txn *txn, int32_t scan_rlt, double out[9])
  tm_txn_info: { parameters: ["pointer", "i32", "buffer"], result: "i32" },
  // int tm_canary_get(MDBX_txn *txn, double out[4])
  tm_canary_get: { parameters: ["pointer", "buffer"], result: "i32" },
  // int tm_canary_put(MDBX_txn *txn, double x, double y, double z)
  tm_canary_put: { parameters: ["pointer", "f64", "f64", "f64"], result: "i32" },
  // int tm_gc_info(MDBX_txn *txn, double out[7])
  tm_gc_info: { parameters: ["pointer", "buffer"], result: "i32" },

  // int tm_dbi_open(MDBX_txn *txn, const void *name, uint32_t len, int32_t has_name, uint32_t flags, uint32_t *dbi)
  tm_dbi_open: { parameters: ["pointer", "buffer", "u32", "i32", "u32", "buffer"], result: "i32" },
  // int tm_dbi_rename(MDBX_txn *txn, uint32_t dbi, const void *name, uint32_t len)
  tm_dbi_rename: { parameters: ["pointer", "u32", "buffer", "u32"], result: "i32" },
  // int tm_dbi_flags(MDBX_txn *txn, uint32_t dbi, uint32_t out[2])
  tm_dbi_flags: { parameters: ["pointer", "u32", "buffer"], result: "i32" },
  // int tm_dbi_stat(MDBX_txn *txn, uint32_t dbi, double out[7])
  tm_dbi_stat: { parameters: ["pointer", "u32", "buffer"], result: "i32" },
  // int tm_dbi_close(MDBX_env *env, uint32_t dbi)
  tm_dbi_close: { parameters: ["pointer", "u32"], result: "i32" },
  // int tm_drop(MDBX_txn *txn, uint32_t dbi, int32_t del)
  tm_drop: { parameters: ["pointer", "u32", "i32"], result: "i32" },
  // int tm_dbi_sequence(MDBX_txn *txn, uint32_t dbi, double increment, double out[1])
  tm_dbi_sequence: { parameters: ["pointer", "u32", "f64", "buffer"], result: "i32" },
  // int tm_enumerate_tables(MDBX_txn *txn, uint8_t *out, uint32_t cap)
  tm_enumerate_tables: { parameters: ["pointer", "buffer", "u32"], result: "i32" },

  // int tm_get(MDBX_txn *txn, uint32_t dbi, const void *key, uint32_t klen, void *out, uint32_t cap)
  tm_get: { parameters: ["pointer", "u32", "buffer", "u32", "buffer", "u32"], result: "i32" },
  // int tm_get_at(MDBX_txn *txn, uint32_t dbi, const void *key, uint32_t klen, uint8_t *out, uint32_t off, uint32_t cap)
  tm_get_at: { parameters: ["pointer", "u32", "buffer", "u32", "buffer", "u32", "u32"], result: "i32" },
  // int tm_get_ref(MDBX_txn *txn, uint32_t dbi, const void *key, uint32_t klen, double ref[2])
  tm_get_ref: { parameters: ["pointer", "u32", "buffer", "u32", "buffer"], result: "i32" },
  // int tm_get_ex(MDBX_txn *txn, uint32_t dbi, const void *key, uint32_t klen, void *out, uint32_t cap, double count[1])
  tm_get_ex: { parameters: ["pointer", "u32", "buffer", "u32", "buffer", "u32", "buffer"], result: "i32" },
  // int tm_get_ge(MDBX_txn *txn, uint32_t dbi, const void *key, uint32_t klen, uint8_t *out, uint32_t cap)
  tm_get_ge: { parameters: ["pointer", "u32", "buffer", "u32", "buffer", "u32"], result: "i32" },
  // int tm_put(MDBX_txn *txn, uint32_t dbi, const void *key, uint32_t klen, const void *val, uint32_t vlen, uint32_t flags)
  tm_put: { parameters: ["pointer", "u32", "buffer", "u32", "buffer", "u32", "u32"], result: "i32" },
  // int tm_put_reserve(MDBX_txn *txn, uint32_t dbi, const void *key, uint32_t klen, uint32_t vlen, uint32_t flags, double ref[2])
  tm_put_reserve: { parameters: ["pointer", "u32", "buffer", "u32", "u32", "u32", "buffer"], result: "i32" },
  // int tm_del(MDBX_txn *txn, uint32_t dbi, const void *key, uint32_t klen, const void *val, uint32_t vlen, int32_t has_val)
  tm_del: { parameters: ["pointer", "u32", "buffer", "u32", "buffer", "u32", "i32"], result: "i32" },
  // native/range.c (issue 14): int tm_del_range(MDBX_txn *txn, uint32_t dbi, const void *lo, uint32_t lolen,
  //                                           const void *hi, uint32_t hilen, uint32_t flags, double out[1])
  tm_del_range: { parameters: ["pointer", "u32", "buffer", "u32", "buffer", "u32", "u32", "buffer"], result: "i32" },
  // native/geometry.c (issue 14): int tm_env_resize(MDBX_env *env, double lower, double now, double upper,
  //                                                 double growth, double shrink, int32_t movable)
  tm_env_resize: { parameters: ["pointer", "f64", "f64", "f64", "f64", "f64", "i32"], result: "i32" },
  // int tm_replace(MDBX_txn *txn, uint32_t dbi, const void *key, uint32_t klen, const void *val, uint32_t vlen,
  //                int32_t has_val, uint32_t flags, void *out, uint32_t cap)
  tm_replace: {
    parameters: ["pointer", "u32", "buffer", "u32", "buffer", "u32", "i32", "u32", "buffer", "u32"],
    result: "i32",
  },
  // int tm_estimate_range(MDBX_txn *txn, uint32_t dbi, const void *b, uint32_t blen, int32_t has_b,
  //                       const void *e, uint32_t elen, int32_t has_e, double out[1])
  tm_estimate_range: {
    parameters: ["pointer", "u32", "buffer", "u32", "i32", "buffer", "u32", "i32", "buffer"],
    result: "i32",
  },
  // int tm_cmp(MDBX_txn *txn, uint32_t dbi, const void *a, uint32_t alen, const void *b, uint32_t blen)
  tm_cmp: { parameters: ["pointer", "u32", "buffer", "u32", "buffer", "u32"], result: "i32" },

  // MDBX_cursor *tm_cursor_open(MDBX_txn *txn, uint32_t dbi, int32_t *rc)
  tm_cursor_open: { parameters: ["pointer", "u32", "buffer"], result: "pointer" },
  // void tm_cursor_close(MDBX_cursor *cursor)
  tm_cursor_close: { parameters: ["pointer"], result: "void" },
  // int tm_cursor_get(MDBX_cursor *c, int32_t op, const void *key, uint32_t klen, const void *val, uint32_t vlen,
  //                   uint8_t *out, uint32_t cap)
  tm_cursor_get: {
    parameters: ["pointer", "i32", "buffer", "u32", "buffer", "u32", "buffer", "u32"],
    result: "i32",
  },
  // int tm_cursor_put(MDBX_cursor *c, const void *key, uint32_t klen, const void *val, uint32_t vlen, uint32_t flags)
  tm_cursor_put: { parameters: ["pointer", "buffer", "u32", "buffer", "u32", "u32"], result: "i32" },
  // int tm_cursor_del(MDBX_cursor *c, uint32_t flags)
  tm_cursor_del: { parameters: ["pointer", "u32"], result: "i32" },
  // int tm_cursor_count(MDBX_cursor *c, double out[1])
  tm_cursor_count: { parameters: ["pointer", "buffer"], result: "i32" },
  // int tm_scan(MDBX_cursor *c, uint32_t flags, const void *start, uint32_t slen, const void *end, uint32_t elen,
  //             uint32_t skip, uint32_t max_count, uint8_t *out, uint32_t cap)
  tm_scan: {
    parameters: ["pointer", "u32", "buffer", "u32", "buffer", "u32", "u32", "u32", "buffer", "u32"],
    result: "i32",
  },

  // ---- order statistics (native/ostat.c, docs/order-statistics.md) ----
  // int tm_ostat_rank(const MDBX_txn *txn, uint32_t dbi, uint32_t flags, const void *key, uint32_t klen,
  //                   const void *val /* NULL: by key only */, uint32_t vlen, double out[1])
  tm_ostat_rank: { parameters: ["pointer", "u32", "u32", "buffer", "u32", "buffer", "u32", "buffer"], result: "i32" },
  // int tm_ostat_count(const MDBX_txn *txn, uint32_t dbi, uint32_t flags, const void *lo, uint32_t lolen,
  //                    const void *hi, uint32_t hilen, double out[3] /* count, first, total */)
  tm_ostat_count: {
    parameters: ["pointer", "u32", "u32", "buffer", "u32", "buffer", "u32", "buffer"],
    result: "i32",
  },
  // int tm_ostat_at(MDBX_cursor *cur, uint32_t flags, double index, uint8_t *out, uint32_t cap)
  tm_ostat_at: { parameters: ["pointer", "u32", "f64", "buffer", "u32"], result: "i32" },
  // int tm_ostat_seek(MDBX_cursor *cur, uint32_t flags, double index)
  tm_ostat_seek: { parameters: ["pointer", "u32", "f64"], result: "i32" },
  // void tm_ostat_stats(MDBX_env *env, double out[8])
  tm_ostat_stats: { parameters: ["pointer", "buffer"], result: "void" },
  // int tm_ostat_configure(MDBX_env *env, double budget, int32_t clear)
  tm_ostat_configure: { parameters: ["pointer", "f64", "i32"], result: "i32" },
  // native/watch.c — the change feed's snapshot difference (src/watch.ts)
  // void *tm_watch_diff(MDBX_txn *older, MDBX_txn *newer, uint32_t dbi, const uint8_t *prefix, uint32_t plen,
  //                     double out[4])
  tm_watch_diff: { parameters: ["pointer", "pointer", "u32", "buffer", "u32", "buffer"], result: "pointer" },
  // void *tm_watch_fulldiff(MDBX_txn *older, uint32_t odbi, MDBX_txn *newer, uint32_t ndbi, const uint8_t *prefix,
  //                         uint32_t plen, double out[4])
  tm_watch_fulldiff: { parameters: ["pointer", "u32", "pointer", "u32", "buffer", "u32", "buffer"], result: "pointer" },
  // void tm_watch_free(void *buf)
  tm_watch_free: { parameters: ["pointer"], result: "void" },
  // native/sync.c — durable commits synced on a native thread (src/durable.ts)
  // tm_syncer *tm_syncer_open(MDBX_env *env, int32_t *rc)
  tm_syncer_open: { parameters: ["pointer", "buffer"], result: "pointer" },
  // uint32_t tm_syncer_request(tm_syncer *s, MDBX_env *env)
  tm_syncer_request: { parameters: ["pointer", "pointer"], result: "u32" },
  // uint32_t tm_syncer_state(tm_syncer *s, int32_t out[2])
  tm_syncer_state: { parameters: ["pointer", "buffer"], result: "u32" },
  // void tm_syncer_close(tm_syncer *s, int32_t out[3])
  tm_syncer_close: { parameters: ["pointer", "buffer"], result: "void" },
} as const satisfies Record<string, SymbolDef>;

/**
 * Symbols that block until another thread is done: Deno binds them with
 * `nonblocking: true` (run on a thread of Deno's, the call returns a promise);
 * Bun has no such calls and polls `tm_syncer_state` instead.
 */
export const blockingSymbols = {
  // int tm_syncer_wait(tm_syncer *s, uint32_t ticket)
  tm_syncer_wait: { parameters: ["pointer", "u32"], result: "i32" },
} as const satisfies Record<string, SymbolDef>;

/** The symbol table's type. */
export type Symbols = typeof symbols;

/** An opaque native handle (a Deno pointer object or a bun:ffi number). */
export type Handle = { readonly __nativeHandle: unique symbol };

/** What a "buffer" parameter accepts. */
export type BufferArg = ArrayBufferView | null;

type JsOf<T extends NativeType> = T extends "pointer" ? Handle | null
  : T extends "buffer" ? BufferArg
  : T extends "void" ? void
  : number;

type Params<P extends readonly NativeType[]> = { [I in keyof P]: P[I] extends NativeType ? JsOf<P[I]> : never };

/** The callable functions of the table, typed from it. */
export type NativeFunctions = {
  [K in keyof Symbols]: (...args: Params<Symbols[K]["parameters"]>) => JsOf<Symbols[K]["result"]>;
};
