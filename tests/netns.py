"""Removing a test's own network namespace: whatever is still running in it (by PID, from the
kernel's own list), then the namespace and the link the test made."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def remove(namespace: str, link: str = "") -> None:
    if namespace:
        listed = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True,
                                check=False, timeout=10)
        for line in listed.stdout.split():
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(line), signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False, timeout=10)
    if link:
        subprocess.run(["ip", "link", "del", link], capture_output=True, check=False, timeout=10)
