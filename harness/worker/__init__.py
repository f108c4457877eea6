"""What runs inside a worker process: the loop, timing, adapters, built-in implementations.

The parent never imports this package's submodules that import a framework; it starts
``python -m harness.worker FRAMEWORK DEVICE`` and speaks the protocol of ``harness.messages``.
"""
