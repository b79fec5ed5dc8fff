//! turbomdbx native build.
//!
//!   zig build                      libturbomdbx + stock mdbx_chk + bench harness into zig-out/
//!   zig build -Dtarget=aarch64-linux-gnu --prefix zig-out/cross/aarch64-linux-gnu
//!   zig build test                 the C-level tests under native/test/
//!
//! Cross targets that must always compile (./run cross): aarch64-linux-gnu,
//! x86_64-macos, aarch64-macos, x86_64-windows-gnu. On Windows the DLLs are
//! installed into lib/ (not Zig's default bin/) so that the loader finds
//! zig-out/lib/turbomdbx.dll on every platform.
//!
//! The libmdbx amalgamation is not in the repository: the `libmdbx` step runs
//! `native/libmdbx.py patch`, which fetches the pinned release with pip,
//! verifies its SHA-256 sums and applies native/patches/ into .deps/.
const std = @import("std");

const mdbx_version = "0.14.3";
const stock_dir = ".deps/libmdbx-" ++ mdbx_version ++ "/stock";
const patched_dir = ".deps/libmdbx-" ++ mdbx_version ++ "/patched";

pub fn build(b: *std.Build) void {
    const target = withEvex512(b, b.standardTargetOptions(.{}));
    // Speed is the product: default to ReleaseFast rather than Debug.
    const optimize = b.option(std.builtin.OptimizeMode, "optimize", "Optimization mode (default ReleaseFast)") orelse .ReleaseFast;
    const python = b.option([]const u8, "python", "Python 3 used to fetch and patch libmdbx (default python3)") orelse "python3";

    const prepare = b.addSystemCommand(&.{ python, "native/libmdbx.py", "patch" });
    prepare.setCwd(b.path("."));
    prepare.has_side_effects = true;
    const prepare_step = b.step("libmdbx", "Fetch, verify and patch the libmdbx sources");
    prepare_step.dependOn(&prepare.step);

    const os_tag = target.result.os.tag;
    const flags = mdbxFlags(b, target.result);
    const compat = compatIncludes(b, target.result);

    // The patched library that turbomdbx loads.
    const lib_mod = b.createModule(.{ .target = target, .optimize = optimize, .link_libc = true });
    for (compat) |dir| lib_mod.addIncludePath(dir);
    lib_mod.addIncludePath(b.path(patched_dir));
    lib_mod.addCSourceFile(.{ .file = b.path(patched_dir ++ "/mdbx.c"), .flags = flags });
    lib_mod.addCSourceFile(.{ .file = b.path("native/turbomdbx.c"), .flags = flags });
    lib_mod.addCSourceFile(.{ .file = b.path("native/rebuild.c"), .flags = flags });
    lib_mod.addCSourceFile(.{ .file = b.path("native/cache.c"), .flags = flags });
    lib_mod.addCSourceFile(.{ .file = b.path("native/cache_shm.c"), .flags = flags });
    lib_mod.addCSourceFile(.{ .file = b.path("native/integrity.c"), .flags = flags });
    lib_mod.addCSourceFile(.{ .file = b.path("native/log.c"), .flags = flags });
    lib_mod.addCSourceFile(.{ .file = b.path("native/registry.c"), .flags = flags });
    lib_mod.addCSourceFile(.{ .file = b.path("native/range.c"), .flags = flags });
    lib_mod.addCSourceFile(.{ .file = b.path("native/geometry.c"), .flags = flags });
    lib_mod.addCSourceFile(.{ .file = b.path("native/ostat.c"), .flags = flags });
    lib_mod.addCSourceFile(.{ .file = b.path("native/watch.c"), .flags = flags });
    lib_mod.addCSourceFile(.{ .file = b.path("native/sync.c"), .flags = flags });
    linkSystem(lib_mod, os_tag);
    const lib = b.addLibrary(.{ .linkage = .dynamic, .name = "turbomdbx", .root_module = lib_mod });
    lib.step.dependOn(&prepare.step);
    install(b, lib);

    // Stock mdbx_chk from the unpatched sources: the format-compatibility referee.
    const chk_mod = b.createModule(.{ .target = target, .optimize = .ReleaseSafe, .link_libc = true });
    for (compat) |dir| chk_mod.addIncludePath(dir);
    chk_mod.addIncludePath(b.path(stock_dir));
    chk_mod.addCSourceFile(.{ .file = b.path(stock_dir ++ "/mdbx.c"), .flags = flags });
    chk_mod.addCSourceFile(.{ .file = b.path(stock_dir ++ "/mdbx_chk.c"), .flags = flags });
    linkSystem(chk_mod, os_tag);
    const chk = b.addExecutable(.{ .name = "mdbx_chk", .root_module = chk_mod });
    chk.step.dependOn(&prepare.step);
    install(b, chk);

    // Stock writer/verifier of a reference database (test/compat.test.ts):
    // the other direction of format compatibility.
    const sw_mod = b.createModule(.{ .target = target, .optimize = .ReleaseSafe, .link_libc = true });
    for (compat) |dir| sw_mod.addIncludePath(dir);
    sw_mod.addIncludePath(b.path(stock_dir));
    sw_mod.addCSourceFile(.{ .file = b.path(stock_dir ++ "/mdbx.c"), .flags = flags });
    sw_mod.addCSourceFile(.{ .file = b.path("native/tools/stock_write.c"), .flags = flags });
    linkSystem(sw_mod, os_tag);
    const sw = b.addExecutable(.{ .name = "mdbx_stock_write", .root_module = sw_mod });
    sw.step.dependOn(&prepare.step);
    install(b, sw);

    // Native baseline for the benchmarks: C loops over the same env and keys,
    // called through FFI from the benchmark process.
    const bench_mod = b.createModule(.{ .target = target, .optimize = optimize, .link_libc = true });
    bench_mod.addIncludePath(b.path(patched_dir));
    bench_mod.addCSourceFile(.{ .file = b.path("native/bench.c"), .flags = flags });
    // Linked by file rather than with linkLibrary(), which would also record
    // the build cache folder as a (relative) run path in the installed file.
    bench_mod.addObjectFile(if (os_tag == .windows) lib.getEmittedImplib() else lib.getEmittedBin());
    // Installed next to libturbomdbx: find it there wherever lib/ is copied to.
    // (Windows looks in the DLL's own folder without being told.)
    switch (os_tag) {
        .linux, .freebsd, .netbsd, .openbsd, .dragonfly, .solaris, .illumos => bench_mod.addRPathSpecial("$ORIGIN"),
        .macos, .ios => bench_mod.addRPathSpecial("@loader_path"),
        else => {},
    }
    const bench = b.addLibrary(.{ .linkage = .dynamic, .name = "turbomdbx_bench", .root_module = bench_mod });
    install(b, bench);

    const test_step = b.step("test", "Run the C-level tests");
    var dir = std.fs.cwd().openDir(b.pathFromRoot("native/test"), .{ .iterate = true }) catch null;
    if (dir) |*d| {
        defer d.close();
        var it = d.iterate();
        while (it.next() catch null) |entry| {
            if (entry.kind != .file or !std.mem.endsWith(u8, entry.name, ".c")) continue;
            const t_mod = b.createModule(.{ .target = target, .optimize = .ReleaseSafe, .link_libc = true });
            for (compat) |inc| t_mod.addIncludePath(inc);
            t_mod.addIncludePath(b.path(patched_dir));
            t_mod.addIncludePath(b.path("native"));
            t_mod.addCSourceFile(.{ .file = b.path(b.fmt("native/test/{s}", .{entry.name})), .flags = flags });
            t_mod.linkLibrary(lib);
            const exe = b.addExecutable(.{ .name = b.dupe(entry.name[0 .. entry.name.len - 2]), .root_module = t_mod });
            const run = b.addRunArtifact(exe);
            run.setCwd(b.path("."));
            test_step.dependOn(&run.step);
        }
    }
}

