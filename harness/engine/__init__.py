"""The parent side that runs tasks: unit queue, worker handles, executors, the run lifecycle."""
