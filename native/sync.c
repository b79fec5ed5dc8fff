/* turbomdbx: durable commits off the JavaScript thread (src/durable.ts, docs/server.md).
 *
 * A group commit (src/concurrent/pipeline.ts) commits its MDBX write
 * transaction with MDBX_TXN_NOSYNC: the pages are written to the file (the OS
 * page cache) and the commit is visible to every process, but nothing waits
 * for the disk. It then asks this thread for a sync and gets a ticket; the
 * thread calls mdbx_env_sync_ex(env, force, blocking), which flushes the data
 * file and then, under libmdbx's writer lock, writes and flushes a steady meta
 * page for the newest commit. Promises settle only once their ticket is done.
 *
 * Why a ticket is durable when `done` reaches it: ticket t is handed out after
 * its commit returned. The thread reads `requested` (>= t) before it starts a
 * sync; env_sync() then takes the writer lock before it writes the steady meta,
 * so the meta it makes steady is that of a commit no older than t's. Requests
 * that arrive during a sync are covered by the next one, which serves them all
 * at once (group sync).
 *
 * libmdbx's thread rules: mdbx_env_sync_ex() may be called from any thread
 * of the process; from a thread that does not own the write transaction it
 * first flushes without the lock, then takes the writer lock (waiting for a
 * write transaction of JavaScript to end) for the meta page. JavaScript may
 * begin and commit the next batch meanwhile; a begin that meets the lock held
 * by this thread waits (JavaScript begins with MDBX_TXN_TRY while a sync is in
 * flight, so that it does not wait on the event loop).
 *
 * JavaScript learns of completion by calling tm_syncer_state() (Bun: polled on
 * a timer) or tm_syncer_wait() (Deno: a nonblocking FFI call, run on one of
 * Deno's blocking threads, which resolves a promise). tm_syncer_close() wakes
 * every waiter, lets the last sync finish and joins the thread; it must come
 * before the environment is closed.
 */
#include "mdbx.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TM_API __dll_export

static inline int s_rc(int rc) { return rc > 0 ? -rc : rc; }

#if defined(_WIN32) || defined(_WIN64)

/* Not on Windows yet: the pipeline syncs on the JavaScript thread there. */
TM_API void *tm_syncer_open(MDBX_env *env, int32_t *rc) {
  (void)env;
  *rc = s_rc(MDBX_ENOSYS);
  return NULL;
}
TM_API uint32_t tm_syncer_request(void *s, MDBX_env *env) { return (void)s, (void)env, 0; }
TM_API uint32_t tm_syncer_state(void *s, int32_t *out) { return (void)s, (void)out, 0; }
TM_API int tm_syncer_wait(void *s, uint32_t ticket) { return (void)s, (void)ticket, s_rc(MDBX_ENOSYS); }
TM_API void tm_syncer_close(void *s, int32_t *out) { (void)s, (void)out; }

#else

#include <pthread.h>

typedef struct tm_syncer {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t work; /* the thread waits here for a request */
  pthread_cond_t done_cv; /* tm_syncer_wait() waits here */
  MDBX_env *env; /* the environment of the newest request */
  uint32_t requested; /* tickets handed out */
  uint32_t done; /* tickets served: their commits are durable (or failed with `rc`) */
  int32_t rc; /* result of the last sync (0 or a negative code) */
  uint32_t failed_upto; /* the last ticket a failed sync served */
  int32_t failed_rc;
  int stop;
  int busy;
  int waiters; /* threads inside tm_syncer_wait() */
} tm_syncer;

static void *syncer_main(void *arg) {
  tm_syncer *s = arg;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (!s->stop && s->requested == s->done)
      pthread_cond_wait(&s->work, &s->mu);
    if (s->requested == s->done && s->stop)
      break;
    const uint32_t target = s->requested;
    MDBX_env *env = s->env;
    s->busy = 1;
    pthread_mutex_unlock(&s->mu);
    int rc = mdbx_env_sync_ex(env, true, false);
    if (rc == MDBX_RESULT_TRUE)
      rc = MDBX_SUCCESS; /* nothing left to sync: already durable */
    pthread_mutex_lock(&s->mu);
    s->busy = 0;
    s->rc = s_rc(rc);
    if (rc != MDBX_SUCCESS)
      s->failed_upto = target, s->failed_rc = s_rc(rc);
    s->done = target;
    pthread_cond_broadcast(&s->done_cv);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* Starts the sync thread of an environment. */
TM_API void *tm_syncer_open(MDBX_env *env, int32_t *rc) {
  tm_syncer *s = calloc(1, sizeof(tm_syncer));
  if (!s) {
    *rc = s_rc(MDBX_ENOMEM);
    return NULL;
  }
  s->env = env;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->work, NULL);
  pthread_cond_init(&s->done_cv, NULL);
  int err = pthread_create(&s->thread, NULL, syncer_main, s);
  if (err) {
    pthread_cond_destroy(&s->done_cv);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->mu);
    free(s);
    *rc = s_rc(err);
    return NULL;
  }
  *rc = 0;
  return s;
}

/* Asks for a sync of everything committed so far in `env`; returns the ticket to wait for. */
TM_API uint32_t tm_syncer_request(tm_syncer *s, MDBX_env *env) {
  pthread_mutex_lock(&s->mu);
  s->env = env;
  const uint32_t t = ++s->requested;
  pthread_cond_signal(&s->work);
  pthread_mutex_unlock(&s->mu);
  return t;
}

/* The last ticket served; out[0] = 0, or the error of the last failed sync
 * if it served a ticket after out[1] = the last ticket a failure served. */
TM_API uint32_t tm_syncer_state(tm_syncer *s, int32_t *out) {
  pthread_mutex_lock(&s->mu);
  const uint32_t d = s->done;
  out[0] = s->failed_rc;
  out[1] = (int32_t)s->failed_upto;
  pthread_mutex_unlock(&s->mu);
  return d;
}

/* Blocks until `ticket` is served (or the syncer closes); returns 0 or the
 * failed sync's code. For Deno's nonblocking FFI: runs on a thread of Deno's. */
TM_API int tm_syncer_wait(tm_syncer *s, uint32_t ticket) {
  pthread_mutex_lock(&s->mu);
  s->waiters++;
  while ((int32_t)(s->done - ticket) < 0 && !s->stop)
    pthread_cond_wait(&s->done_cv, &s->mu);
  int rc = 0;
  if ((int32_t)(s->done - ticket) < 0)
    rc = s_rc(MDBX_EBADSIGN); /* closed before it was served */
  else if (s->failed_upto && (int32_t)(s->failed_upto - ticket) >= 0)
    rc = s->failed_rc;
  s->waiters--;
  pthread_cond_broadcast(&s->done_cv);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

/* Serves what was requested, stops the thread and frees the syncer; out as
 * tm_syncer_state()'s, plus out[2] = the last ticket served. */
TM_API void tm_syncer_close(tm_syncer *s, int32_t *out) {
  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  s->stop = 1;
  pthread_cond_broadcast(&s->work);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thread, NULL);
  pthread_mutex_lock(&s->mu);
  pthread_cond_broadcast(&s->done_cv);
  while (s->waiters > 0) /* every ticket is served now: the waiters leave */
    pthread_cond_wait(&s->done_cv, &s->mu);
  out[0] = s->failed_rc;
  out[1] = (int32_t)s->failed_upto;
  out[2] = (int32_t)s->done;
  pthread_mutex_unlock(&s->mu);
  pthread_cond_destroy(&s->done_cv);
  pthread_cond_destroy(&s->work);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

#endif
