"""The offline contract toolchain: a solcjs-backed `solc` for py-solc-x, and anvil from npm.

Native `solc` binaries come from a host that is not always reachable; the npm registry is. The
npm package `solc` (solcjs) compiles the same way behind `scripts/solc/solcjs-wrapper.js`, a
`solc`-compatible command line. This module registers it with py-solc-x (which ape-solidity uses)
unless a working native `solc` of the pinned version is already there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from backend.core.config import PROJECT_ROOT

SOLC_VERSION = "0.8.28"
TOOLS_BIN = PROJECT_ROOT / ".tools" / "bin"
NODE_BIN = PROJECT_ROOT / "node_modules" / ".bin"
WRAPPER = PROJECT_ROOT / "scripts" / "solc" / "solcjs-wrapper.js"


def anvil_path() -> Path:
    """The anvil binary shipped by the npm package `@foundry-rs/anvil-linux-amd64`."""
    found = shutil.which("anvil")
    local = NODE_BIN / "anvil"
    if local.exists():
        return local
    if found:
        return Path(found)
    raise FileNotFoundError("anvil not found: run scripts/setup (npm ci installs it)")


def tool_path_env() -> dict[str, str]:
    """The environment with the project's tool folders first on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(TOOLS_BIN), str(NODE_BIN), env.get("PATH", "")])
    return env


def _solc_works(binary: Path) -> bool:
    try:
        out = subprocess.run(  # noqa: S603 - our own registered compiler
            [str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError:
        return False
    return out.returncode == 0 and f"Version: {SOLC_VERSION}" in out.stdout


def _write_launcher() -> Path:
    # A copy of this launcher is what py-solc-x keeps, so it names the wrapper by absolute path.
    TOOLS_BIN.mkdir(parents=True, exist_ok=True)
    launcher = TOOLS_BIN / "solc"
    node = shutil.which("node") or "node"
    launcher.write_text(f'#!/bin/sh\nexec "{node}" "{WRAPPER}" "$@"\n')
    launcher.chmod(0o755)
    return launcher


def ensure_solc(verbose: bool = False) -> Path:
    """Register a working solc of the pinned version with py-solc-x and return its path."""
    import solcx
    from solcx.install import get_solcx_install_folder

    installed = get_solcx_install_folder() / f"solc-v{SOLC_VERSION}"
    if installed.exists() and _solc_works(installed):
        return installed
    if installed.exists():
        # A launcher left behind by a clone that no longer exists.
        installed.unlink()

    native = shutil.which("solc")
    if native and _solc_works(Path(native)):
        source = "native solc"
    else:
        if not (PROJECT_ROOT / "node_modules" / "solc").exists():
            raise FileNotFoundError("npm package `solc` missing: run scripts/setup (npm ci)")
        _write_launcher()
        source = "solcjs wrapper"
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([str(TOOLS_BIN), old_path])
    try:
        solcx.import_installed_solc()
    finally:
        os.environ["PATH"] = old_path
    if not _solc_works(installed):
        raise RuntimeError(f"could not register solc {SOLC_VERSION} with py-solc-x")
    if verbose:
        print(f"solc {SOLC_VERSION}: registered the {source} at {installed}")
    return installed


def ensure_toolchain(verbose: bool = False) -> None:
    """Everything `ape compile`, `ape test` and the local stack need."""
    solc = ensure_solc(verbose=verbose)
    anvil = anvil_path()
    if verbose:
        print(f"solc:  {solc}\nanvil: {anvil}")
