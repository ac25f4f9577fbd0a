"""A process that imports the indexer once and forks a fresh indexer process per request.

Used by the crash test: starting Python and importing SQLAlchemy, the backend and eth libraries
takes seconds, forking a pre-imported process milliseconds, so the test can kill -9 many real
indexer processes in little time. Protocol on stdin/stdout: "spawn [NAME=VALUE ...]" -> the
child's pid (the child gets those environment variables on top of the zygote's).
"""

from __future__ import annotations

import os
import sys

import indexer.handlers  # noqa: F401  (imported lazily by the runner: do it once, here)
from backend.cli import app  # noqa: F401  (imports everything the indexer command needs)
from indexer.runner import configure_logging, run


def main() -> None:
    import logging

    for line in sys.stdin:
        words = line.split()
        if not words or words[0] != "spawn":
            continue
        pid = os.fork()
        if pid == 0:
            for assignment in words[1:]:
                name, _, value = assignment.partition("=")
                os.environ[name] = value
            # The child: a real indexer process, exactly as `tuition indexer` runs it.
            configure_logging(logging.WARNING)
            os._exit(run())
        sys.stdout.write(f"{pid}\n")
        sys.stdout.flush()
        # Reap finished children so they do not linger as zombies.
        while True:
            try:
                done, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if done == 0:
                break


if __name__ == "__main__":
    main()
