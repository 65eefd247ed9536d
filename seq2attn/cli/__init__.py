"""The command line: the Typer app and its commands (only this layer prints and exits)."""

from seq2attn.cli.main import app

__all__ = ["app"]
