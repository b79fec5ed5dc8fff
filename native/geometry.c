/* turbomdbx: growing the map of an open environment (env.resize()).
 *
 * turbomdbx opens environments with MDBX_NOSTICKYTHREADS, under which libmdbx
 * never moves a map: a larger upper bound then needs the addresses right
 * after the map to be free, which they usually are not. When the TypeScript
 * side knows that no transaction of this process uses the environment, it
 * calls tm_env_resize(), which lets this one explicit resize move the map
 * (native/patches/0005-resize-movable-map.patch); libmdbx still keeps the map
 * in place if its reader table shows a reader of this process. The get()
 * cache notices a moved map by itself (native/cache.c, tc_remap).
 */
#include "mdbx.h"

#include <stdbool.h>
#include <stdint.h>

#define TM_API __dll_export

/* defined by native/patches/0005-resize-movable-map.patch in mdbx.c */
extern __thread bool tm_resize_may_move;

static inline int tm_rc(int rc) { return rc > 0 ? -rc : rc; }

/* mdbx_env_set_geometry() on an open environment; `movable` lets the map move (nothing of this process uses it). */
TM_API int tm_env_resize(MDBX_env *env, double lower, double now, double upper, double growth, double shrink,
                         int32_t movable) {
  tm_resize_may_move = movable != 0;
  const int rc = mdbx_env_set_geometry(env, (intptr_t)lower, (intptr_t)now, (intptr_t)upper, (intptr_t)growth,
                                       (intptr_t)shrink, -1);
  tm_resize_may_move = false;
  return tm_rc(rc);
}
