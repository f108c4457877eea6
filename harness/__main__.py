"""`python -m harness` is the same as the `softmax-bench` command."""

from harness.cli import main

raise SystemExit(main())
