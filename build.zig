//! turbomdbx native build.
//!
//!   zig build                      libturbomdbx + stock mdbx_chk + bench harness into zig-out/
//!   zig build -Dtarget=aarch64-linux-gnu --prefix zig-out/cross/aarch64-linux
//!   zig build test                 the C-level tests under native/test/
//!
//! The libmdbx amalgamation is not in the repository: the `libmdbx` step runs
//! `native/libmdbx.py patch`, which fetches the pinned release with pip,
//! verifies its SHA-256 sums and applies native/patches/ into .deps/.
const std = @import("std");

const mdbx_version = "0.14.3";
const stock_dir = ".deps/libmdbx-" ++ mdbx_version ++ "/stock";
const patched_dir = ".deps/libmdbx-" ++ mdbx_version ++ "/patched";

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
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

    // The patched library that turbomdbx loads.
    const lib_mod = b.createModule(.{ .target = target, .optimize = optimize, .link_libc = true });
    lib_mod.addIncludePath(b.path(patched_dir));
    lib_mod.addCSourceFile(.{ .file = b.path(patched_dir ++ "/mdbx.c"), .flags = flags });
    lib_mod.addCSourceFile(.{ .file = b.path("native/turbomdbx.c"), .flags = flags });
    linkSystem(lib_mod, os_tag);
    const lib = b.addLibrary(.{ .linkage = .dynamic, .name = "turbomdbx", .root_module = lib_mod });
    lib.step.dependOn(&prepare.step);
    b.installArtifact(lib);

    // Stock mdbx_chk from the unpatched sources: the format-compatibility referee.
    const chk_mod = b.createModule(.{ .target = target, .optimize = .ReleaseSafe, .link_libc = true });
    chk_mod.addIncludePath(b.path(stock_dir));
    chk_mod.addCSourceFile(.{ .file = b.path(stock_dir ++ "/mdbx.c"), .flags = flags });
    chk_mod.addCSourceFile(.{ .file = b.path(stock_dir ++ "/mdbx_chk.c"), .flags = flags });
    linkSystem(chk_mod, os_tag);
    const chk = b.addExecutable(.{ .name = "mdbx_chk", .root_module = chk_mod });
    chk.step.dependOn(&prepare.step);
    b.installArtifact(chk);

    // Stock writer/verifier of a reference database (test/compat.test.ts):
    // the other direction of format compatibility.
    const sw_mod = b.createModule(.{ .target = target, .optimize = .ReleaseSafe, .link_libc = true });
    sw_mod.addIncludePath(b.path(stock_dir));
    sw_mod.addCSourceFile(.{ .file = b.path(stock_dir ++ "/mdbx.c"), .flags = flags });
    sw_mod.addCSourceFile(.{ .file = b.path("native/tools/stock_write.c"), .flags = flags });
    linkSystem(sw_mod, os_tag);
    const sw = b.addExecutable(.{ .name = "mdbx_stock_write", .root_module = sw_mod });
    sw.step.dependOn(&prepare.step);
    b.installArtifact(sw);

    // Native baseline for the benchmarks: C loops over the same env and keys,
    // called through FFI from the benchmark process.
    const bench_mod = b.createModule(.{ .target = target, .optimize = optimize, .link_libc = true });
    bench_mod.addIncludePath(b.path(patched_dir));
    bench_mod.addCSourceFile(.{ .file = b.path("native/bench.c"), .flags = flags });
    bench_mod.linkLibrary(lib);
    const bench = b.addLibrary(.{ .linkage = .dynamic, .name = "turbomdbx_bench", .root_module = bench_mod });
    b.installArtifact(bench);

    const test_step = b.step("test", "Run the C-level tests");
    var dir = std.fs.cwd().openDir(b.pathFromRoot("native/test"), .{ .iterate = true }) catch null;
    if (dir) |*d| {
        defer d.close();
        var it = d.iterate();
        while (it.next() catch null) |entry| {
            if (entry.kind != .file or !std.mem.endsWith(u8, entry.name, ".c")) continue;
            const t_mod = b.createModule(.{ .target = target, .optimize = .ReleaseSafe, .link_libc = true });
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
    return b.allocator.dupe([]const u8, &.{
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
}

fn linkSystem(m: *std.Build.Module, os_tag: std.Target.Os.Tag) void {
    if (os_tag == .windows) {
        m.linkSystemLibrary("ntdll", .{});
        m.linkSystemLibrary("advapi32", .{});
        m.linkSystemLibrary("kernel32", .{});
        m.linkSystemLibrary("user32", .{});
    }
}
