"""The one exception root of the harness.

Only the CLI entry point catches `HarnessError`: it prints the message as one line and exits with
`exit_code`. Raise the narrowest subclass, with a message that says what went wrong, where, and
what to do about it.
"""


class HarnessError(Exception):
    """A problem the user can act on; the CLI reports it without a traceback."""

    exit_code: int = 2

    def __init__(self, message: str) -> None:
        # The CLI prints exactly one line, so fold any line breaks the caller put in.
        self.message = " ".join(message.split())
        super().__init__(self.message)


class UsageError(HarnessError):
    """The command line itself is wrong: unknown subcommand, bad option or value."""


class ConfigError(HarnessError):
    """A suite file, option value or setting is invalid."""


class StoreError(HarnessError):
    """A run directory or cache cannot be read or written (missing, corrupt, wrong schema)."""


class PluginError(HarnessError):
    """A plugin entry point failed to load or returned something that is not an Implementation."""
