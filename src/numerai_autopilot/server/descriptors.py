"""Room for a burst's connections in the process's file descriptor table, made at start.

    reserve_descriptors()   # first thing in `autopilot serve`, before any thread starts

Linux grows a process's descriptor table by doubling it (64, 128, 256...) when a new
descriptor does not fit. In a process with several threads, each growth waits for an RCU
grace period before it returns (`expand_fdtable` calls `synchronize_rcu`): 8-29 ms each,
measured on a 2-core machine, during which the thread that opened the descriptor (here the
event loop, accepting a connection) is blocked. Traced, the first burst of 200 webhooks
after a start paused twice this way (7-15 and 5-13.5 ms) and was answered 20-30 ms later
than the next ones; both pauses went with this. The table never shrinks, so growing it
once at start, while the process has one thread and the growth costs microseconds, takes
this off the first burst after every start (on Cloud Run, scaled from zero, every burst
may be a first one).
"""

from __future__ import annotations

import fcntl
import os
import resource

DEFAULT_DESCRIPTORS = 4096  # a burst of a few thousand webhooks at once; 32 KiB of table


def reserve_descriptors(count: int = DEFAULT_DESCRIPTORS) -> int:
    """Grow the descriptor table to hold `count` descriptors (at most the soft
    RLIMIT_NOFILE, beyond which no connection can be accepted anyway), without opening any
    for good. Returns the highest descriptor number the table now holds, 0 if it left it
    as it was. Never fails: the table grows on demand anyway, as it did before."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY:
        count = min(count, soft)
    highest = count - 1
    if highest < 3 or _is_open(highest):  # an open one that high: the table is there
        return 0
    try:
        probe = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        os.dup2(probe, highest, inheritable=False)  # the table grows to hold `highest`
        os.close(highest)
    except OSError:
        return 0
    finally:
        os.close(probe)
    return highest


def _is_open(fd: int) -> bool:
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError:
        return False
    return True
