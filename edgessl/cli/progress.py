"""The one progress bar of every command: rich, on stderr (stdout stays clean for ``--json``).

It appears at the first update, so a command refused for bad input before any work prints its
one error line and nothing else; it is hidden with ``--json`` and on ranks other than 0 under
torchrun. Several named tasks (the stages of ``edgessl profile``) share one display.

>>> with ProgressBar("search") as bar:
...     bar.update(3, 6, "12 scored")
"""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from edgessl.cli.app import err_console


class ProgressBar:
    """``update(completed, total, status, task)``: ``task`` defaults to the bar's name."""

    def __init__(self, name: str, quiet: bool = False):
        self.name, self.quiet = name, quiet
        self._bar: Progress | None = None
        self._tasks: dict[str, int] = {}
        self._done: dict[str, int] = {}

    def update(self, completed: float | None = None, total: float | None = None,
               status: str = "", task: str | None = None) -> None:
        if self.quiet:
            return
        if self._bar is None:
            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 MofNCompleteColumn(),
                                 TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                                 TimeRemainingColumn(), console=err_console)
            self._bar.start()
        key = task or self.name
        if key not in self._tasks:
            self._tasks[key] = self._bar.add_task(key, total=total, status=status)
        self._bar.update(self._tasks[key], completed=completed, total=total, status=status)

    def __enter__(self) -> ProgressBar:
        return self

    def step(self, total: float, status: str = "", task: str | None = None) -> None:
        """One more unit of ``total`` done (commands whose library reports steps, not counts)."""
        self._done[task or self.name] = self._done.get(task or self.name, 0) + 1
        self.update(self._done[task or self.name], total, status, task)

    def close(self, failed: bool = False) -> None:
        """Stop the display (a no-op when it never started). ``failed``: erase it, so that a
        command that fails midway prints its one error line and nothing else."""
        if self._bar is not None:
            if failed:
                self._bar.disable = True  # erased: no final frame on a log either
                self._bar.live.transient = True
            self._bar.stop()
            self._bar = None

    def __exit__(self, exc_type, *exc) -> None:
        self.close(failed=exc_type is not None and not issubclass(exc_type, KeyboardInterrupt))
