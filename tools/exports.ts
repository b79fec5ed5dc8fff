/**
 * Reads the exported symbols of a shared library from its own tables, for
 * any of the release's formats on any host: ELF (.dynsym), Mach-O (LC_SYMTAB)
 * and PE (the export directory). The release and the CI cross step use it to
 * check that every function src/ffi/symbols.ts calls is exported by each
 * platform's library, including those this machine cannot load.
 *
 *   bun tools/exports.ts <library>...     (or deno run -A tools/exports.ts)
 *
 * prints each library's format, machine and how many of the FFI table's
 * symbols it exports; exit 1 if one is missing.
 *
 * @module
 */
import * as fs from "node:fs";
import process from "node:process";
import { symbols } from "../src/ffi/symbols.ts";

/** What a library file says about itself. */
export interface ExportTable {
  format: "elf" | "mach-o" | "pe";
  /** "x86_64" | "aarch64" | "unknown(0x…)" */
  machine: string;
  /** Exported (defined, global, visible) symbol names, without Mach-O's leading underscore. */
  names: Set<string>;
}

function cstr(b: Uint8Array, at: number): string {
  let end = at;
  while (end < b.length && b[end] !== 0) end++;
  return new TextDecoder().decode(b.subarray(at, end));
}

function elf(b: Uint8Array, v: DataView): ExportTable {
  if (b[4] !== 2 || b[5] !== 1) throw new Error("only little-endian ELF64 is read");
  const m = v.getUint16(0x12, true);
  const machine = m === 0x3e ? "x86_64" : m === 0xb7 ? "aarch64" : `unknown(0x${m.toString(16)})`;
  const shoff = Number(v.getBigUint64(0x28, true));
  const shentsize = v.getUint16(0x3a, true);
  const shnum = v.getUint16(0x3c, true);
  const names = new Set<string>();
  for (let i = 0; i < shnum; i++) {
    const sh = shoff + i * shentsize;
    if (v.getUint32(sh + 4, true) !== 11) continue; // SHT_DYNSYM
    const off = Number(v.getBigUint64(sh + 24, true));
    const size = Number(v.getBigUint64(sh + 32, true));
    const strSh = shoff + v.getUint32(sh + 40, true) * shentsize;
    const strOff = Number(v.getBigUint64(strSh + 24, true));
    for (let s = off; s + 24 <= off + size; s += 24) {
      const info = b[s + 4], other = b[s + 5], shndx = v.getUint16(s + 6, true);
      const bind = info >> 4, vis = other & 3;
      if (shndx !== 0 && (bind === 1 || bind === 2) && (vis === 0 || vis === 3)) {
        names.add(cstr(b, strOff + v.getUint32(s, true)));
      }
    }
  }
  return { format: "elf", machine, names };
}

function macho(b: Uint8Array, v: DataView): ExportTable {
  const cpu = v.getUint32(4, true);
  const machine = cpu === 0x01000007 ? "x86_64" : cpu === 0x0100000c ? "aarch64" : `unknown(0x${cpu.toString(16)})`;
  const ncmds = v.getUint32(16, true);
  const names = new Set<string>();
  let lc = 32;
  for (let i = 0; i < ncmds; i++) {
    const cmd = v.getUint32(lc, true), size = v.getUint32(lc + 4, true);
    if (cmd === 0x2) { // LC_SYMTAB
      const symoff = v.getUint32(lc + 8, true), nsyms = v.getUint32(lc + 12, true);
      const stroff = v.getUint32(lc + 16, true);
      for (let k = 0; k < nsyms; k++) {
        const s = symoff + k * 16;
        const type = b[s + 4];
        // defined in a section (N_SECT), external (N_EXT), not private external, not a debug entry
        if ((type & 0xe0) === 0 && (type & 0x0e) === 0x0e && (type & 0x01) && !(type & 0x10)) {
          const name = cstr(b, stroff + v.getUint32(s, true));
          names.add(name.startsWith("_") ? name.slice(1) : name);
        }
      }
    }
    lc += size;
  }
  return { format: "mach-o", machine, names };
}

function pe(b: Uint8Array, v: DataView): ExportTable {
  const pe = v.getUint32(0x3c, true);
  if (v.getUint32(pe, true) !== 0x4550) throw new Error("no PE signature");
  const coff = pe + 4;
  const m = v.getUint16(coff, true);
  const machine = m === 0x8664 ? "x86_64" : m === 0xaa64 ? "aarch64" : `unknown(0x${m.toString(16)})`;
  const nsect = v.getUint16(coff + 2, true);
  const optSize = v.getUint16(coff + 16, true);
  const opt = coff + 20;
  if (v.getUint16(opt, true) !== 0x20b) throw new Error("only PE32+ is read");
  const sections = opt + optSize;
  const rva = (r: number): number => {
    for (let i = 0; i < nsect; i++) {
      const s = sections + i * 40;
      const va = v.getUint32(s + 12, true), vsize = Math.max(v.getUint32(s + 8, true), v.getUint32(s + 16, true));
      if (r >= va && r < va + vsize) return r - va + v.getUint32(s + 20, true);
    }
    throw new Error(`RVA 0x${r.toString(16)} is in no section`);
  };
  const names = new Set<string>();
  const exportRva = v.getUint32(opt + 112, true);
  if (exportRva !== 0) {
    const dir = rva(exportRva);
    const count = v.getUint32(dir + 24, true), namesAt = rva(v.getUint32(dir + 32, true));
    for (let i = 0; i < count; i++) names.add(cstr(b, rva(v.getUint32(namesAt + i * 4, true))));
  }
  return { format: "pe", machine, names };
}

/** Reads the export table of a library file (ELF64, Mach-O 64 or PE32+, little-endian). */
export function readExports(file: string): ExportTable {
  const b = new Uint8Array(fs.readFileSync(file));
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < 64) throw new Error(`${file}: too short to be a library`);
  if (b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46) return elf(b, v);
  if (v.getUint32(0, true) === 0xfeedfacf) return macho(b, v);
  if (b[0] === 0x4d && b[1] === 0x5a) return pe(b, v);
  throw new Error(`${file}: not an ELF, Mach-O or PE file`);
}

/** The problems with a library: symbols of `wanted` it does not export, a wrong machine. Empty if none. */
export function checkExports(file: string, wanted: readonly string[], machine?: string): string[] {
  let t: ExportTable;
  try {
    t = readExports(file);
  } catch (e) {
    return [(e as Error).message];
  }
  const problems: string[] = [];
  if (machine && t.machine !== machine) problems.push(`built for ${t.machine}, expected ${machine}`);
  const missing = wanted.filter((n) => !t.names.has(n));
  if (missing.length) problems.push(`does not export ${missing.join(", ")}`);
  return problems;
}

function main(files: string[]): number {
  if (files.length === 0) {
    console.error("usage: tools/exports.ts <library>...");
    return 2;
  }
  const wanted = Object.keys(symbols);
  let bad = 0;
  for (const f of files) {
    try {
      const t = readExports(f);
      const missing = wanted.filter((n) => !t.names.has(n));
      console.log(
        `${f}: ${t.format} ${t.machine}, ${t.names.size} exports, ${wanted.length - missing.length}/${wanted.length} ` +
          `of src/ffi/symbols.ts${missing.length ? `; MISSING ${missing.join(", ")}` : ""}`,
      );
      if (missing.length) bad++;
    } catch (e) {
      console.log(`${f}: ${(e as Error).message}`);
      bad++;
    }
  }
  return bad ? 1 : 0;
}

if (import.meta.main) process.exit(main(process.argv.slice(2)));
