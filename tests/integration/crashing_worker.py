"""``python -m worker worker`` with one more faust timer, which raises: a bug that crashes
the worker (faust: "We experienced a crash! Reraising original exception"). Used by
``test_operability.py::test_a_crashed_worker_exits_non_zero``; run from the project root
with the test's WORKER_* environment."""

from __future__ import annotations

import sys

from worker.app import app
from worker.cli import main


@app.timer(interval=2.0)
async def broken_timer() -> None:
    raise RuntimeError("a bug in a timer")


if __name__ == "__main__":
    sys.exit(main(["worker"]))
