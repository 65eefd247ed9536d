"""Start one measured command from a small process and report its own peak RSS.

Usage: python -S _launch.py RESULT_FILE CMD [ARG ...]; writes "<ru_maxrss KiB> <wait status>".

Why a launcher: on Linux a child's ``ru_maxrss`` is at least the resident size of the process it
was forked (or vforked) from, so a command started straight from the harness (which holds torch,
~250 MB) would never report less than that. Forked from this small process instead, the command's
``ru_maxrss`` from ``wait4`` is its own peak. SIGINT and SIGTERM are forwarded to the command.
"""

import os
import signal
import sys

result, cmd = sys.argv[1], sys.argv[2:]
launcher, child = os.getpid(), []


def forward(signum, _frame):
    if os.getpid() == launcher and child:  # not in the forked child before exec, not before fork
        os.kill(child[0], signum)


signal.signal(signal.SIGINT, forward)
signal.signal(signal.SIGTERM, forward)
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)  # caught signals reset to their defaults here
    finally:
        os._exit(127)
child.append(pid)
_, status, usage = os.wait4(pid, 0)  # PEP 475: retried after a forwarded signal
with open(result, "w") as f:
    f.write(f"{usage.ru_maxrss} {status}\n")
