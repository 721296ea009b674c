"""A real sandprocd per test, in a temp dir, on ipc:// sockets (ctest sets
SANDPROCD to the built server and PYTHONPATH to build/client/python)."""

import os
import signal
import subprocess
import sys
import tempfile

import pytest

import sandproc


class Server:
    def __init__(self, extra=()):
        self.dir = tempfile.mkdtemp(prefix="sandproc-py-")
        self.url = "ipc://%s/req.sock" % self.dir
        self.events = "ipc://%s/events.sock" % self.dir
        self.data = os.path.join(self.dir, "data")
        self.extra = extra
        self.start()

    def start(self):
        extra = self.extra
        self.proc = subprocess.Popen(
            [os.environ["SANDPROCD"], "--listen", self.url, "--events", self.events, "--data", self.data,
             "--on-exit", "stop", *extra],
            stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("sandprocd ready:"):
            self.stop()
            raise RuntimeError("sandprocd did not start: %r" % line)
        with open(os.path.join(self.data, "admin.key")) as f:
            self.token = f.readline().strip()

    def channel(self, **kw):
        kw.setdefault("token", self.token)
        kw.setdefault("events_url", self.events)
        return sandproc.Channel(self.url, **kw)

    def crash(self):
        """Kills the server alone (SIGKILL): held processes go on, for the next one."""
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()

    def stop(self):
        """Stops the server and (--on-exit stop) every process it still runs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        subprocess.run(["rm", "-rf", self.dir], check=False)


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def ch(server):
    c = server.channel()
    yield c
    c.close()
