/**
 * A JSR registry and an npm registry on the loopback address, serving a
 * release laid out by tools/release.ts (test/package.test.ts). Deno is pointed
 * at them with JSR_URL and NPM_CONFIG_REGISTRY and then resolves
 * `jsr:@turbomdbx/turbomdbx` exactly as it resolves a package on JSR: the
 * package's meta.json, the version's manifest (whose per-file SHA-256 Deno
 * checks), the files; and the npm platform package its code imports, through
 * the packument and the tarball (whose integrity Deno checks).
 *
 * What differs from the real registries: the origins (http on 127.0.0.1), the
 * JSR module graph in the version metadata (left out: Deno then reads the
 * files' imports itself, as it does for a package published before JSR
 * recorded graphs), and npm packuments reduced to the fields Deno reads.
 *
 * @module
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";

/** A running registry pair; `close()` stops it. */
export interface Registry {
  /** JSR_URL for Deno, ending in "/". */
  jsrUrl: string;
  /** NPM_CONFIG_REGISTRY for Deno, ending in "/". */
  npmUrl: string;
  /** Every path requested, in order (what Deno fetched). */
  requests: string[];
  close(): Promise<void>;
}

function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, base));
    else out.push("/" + path.relative(base, p).split(path.sep).join("/"));
  }
  return out;
}

/**
 * Serves `dist/jsr` as `@scope/name@version` of a JSR registry and the npm
 * packages of `dist/npm` (each with its tarball in `dist/tarballs`) as an npm
 * registry. Packages of the release that have no tarball are absent (404).
 */
export async function serveRegistry(dist: string): Promise<Registry> {
  const jsrDir = path.join(dist, "jsr");
  const deno = JSON.parse(fs.readFileSync(path.join(jsrDir, "deno.json"), "utf8"));
  const [scope, name] = (deno.name as string).slice(1).split("/");
  const version: string = deno.version;
  const files = walk(jsrDir);
  const manifest: Record<string, { size: number; checksum: string }> = {};
  for (const f of files) {
    const bytes = fs.readFileSync(path.join(jsrDir, f));
    manifest[f] = { size: bytes.length, checksum: "sha256-" + createHash("sha256").update(bytes).digest("hex") };
  }
  // npm: packuments of the packages that were packed
  const tarballs = path.join(dist, "tarballs");
  const packages = new Map<string, { manifest: Record<string, unknown>; tarball: string }>();
  for (const dir of fs.readdirSync(path.join(dist, "npm"))) {
    const pkg = JSON.parse(fs.readFileSync(path.join(dist, "npm", dir, "package.json"), "utf8"));
    const tgz = path.join(tarballs, `${pkg.name.replace(/^@/, "").replace("/", "-")}-${pkg.version}.tgz`);
    if (fs.existsSync(tgz)) packages.set(pkg.name, { manifest: pkg, tarball: tgz });
  }
  const requests: string[] = [];
  let origin = "";
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent((req.url ?? "/").split("?")[0]);
    requests.push(url);
    const send = (status: number, body: string | Uint8Array, type = "application/json") => {
      res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
      res.end(body);
    };
    const jsrBase = `/jsr/@${scope}/${name}/`;
    if (url === `${jsrBase}meta.json`) {
      return send(200, JSON.stringify({ scope, name, latest: version, versions: { [version]: {} } }));
    }
    if (url === `${jsrBase}${version}_meta.json`) {
      return send(200, JSON.stringify({ manifest, exports: deno.exports }));
    }
    if (url.startsWith(`${jsrBase}${version}/`)) {
      const f = url.slice(`${jsrBase}${version}`.length);
      if (manifest[f]) return send(200, fs.readFileSync(path.join(jsrDir, f)), "text/plain");
    }
    if (url.startsWith("/npm/")) {
      const rest = url.slice("/npm/".length);
      if (rest.startsWith("-/")) { // tarballs: /npm/-/<file>.tgz
        const file = path.join(tarballs, path.basename(rest));
        if (fs.existsSync(file)) return send(200, fs.readFileSync(file), "application/octet-stream");
      }
      const p = packages.get(rest);
      if (p) {
        const bytes = fs.readFileSync(p.tarball);
        const v = p.manifest.version as string;
        return send(
          200,
          JSON.stringify({
            name: rest,
            "dist-tags": { latest: v },
            versions: {
              [v]: {
                ...p.manifest,
                dist: {
                  tarball: `${origin}/npm/-/${path.basename(p.tarball)}`,
                  shasum: createHash("sha1").update(bytes).digest("hex"),
                  integrity: "sha512-" + createHash("sha512").update(bytes).digest("base64"),
                },
              },
            },
          }),
        );
      }
    }
    send(404, JSON.stringify({ error: "not found" }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("the registry has no TCP address");
  origin = `http://127.0.0.1:${address.port}`;
  return {
    jsrUrl: `${origin}/jsr/`,
    npmUrl: `${origin}/npm/`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
