/* turbomdbx: libmdbx's log messages, kept for JavaScript instead of printed.
 *
 * Without a logger libmdbx writes its messages to stderr (debug_log_va): a
 * line on MAP_FULL (gc_alloc_ex), on a lock held by another process
 * (lck_seize), on a damaged meta page (meta_validate) or a damaged page
 * (badpage). A library must not write to its application's stderr on its
 * own, so the loader installs tm_log_message() as libmdbx's logger once
 * (tm_log_install(), from tm_version()), and nothing of libmdbx reaches
 * stderr again.
 *
 * Messages go into a ring of TM_LOG_RING entries (level, function, line,
 * message), under a mutex: libmdbx calls its logger from whichever thread
 * logs (a transaction's, a live rebuild's, the thread that closes a replaced
 * file), while JavaScript drains the ring from its own. When the ring is
 * full the oldest entry is overwritten and counted as dropped. JavaScript
 * drains it at the points where an entry can matter (src/log.ts): after a
 * failure, at the end of an open, of a top-level transaction, of a check and
 * of a close. So that the end of a transaction costs no FFI call, the count
 * of messages written is a 32-bit word JavaScript maps once and compares
 * (tm_log_counter()).
 */
#include "mdbx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(_WIN32) || defined(_WIN64)
#include <windows.h>
static SRWLOCK tm_log_mutex = SRWLOCK_INIT;
static void tm_log_lock(void) { AcquireSRWLockExclusive(&tm_log_mutex); }
static void tm_log_unlock(void) { ReleaseSRWLockExclusive(&tm_log_mutex); }
#else
#include <pthread.h>
static pthread_mutex_t tm_log_mutex = PTHREAD_MUTEX_INITIALIZER;
static void tm_log_lock(void) { pthread_mutex_lock(&tm_log_mutex); }
static void tm_log_unlock(void) { pthread_mutex_unlock(&tm_log_mutex); }
#endif

#define TM_API __dll_export

enum { TM_LOG_RING = 64, TM_LOG_WHERE = 48, TM_LOG_MESSAGE = 464 };

typedef struct {
  int32_t level, line;
  char where[TM_LOG_WHERE];
  char message[TM_LOG_MESSAGE];
} tm_log_entry;

static struct {
  uint32_t head;    /* entries ever written */
  uint32_t tail;    /* entries ever drained or dropped */
  uint32_t dropped; /* overwritten before a drain, since the last drain */
  tm_log_entry ring[TM_LOG_RING];
} tm_log;

/* The count JavaScript compares with what it has drained: a plain aligned word, stored after the entry. */
static uint32_t tm_log_written;

static void tm_log_message(MDBX_log_level_t level, const char *function, int line, const char *fmt, va_list args) {
  tm_log_lock();
  if (tm_log.head - tm_log.tail == TM_LOG_RING) {
    tm_log.tail++;
    tm_log.dropped++;
  }
  tm_log_entry *e = &tm_log.ring[tm_log.head % TM_LOG_RING];
  e->level = (int32_t)level;
  e->line = line;
  snprintf(e->where, sizeof(e->where), "%s", function ? function : "");
  int n = fmt ? vsnprintf(e->message, sizeof(e->message), fmt, args) : 0;
  if (n < 0)
    n = 0;
  if (n >= (int)sizeof(e->message))
    n = (int)sizeof(e->message) - 1;
  /* libmdbx ends its messages with a newline */
  while (n > 0 && (e->message[n - 1] == '\n' || e->message[n - 1] == '\r' || e->message[n - 1] == ' '))
    n--;
  e->message[n] = '\0';
  tm_log.head++;
  __atomic_store_n(&tm_log_written, tm_log.head, __ATOMIC_RELEASE);
  tm_log_unlock();
}

/* Installs the logger (at libmdbx's level "warning"); called once by the loader through tm_version(). */
void tm_log_install(void) { mdbx_setup_debug(MDBX_LOG_WARN, MDBX_DBG_DONTCHANGE, tm_log_message); }

/* Sets libmdbx's (process-wide) log level, MDBX_LOG_FATAL (0) .. MDBX_LOG_DEBUG (5); returns the previous one.
 * A release build of libmdbx compiles out its messages above MDBX_LOG_NOTICE. */
TM_API int tm_log_level(int32_t level) {
  if (level < MDBX_LOG_FATAL || level > MDBX_LOG_DEBUG)
    return -EINVAL;
  const int prev = mdbx_setup_debug((MDBX_log_level_t)level, MDBX_DBG_DONTCHANGE, MDBX_LOGGER_DONTCHANGE);
  return prev < 0 ? prev : prev >> 16;
}

/* The address of the count of messages written (a u32), as a double. */
TM_API double tm_log_counter(void) { return (double)(uintptr_t)&tm_log_written; }

/* Moves the waiting entries to `out`: [u32 count][u32 dropped] then per entry [i32 level][i32 line]
 * [u16 where length][u16 message length][where][message] (UTF-8 as libmdbx wrote it, no NULs). Entries
 * that do not fit in `cap` stay for the next drain. Returns the bytes written. */
TM_API int tm_log_drain(uint8_t *out, uint32_t cap) {
  if (cap < 8)
    return -EINVAL;
  tm_log_lock();
  uint32_t used = 8, count = 0;
  while (tm_log.tail != tm_log.head) {
    const tm_log_entry *e = &tm_log.ring[tm_log.tail % TM_LOG_RING];
    const uint16_t wl = (uint16_t)strlen(e->where), ml = (uint16_t)strlen(e->message);
    const uint32_t need = 12u + wl + ml;
    if (used + need > cap)
      break;
    memcpy(out + used, &e->level, 4);
    memcpy(out + used + 4, &e->line, 4);
    memcpy(out + used + 8, &wl, 2);
    memcpy(out + used + 10, &ml, 2);
    memcpy(out + used + 12, e->where, wl);
    memcpy(out + used + 12 + wl, e->message, ml);
    used += need;
    count++;
    tm_log.tail++;
  }
  memcpy(out, &count, 4);
  memcpy(out + 4, &tm_log.dropped, 4);
  tm_log.dropped = 0;
  tm_log_unlock();
  return (int)used;
}
