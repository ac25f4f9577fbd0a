"""Instructions one SQLite backfill costs, counted by valgrind: a figure the machine's noise
does not move, for comparing two revisions.

    PATH=$PWD/node_modules/.bin:$PATH .venv/bin/python scripts/bench_indexer_ir.py \
        [--events 5000] [--base REV]

Wall-clock events/s on a shared 2-core machine vary by 30 % between runs of the same code (CPU
steal), so a 5 % regression cannot be seen with `bench_indexer.py` alone. Here the backfill runs
under callgrind with instrumentation switched on (`callgrind_control -i on`) only around the
second of two identical backfills (the first warms SQLAlchemy's caches); anvil runs in its own
process and is not counted. Two runs of one revision differ by ~0.1 %. With `--base`, the same
measurement runs on REV in a temporary git worktree (sharing this checkout's .venv and
node_modules) and the ratio is printed. Needs valgrind (Debian's `valgrind` package).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(events: int) -> None:
    """Runs in the measured process, from the tree being measured (its cwd)."""
    tree = Path.cwd()
    sys.path.insert(0, str(tree / "scripts"))
    import bench_indexer as bench

    tmp = tree / "var" / "bench-indexer"
    tmp.mkdir(parents=True, exist_ok=True)
    node, emitter = bench.make_chain(bench.compile_emitter(tmp / "cache"), events, prune=True)
    try:
        bench.bench_backfill(node, emitter, bench.sqlite_db(tmp / "ir.db"), 20)  # warm-up
        print("READY", flush=True)
        sys.stdin.readline()
        bench.bench_backfill(node, emitter, bench.sqlite_db(tmp / "ir.db"), 20)
        print("DONE", flush=True)
        sys.stdin.readline()
    finally:
        node.close()


def measure(tree: Path, events: int) -> int:
    """Instructions of one backfill of `events` purchases in `tree`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        script = [str(Path(__file__).resolve()), "--child", "--events", str(events)]
        proc = subprocess.Popen(
            [*valgrind, f"--callgrind-out-file={out}", sys.executable, *script],
            cwd=tree,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        for line in proc.stdout:
            print(f"  [{tree.name}] {line.rstrip()}", file=sys.stderr, flush=True)
            if line.startswith(("READY", "DONE")):
                switch = "on" if line.startswith("READY") else "off"
                subprocess.run(
                    ["callgrind_control", "-i", switch, str(proc.pid)],
                    check=True,
                    capture_output=True,
                )
                proc.stdin.write("go\n")
                proc.stdin.flush()
        if proc.wait() != 0:
            raise SystemExit(f"the measured backfill in {tree} failed")
        found = re.search(r"^totals: (\d+)", out.read_text(), re.MULTILINE)
        if found is None:
            raise SystemExit("callgrind wrote no totals")
        return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--base", help="a revision to compare with (measured in a worktree)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.events)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind not found: apt-get install valgrind")
    results: dict[str, object] = {"events": args.events}
    results["instructions"] = here = measure(ROOT, args.events)
    if args.base:
        base_tree = Path(tempfile.mkdtemp(prefix="tuition-base-"))
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(base_tree), args.base],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            for shared in (".venv", "node_modules"):
                os.symlink(ROOT / shared, base_tree / shared)
            results["base"] = args.base
            results["base_instructions"] = base = measure(base_tree, args.events)
            results["change_pct"] = round(100 * (here - base) / base, 2)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(base_tree)],
                cwd=ROOT,
                check=False,
                capture_output=True,
            )
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
