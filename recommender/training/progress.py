"""Progress of long work (the model search, the report-only fits): a bar with an ETA on a terminal.

On a terminal (``enabled``) a tqdm bar on stderr counts fits against an
estimated total (the search's count depends on what it finds, so the total is
an estimate that grows when passed) and shows the ETA; log lines written
meanwhile go above the bar. Without a terminal (cron, ``--json``) it shows
nothing: the caller logs one summary line at the end. Per-step detail goes to
``detail`` (the log with ``--verbose``, else nowhere).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


class Progress:
    def __init__(
        self,
        desc: str,
        total: int,
        *,
        enabled: bool = False,
        log: Log = _quiet,
        detail: Log = _quiet,
        unit: str = "fit",
    ) -> None:
        self.count = 0
        self._log, self._detail = log, detail
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=max(int(total), 1),
                desc=desc,
                unit=unit,
                file=sys.stderr,
                leave=False,
                dynamic_ncols=True,
                bar_format="{desc}: {n}/{total} {unit}s [{elapsed}<{remaining}]{postfix}",
            )

    def _write(self, sink: Log, message: str) -> None:
        if self.bar is None:
            sink(message)
            return
        from tqdm import tqdm

        with tqdm.external_write_mode(file=sys.stderr):
            sink(message)

    def log(self, message: str) -> None:
        """A line for the log whatever the mode (skips, budget reached, the summary)."""
        self._write(self._log, message)

    def detail(self, message: str) -> None:
        """A per-step line, only with --verbose."""
        self._write(self._detail, message)

    def step(self, note: str = "") -> None:
        self.count += 1
        if self.bar is not None:
            if self.bar.n + 1 > self.bar.total:
                self.bar.total = self.bar.n + 1
            if note:
                self.bar.set_postfix_str(note[:48], refresh=False)
            self.bar.update(1)

    def grow(self, more: int) -> None:
        """The work turned out larger: add ``more`` steps to the estimated total."""
        if self.bar is not None and more > 0:
            self.bar.total += int(more)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