fn mdbxFlags(b: *std.Build, t: std.Target) []const []const u8 {
    const triple = t.linuxTriple(b.allocator) catch "unknown";
    var list: std.ArrayList([]const u8) = .empty;
    if (t.cpu.arch.isX86()) {
        // libmdbx picks its SSE2/AVX2/AVX-512 page-list scan at run time with
        // __builtin_cpu_supports(), which needs __cpu_model and
        // __cpu_indicator_init from libgcc or LLVM's compiler-rt; Zig's
        // compiler_rt has neither, so a baseline x86 build (cross builds, or a
        // host without AVX-512) fails to link. Without dispatch libmdbx uses the
        // best variant the target CPU allows at compile time (AVX-512 for a
        // native build on such a CPU, SSE2 for baseline), as it does on macOS.
        list.append(b.allocator, "-DMDBX_HAVE_BUILTIN_CPU_SUPPORTS=0") catch @panic("OOM");
    }
    list.appendSlice(b.allocator, &.{
        "-std=gnu11",
        "-pthread",
        "-fvisibility=hidden",
        // libmdbx relies on well-defined-in-practice pointer arithmetic; Zig's
        // default C UBSan would trap on it.
        "-fno-sanitize=undefined",
        "-DLIBMDBX_EXPORTS=1",
        "-DNDEBUG=1",
        "-DMDBX_BUILD_FLAGS=\"turbomdbx zig -std=gnu11 -fvisibility=hidden\"",
        "-DMDBX_BUILD_COMPILER=\"zig cc\"",
        b.fmt("-DMDBX_BUILD_TARGET=\"{s}\"", .{triple}),
        "-DMDBX_BUILD_TIMESTAMP=\"reproducible\"",
    }) catch @panic("OOM");
    return list.items;
}

