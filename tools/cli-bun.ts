/**
 * The entry of the compiled Bun binary (`bun tools/build.ts`): the CLI with
 * the shared library embedded in the executable.
 *
 * `with { type: "file" }` makes `bun build --compile` put the library inside
 * the binary and gives its path in the bundle's file system at run time (the
 * real path when run uncompiled). `prepareLibrary` loads it from there, or
 * from a temp copy when the OS loader cannot read the bundle's path.
 *
 * Bun only: Deno does not know this import attribute. The import names the
 * Linux file; on macOS use libturbomdbx.dylib, on Windows turbomdbx.dll.
 *
 * @module
 */
// @ts-ignore: a file import (Bun), typed as its path
import libraryPath from "../zig-out/lib/libturbomdbx.so" with { type: "file" };
import { run } from "./turbomdbx.ts";

process.exit(await run(process.argv.slice(2), { libraryPath: libraryPath as unknown as string }));
