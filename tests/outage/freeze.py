"""The controlled outage's hook: ``python -S freeze.py PID SECONDS RECORD [--usr1]``.

Freezes PID with SIGSTOP for SECONDS, then SIGCONT, and writes to RECORD the instants (epoch)
around each signal, as JSON: the ground truth the impact analysis is checked against. With
``--usr1``, sends SIGUSR1 just before SIGCONT (the server then changes its delay). Standard
library only, so that it starts in milliseconds.
"""

import json
import os
import signal
import sys
import time

pid, seconds, record = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
before_stop = time.time()
os.kill(pid, signal.SIGSTOP)
stopped = time.time()
time.sleep(seconds)
if "--usr1" in sys.argv[4:]:
    os.kill(pid, signal.SIGUSR1)
before_cont = time.time()
os.kill(pid, signal.SIGCONT)
resumed = time.time()
with open(record, "w") as out:
    json.dump({"stop": [before_stop, stopped], "cont": [before_cont, resumed]}, out)
