"""What a run tells its user: the library never prints; the CLI passes a reporter that draws."""

from __future__ import annotations

from typing import Any


class Reporter:
    """Hooks the training loop calls; the default does nothing."""

    def message(self, text: str) -> None: ...

    def start(self, *, total_steps: int | None, start_step: int) -> None: ...

    def step(self, row: dict[str, Any]) -> None: ...

    def validating(self, step: int) -> None: ...

    def validation(self, row: dict[str, Any]) -> None: ...

    def stop(self) -> None: ...
