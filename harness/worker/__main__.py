"""``python -m harness.worker FRAMEWORK DEVICE | --list``: the worker process (see loop.py)."""

from harness.worker.loop import main

raise SystemExit(main())
