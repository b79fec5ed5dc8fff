/**
 * What this copy of turbomdbx was distributed as, and the SHA-256 of every
 * prebuilt library it may load.
 *
 * This file, as committed, is the source distribution: a checkout loads the
 * library named to it or its own build, never a package's. `tools/release.ts`
 * writes the copies inside the npm package (`distribution: "npm"`) and the JSR
 * package (`"jsr"`), with the version from package.json and the SHA-256 of each
 * platform's library as it put them into the platform packages.
 *
 * @module
 */

/** How a distribution finds and vouches for the prebuilt libraries. */
export interface Prebuilt {
  /** "source": a checkout; "npm": the turbomdbx npm package; "jsr": the JSR package. */
  readonly distribution: "source" | "npm" | "jsr";
  /** The turbomdbx version of the package (package.json's), undefined in a checkout. */
  readonly version: string | undefined;
  /** Platform target name (see `PLATFORM_TARGETS`) to the lower-case hex SHA-256 of its library file. */
  readonly sha256: Readonly<Record<string, string>>;
  /**
   * JSR only: imports the npm platform package of a target through an `npm:`
   * specifier (one literal per target, so that Deno's module graph and
   * `deno compile` see them) and returns its `path` export, a file URL.
   */
  readonly importPackage?: (target: string) => Promise<string | undefined>;
}

/** This copy's distribution: the checkout. */
export const prebuilt: Prebuilt = { distribution: "source", version: undefined, sha256: {} };
