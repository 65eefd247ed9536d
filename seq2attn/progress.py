"""People's output on stderr: the training progress bar and messages (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .train import Reporter

stderr = Console(stderr=True, highlight=False, soft_wrap=True)


class RichReporter(Reporter):
    """Progress bar (step, loss, tokens/s, ETA) and one line per validation, on stderr."""

    def __init__(self, console: Console = stderr):
        self.console = console
        self.progress: Progress | None = None
        self.task = None

    def message(self, text: str) -> None:
        self.console.print(text)

    def start(self, *, total_steps: int | None, start_step: int) -> None:
        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(), TextColumn("step {task.completed}"),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=self.console, transient=False,
        )
        self.task = self.progress.add_task("train", total=total_steps, completed=start_step, info="")
        self.progress.start()

    def step(self, row: dict[str, Any]) -> None:
        if self.progress is not None:
            info = f"loss {row['loss']:.3f}  {row['tokens_per_s']:,.0f} tok/s  lr {row['lr']:.2g}"
            self.progress.update(self.task, completed=row["step"], info=info)

    def validation(self, row: dict[str, Any]) -> None:
        mark = " *best*" if row.get("best") else ""
        line = (f"step {row['step']:>6}  dev loss {row['loss']:.3f}  ppl {row['ppl']:.2f}  BLEU {row['bleu']:.2f}  "
                f"chrF {row['chrf']:.2f}  exact {row['exact']:.1f}%  ({row['valid_seconds']:.1f} s){mark}")
        (self.progress.console if self.progress else self.console).print(line)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
