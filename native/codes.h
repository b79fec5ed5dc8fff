/*
 * turbomdbx: the answers of our native calls that are not libmdbx error codes,
 * in one list so that no two share a number (src/ mirrors each where it is
 * handled: src/txn.ts, src/env.ts, src/cache.ts).
 */
#pragma once

#define TM_SWITCHED (-29999)    /* tm_txn_begin: the database moved to a new file; follow and retry (rebuild.c) */
#define TM_OPEN_SHARED (-29998) /* tm_env_open: the file is open in this process: share it (registry.c) */
#define TM_SAME_THREAD (-29997) /* tm_env_share: this thread already holds an Env of this file */
#define TM_DROP_SHARED (-29996) /* tm_drop: not deleted while other Workers' Envs share the env */
#define TM_CACHE_MODE (-29995)  /* tm_cache_open: the environment's cache is of the other mode */
#define TM_WRITE_WAIT (-29994)  /* tm_txn_begin: the writer lock of a shared env is still taken; call again */
