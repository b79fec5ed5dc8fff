/* turbomdbx: an intentionally empty stand-in for <sys/cachectl.h>.
 *
 * Zig's bundled generic glibc headers ship sys/cachectl.h for every Linux
 * target, but that header includes <asm/cachectl.h>, which exists only for
 * MIPS, csky, ARC and m68k. libmdbx includes <sys/cachectl.h> whenever
 * __has_include finds it and needs it (cacheflush, DCACHE) only on MIPS. A real
 * aarch64 or x86_64 glibc has no such header, so an empty one here gives the
 * same result. build.zig adds this folder only for the targets that need it. */
#ifndef TURBOMDBX_COMPAT_SYS_CACHECTL_H
#define TURBOMDBX_COMPAT_SYS_CACHECTL_H
#endif
