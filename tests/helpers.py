"""What many test modules share: running the CLI in-process and checking a one-line error."""

from __future__ import annotations

from typer.testing import CliRunner

from seq2attn.cli.main import app

runner = CliRunner()


def run(*args, input=None, env=None):
    """``seq2attn ARGS`` in-process (stdout and stderr kept apart, exit code, exception)."""
    return runner.invoke(app, [str(a) for a in args], input=input, env=env)


def ok(result):
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def one_line_error(result, *needles):
    """Exit 1, no traceback, and exactly one ``seq2attn: error:`` line on stderr holding every needle."""
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seq2attn: error:"), result.stderr
    for needle in needles:
        assert str(needle) in lines[0], (needle, lines[0])
    assert "Traceback" not in result.output
