"""``python -m seq2attn`` runs the command line."""

from seq2attn.cli.main import app

app(prog_name="seq2attn")
