"""``python -m harness.worker FRAMEWORK DEVICE | --list``: the worker process (harness.worker.loop)."""

from harness.worker.loop import main

raise SystemExit(main())