/// mdbx.c compiles an AVX-512BW page-number scan under
/// __attribute__((target("...,avx512bw"))) and picks it at run time. Zig passes
/// every CPU feature explicitly, "-evex512" included, unless the CPU has
/// AVX-512, so on baseline x86_64 (cross builds, CI runners, AMD Zen 2/3) clang
/// refuses the 512-bit intrinsics, and a -mevex512 C flag is overridden by Zig's
/// own feature list. Adding the feature to the target itself works; it changes
/// nothing else: without avx512f no ZMM code is emitted outside those
/// attributed functions, which only run where the CPU has AVX-512BW.
fn withEvex512(b: *std.Build, target: std.Build.ResolvedTarget) std.Build.ResolvedTarget {
    const t = target.result;
    if (!t.cpu.arch.isX86() or std.Target.x86.featureSetHas(t.cpu.features, .evex512)) return target;
    var q = target.query;
    q.cpu_features_add.addFeature(@intFromEnum(std.Target.x86.Feature.evex512));
    return b.resolveTargetQuery(q);
}

/// Include folders that go before libc's. Zig's generic glibc headers carry
/// sys/cachectl.h for every Linux target, but it includes <asm/cachectl.h>,
/// which exists only for MIPS-like targets; libmdbx includes the former
/// whenever __has_include finds it. Real aarch64/x86_64 glibc installs have no
/// sys/cachectl.h at all, so an empty stand-in gives the same result.
fn compatIncludes(b: *std.Build, t: std.Target) []const std.Build.LazyPath {
    if (t.os.tag != .linux or t.cpu.arch.isMIPS()) return &.{};
    switch (t.cpu.arch) {
        .csky, .arc, .m68k => return &.{},
        else => return b.allocator.dupe(std.Build.LazyPath, &.{b.path("native/compat/no-cachectl")}) catch @panic("OOM"),
    }
}

/// Installs an artifact; on Windows DLLs (and their import libraries) go to lib/
/// like the .so and .dylib elsewhere, so one path works for the loader.
fn install(b: *std.Build, artifact: *std.Build.Step.Compile) void {
    const windows_dll = artifact.rootModuleTarget().os.tag == .windows and artifact.isDynamicLibrary();
    const ia = b.addInstallArtifact(artifact, if (windows_dll) .{ .dest_dir = .{ .override = .lib } } else .{});
    b.getInstallStep().dependOn(&ia.step);
}

fn linkSystem(m: *std.Build.Module, os_tag: std.Target.Os.Tag) void {
    if (os_tag == .windows) {
        m.linkSystemLibrary("ntdll", .{});
        m.linkSystemLibrary("advapi32", .{});
        m.linkSystemLibrary("kernel32", .{});
        m.linkSystemLibrary("user32", .{});
    }
}
