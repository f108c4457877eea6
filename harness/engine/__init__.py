"""The parent side that runs tasks: the unit queue, worker handles, executors and the run lifecycle."""
