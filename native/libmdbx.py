#!/usr/bin/env python3
"""Fetch, verify and patch the libmdbx amalgamation that turbomdbx builds on.

libmdbx is never committed. It comes from the source distribution of the PyPI
package clibmdbx (which embeds the official v0.14.3 amalgamation under
vendor/libmdbx/), fetched with pip by package name, and every file is checked
against the SHA-256 sums pinned below before anything is built from it.

  python3 native/libmdbx.py fetch   # .deps/libmdbx-0.14.3/stock   (verified)
  python3 native/libmdbx.py patch   # .deps/libmdbx-0.14.3/patched (stock + native/patches/*.patch)
  python3 native/libmdbx.py apply DIR PATCH...   # the patch step on any tree (used by the tests)

Exit codes: 0 done, 2 a check failed (message on stderr says what to run).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION = "0.14.3"
PACKAGE = "clibmdbx==1.0.4"
SDIST = "clibmdbx-1.0.4.tar.gz"
SDIST_SHA256 = "4a26772ae7f6dd4688a4753243e2d68abf05c2c17e227e42f9ca8c57eda14d77"
VENDOR = "clibmdbx-1.0.4/vendor/libmdbx/"
# The official v0.14.3 release amalgamation (commit 251562b2); mdbx.c and mdbx.h
# are the sums DESIGN.md gives, the rest were recorded on first fetch.
FILES = {
    "mdbx.c": "52d061dc77b1485da1ab7d9df336c750d021e3b1c7267db437bb6100cb3b001c",
    "mdbx.h": "1feb06b7f6f65ab3ad16df51cffbea977331d7426e6d72bdc07f4feac5a9cbb6",
    "mdbx-internals.h": "f293f0e99eb77eebe7f7f4cfa76686e32b4a5fe09445e26b9531714e4d2ec854",
    "mdbx_chk.c": "87ba8659d478701187ac605782bca1637160864c17ade9a413f10db3dce53436",
    "mdbx-wingetopt.h": "024d540c80198df81e74d5fa72cd4b0287aba0d7dc2985a82e35b2ccc63b2bbe",
    "VERSION.json": "3492276c3fc5b2731c145047f097f8d875a09e089a60a4cf84353ad63e07771a",
    "LICENSE": "0d542e0c8804e39aa7f37eb00da5a762149dc682d7829451287e11b938e94594",
    "NOTICE": "21f302c17332bb2481b210a0f80e0540e77701d8a9bb40a76a6cb1265f73ad13",
    "COPYRIGHT": "e53a73bbd1f4862f53fb6f37c4d987b1d12a1886d22022a8bafc1a7a0471dbb6",
}
DEPS = ROOT / ".deps" / f"libmdbx-{VERSION}"
STOCK = DEPS / "stock"
PATCHED = DEPS / "patched"
PATCHES = ROOT / "native" / "patches"


class CheckFailed(Exception):
    pass


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_tree(tree: Path) -> None:
    for name, want in FILES.items():
        p = tree / name
        if not p.is_file():
            raise CheckFailed(f"{p} is missing")
        got = sha256(p)
        if got != want:
            raise CheckFailed(
                f"SHA-256 mismatch for {name}: expected {want}, got {got}.\n"
                f"The libmdbx sources are not the pinned v{VERSION} release. Remove "
                f"{DEPS.relative_to(ROOT)} and run `python3 native/libmdbx.py fetch` again."
            )


def fetch() -> Path:
    """Download the sdist with pip (by package name), verify it, extract the amalgamation."""
    stamp = STOCK / ".verified"
    if stamp.is_file():
        verify_tree(STOCK)
        return STOCK
    dl = DEPS / "download"
    dl.mkdir(parents=True, exist_ok=True)
    sdist = dl / SDIST
    if not sdist.is_file():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", "-q", "-d", str(dl), PACKAGE]
        print(f"libmdbx: fetching {PACKAGE} source distribution with pip", file=sys.stderr)
        r = subprocess.run(cmd)
        if r.returncode != 0 or not sdist.is_file():
            raise CheckFailed(
                f"`pip download {PACKAGE}` failed (exit {r.returncode}). turbomdbx needs pip "
                "and access to the Python package index; run "
                f"`{Path(sys.executable).name} -m pip download --no-deps --no-binary :all: {PACKAGE}` "
                "to see the error.")
    got = sha256(sdist)
    if got != SDIST_SHA256:
        sdist.unlink()
        raise CheckFailed(f"{SDIST}: SHA-256 {got} is not the pinned {SDIST_SHA256}; the file was removed, "
                          "run the command again to fetch it anew.")
    tmp = Path(tempfile.mkdtemp(prefix="stock-", dir=DEPS))
    with tarfile.open(sdist, "r:gz") as tar:
        for name in FILES:
            member = tar.getmember(VENDOR + name)
            src = tar.extractfile(member)
            if src is None:
                raise CheckFailed(f"{SDIST} has no file {VENDOR + name}")
            with open(tmp / name, "wb") as out:
                shutil.copyfileobj(src, out)
    verify_tree(tmp)
    (tmp / ".verified").write_text(f"{VERSION}\n")
    if STOCK.exists():
        shutil.rmtree(STOCK)
    tmp.rename(STOCK)
    return STOCK


def git_apply(tree: Path, patch: Path, *extra: str) -> subprocess.CompletedProcess:
    # Patches name files relative to the amalgamation folder. The ceiling keeps
    # git from finding an enclosing repository (this checkout), which would make
    # it resolve those names against the repository root and skip them.
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(Path(tree).resolve().parent))
    return subprocess.run(["git", "apply", "--whitespace=nowarn", *extra, str(patch)],
                          cwd=tree, capture_output=True, text=True, env=env)


def apply(tree: Path, patches: list[Path]) -> list[str]:
    """Apply patches in order. An already-applied patch is skipped and reported;
    a patch that neither applies nor is applied stops with git's reason."""
    if shutil.which("git") is None:
        raise CheckFailed("git is needed to apply native/patches (install git)")
    done = []
    for patch in patches:
        if git_apply(tree, patch, "--check").returncode == 0:
            r = git_apply(tree, patch)
            if r.returncode != 0:
                raise CheckFailed(f"{patch.name}: git apply failed after a clean check:\n{r.stderr}")
            done.append(f"applied {patch.name}")
        elif git_apply(tree, patch, "--reverse", "--check").returncode == 0:
            done.append(f"already applied {patch.name}")
        else:
            why = git_apply(tree, patch, "--check").stderr.strip()
            raise CheckFailed(
                f"{patch.name} does not apply to {tree}:\n{why}\n"
                "The patch was written against another libmdbx version, or the tree was edited by hand. "
                "Refresh the patch against the pinned sources (see native/patches/README.md).")
    return done


def patch_list() -> list[Path]:
    return sorted(PATCHES.glob("*.patch"))


def patched() -> Path:
    stock = fetch()
    patches = patch_list()
    want = "\n".join(f"{p.name} {sha256(p)}" for p in patches) + "\n"
    stamp = PATCHED / ".patches"
    if stamp.is_file() and stamp.read_text() == want:
        return PATCHED
    tmp = Path(tempfile.mkdtemp(prefix="patched-", dir=DEPS))
    for name in FILES:
        shutil.copy2(stock / name, tmp / name)
    for line in apply(tmp, patches):
        print(f"libmdbx: {line}", file=sys.stderr)
    (tmp / ".patches").write_text(want)
    if PATCHED.exists():
        shutil.rmtree(PATCHED)
    tmp.rename(PATCHED)
    return PATCHED


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["fetch"]:
            print(fetch().relative_to(ROOT))
        elif argv[:1] == ["patch"]:
            print(patched().relative_to(ROOT))
        elif argv[:1] == ["apply"] and len(argv) >= 3:
            for line in apply(Path(argv[1]), [Path(p).resolve() for p in argv[2:]]):
                print(line)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except CheckFailed as e:
        print(f"libmdbx: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
