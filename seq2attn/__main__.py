"""``python -m seq2attn`` runs the command line."""

from .cli import app

app(prog_name="seq2attn")
