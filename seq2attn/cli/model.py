"""Commands on a trained model directory's checkpoints: ``average`` (registered in :mod:`seq2attn.cli.main`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from seq2attn.cli.common import Device, ModelDir, handle_errors, stderr_console
from seq2attn.errors import ConfigError


def describe(entry: dict[str, Any]) -> str:
    """One line on a checkpoint's manifest entry: file, step, minutes, dev scores."""
    parts = [f"{entry['file']} step {entry['step']}"]
    if entry.get("minutes") is not None:
        parts.append(f"{entry['minutes']:.1f} min")
    if entry.get("steps"):
        parts.append(f"average of steps {', '.join(map(str, entry['steps']))}")
    if entry.get("dev_bleu") is None:
        parts.append("not validated at this step")
    else:
        scores = f"dev BLEU {entry['dev_bleu']:.2f}"
        if entry.get("dev_chrf") is not None:
            scores += f", chrF {entry['dev_chrf']:.2f}, loss {entry['dev_loss']:.3f}"
        parts.append(scores)
    return "; ".join(parts)


@handle_errors
def average(
    model: ModelDir,
    last: Annotated[int | None, typer.Option(metavar="N", help="How many of the newest kept validation checkpoints "
                                                  "to average (default: the model's train.average_last, how many "
                                                  "training kept). Example: --last 5")] = None,
    device: Device = "auto",
) -> None:
    """Average the last N validation checkpoints into averaged.safetensors, scored on the dev set.

    translate, evaluate and align then load it when its dev BLEU beats the best checkpoint's.
    Example: seq2attn average -m runs/de-en --last 5
    """
    from pathlib import Path

    from seq2attn.inference.api import check_device
    from seq2attn.modeldir.checkpoint import load_config, read_manifest
    from seq2attn.nn.runtime import resolve_device
    from seq2attn.run.averaging import average_directory
    from seq2attn.run.curve import CURVE, draw_curve

    check_device(device)
    if last is None:
        last = load_config(model).train.average_last
        if last is None:
            raise ConfigError(f"{model} was trained without train.average_last (it kept no checkpoints to "
                              "average for it); give --last N")
    row = average_directory(Path(model), last=last, device=resolve_device(device))
    console = stderr_console()
    console.print(f"averaged: {describe(row)}")
    best = read_manifest(model)["weights"].get("best")
    if best is not None:
        console.print(f"best:     {describe(best)}")
    if not (model / CURVE).exists():  # training drew none (train.curve=false)
        return
    try:
        draw_curve(model)
    except Exception as e:  # noqa: BLE001 - the average is saved; a failed picture must not hide that
        console.print(f"could not redraw {model / CURVE} ({type(e).__name__}: {e})")


@handle_errors
def tune_alpha(
    model: ModelDir,
    alphas: Annotated[str, typer.Option(metavar="A,B,...", help="Length penalties to try. Example: --alphas "
                                             "0,0.6,1.0,1.4")] = "0,0.6,1.0,1.4,1.8,2.2,2.6,3.0",
    beam: Annotated[int | None, typer.Option(metavar="K", help="Beam size to tune under (default: the model's "
                                                 "decode.beam_size, or 5 when that is 1). Example: --beam 5")] = None,
    device: Device = "auto",
) -> None:
    """Choose the length penalty (decode.alpha) on the model's dev set and save it as its default.

    Each alpha decodes the dev set with beam search; the one with the highest dev BLEU is written
    to the model's config.yaml (translate, evaluate and the Python API then use it). The test set
    is never looked at. Example: seq2attn tune-alpha -m runs/de-en
    """
    from pathlib import Path

    from seq2attn.inference.api import check_device
    from seq2attn.modeldir.checkpoint import load_config
    from seq2attn.nn.runtime import resolve_device
    from seq2attn.run.alpha import parse_alphas
    from seq2attn.run.alpha import tune_alpha as tune

    check_device(device)
    row = tune(Path(model), alphas=parse_alphas(alphas), beam=beam, device=resolve_device(device))
    console = stderr_console()
    for alpha, bleu in row["dev_bleu_by_alpha"].items():
        mark = "  <- chosen" if float(alpha) == row["alpha"] else ""
        console.print(f"alpha {alpha:>4}: dev BLEU {bleu:.2f} (beam {row['beam']}, {row['weights']} weights){mark}")
    console.print(f"decode.alpha = {row['alpha']:g} saved in {Path(model) / 'config.yaml'} "
                  f"(was {row['previous_alpha']:g})")
    if load_config(model).decode.beam_size == 1:
        console.print(f"note: {model} decodes with greedy search (decode.beam_size 1), where alpha has no effect; "
                      f"it acts when you translate with --beam {row['beam']} (or any beam of 2 or more)")
