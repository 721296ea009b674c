"""The generated Python client against a real server: every RPC, errors,
follow, a TTY round trip, Run with stdin, and an offline pip install."""

import os
import subprocess
import sys
import tempfile
import time

import pytest

import sandproc
from sandproc.v1 import keys_pb2, options_pb2, processes_pb2, sandboxes_pb2
from sandproc.v1 import keys_sprpc, ports_sprpc, processes_sprpc, sandboxes_sprpc, system_sprpc

STUBS = {
    "sandproc.v1.System": (system_sprpc, "SystemStub"),
    "sandproc.v1.Processes": (processes_sprpc, "ProcessesStub"),
    "sandproc.v1.Sandboxes": (sandboxes_sprpc, "SandboxesStub"),
    "sandproc.v1.Keys": (keys_sprpc, "KeysStub"),
    "sandproc.v1.Ports": (ports_sprpc, "PortsStub"),
}


def every_method():
    """Every RPC the .proto files declare, from protoc's own descriptors."""
    from sandproc.v1 import keys_pb2, ports_pb2, processes_pb2, sandboxes_pb2, system_pb2
    out = set()
    for mod in (system_pb2, processes_pb2, sandboxes_pb2, keys_pb2, ports_pb2):
        for svc in mod.DESCRIPTOR.services_by_name.values():
            out |= {"%s/%s" % (svc.full_name, m.name) for m in svc.methods}
    return out


class Recording:
    """A channel that notes which methods were called and answered OK."""

    def __init__(self, ch):
        self.ch, self.ok = ch, set()

    def call(self, method, *args):
        reply = self.ch.call(method, *args)
        self.ok.add(method)
        return reply


def test_stubs_cover_every_method():
    for full in every_method():
        service, name = full.split("/")
        mod, cls = STUBS[service]
        assert callable(getattr(getattr(mod, cls), name)), full


def test_every_rpc_against_a_real_server(ch):
    rec = Recording(ch)
    system = system_sprpc.SystemStub(rec)
    procs = processes_sprpc.ProcessesStub(rec)
    sbx = sandboxes_sprpc.SandboxesStub(rec)
    keys = keys_sprpc.KeysStub(rec)
    ports = ports_sprpc.PortsStub(rec)

    assert system.Health().version

    run = procs.Run(argv=["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (run.exit_code, run.stdout, run.stderr) == (3, b"out\n", b"err\n")

    p = procs.Start(processes_pb2.StartRequest(argv=["sh", "-c", "read x; echo got $x; sleep 60"], name="py"))
    assert p.id.startswith("proc_") and p.state == processes_pb2.STATE_RUNNING
    assert procs.Get(id=p.id).name == "py"
    assert p.id in [q.id for q in procs.List(state=processes_pb2.STATE_RUNNING).processes]
    assert procs.SendInput(id=p.id, data=b"hello\n").bytes_written == 6
    got = procs.WaitFor(id=p.id, log="^got hello$", from_start=True, timeout_ms=10000)
    assert (got.condition, got.line) == ("log", "got hello")
    assert b"got hello" in b"".join(e.data for e in procs.Logs(id=p.id).entries)
    assert procs.Signal(id=p.id, signal="TERM").id == p.id
    done = procs.Wait(id=p.id, timeout_ms=10000)
    assert done.state == processes_pb2.STATE_KILLED and done.signal == 15
    assert procs.Delete(id=p.id) == processes_pb2.DeleteReply()

    t = procs.Start(argv=["sh", "-c", "sleep 60"], tty=True, cols=40, rows=10)
    procs.Resize(id=t.id, cols=50, rows=12)
    screen = procs.Screen(id=t.id)
    assert (screen.cols, screen.rows, len(screen.lines)) == (50, 12, 12)
    assert procs.Stop(id=t.id, grace_ms=100, wait_ms=10000).state == processes_pb2.STATE_KILLED
    k = procs.Start(argv=["sleep", "60"])
    assert procs.Kill(id=k.id, wait_ms=10000).signal == 9

    cfg = procs.GetConfig()
    assert procs.SetConfig(max_output_bytes=cfg.max_output_bytes + 1).max_output_bytes == cfg.max_output_bytes + 1

    key = keys.CreateKey(name="viewer", role=options_pb2.ROLE_VIEWER)
    assert key.secret and key.id in [x.id for x in keys.ListKeys().keys]
    keys.RevokeKey(id=key.id)
    assert key.id not in [x.id for x in keys.ListKeys().keys]

    # A host process listening on loopback: found under "default", exposed by hand.
    srv = procs.Start(argv=[sys.executable, "-u", "-c",
                            "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen();"
                            "print(s.getsockname()[1], flush=True); input()"])
    port = int(procs.WaitFor(id=srv.id, log="^[0-9]+$", from_start=True, timeout_ms=10000).line)
    assert procs.WaitFor(id=srv.id, port=port, timeout_ms=10000).condition == "port"
    assert port in [x.port for x in ports.List(sandbox_id="default").ports]
    exposed = ports.Expose(sandbox_id="default", port=port)
    assert exposed.exposed_url.startswith("http://127.0.0.1:")
    assert ports.Unexpose(sandbox_id="default", port=port).exposed_url == ""
    procs.Kill(id=srv.id, wait_ms=10000)

    box = sbx.Create(name="py", network="none")
    assert box.id.startswith("sbx_")
    assert sbx.WaitReady(id=box.id, timeout_s=60).ready
    assert sbx.Readiness(id=box.id).ready
    assert sbx.Get(id=box.id).state == sandboxes_pb2.SANDBOX_STATE_READY
    assert box.id in [b.id for b in sbx.List().sandboxes]
    inside = procs.Run(argv=["sh", "-c", "pwd"], sandbox_id=box.id)
    assert inside.stdout == b"/workspace\n"
    sbx.Delete(id=box.id, grace_ms=100)

    assert rec.ok == every_method(), "not called: %s" % (every_method() - rec.ok)


def test_errors_carry_the_grpc_name_and_message(server, ch):
    procs = processes_sprpc.ProcessesStub(ch)
    with pytest.raises(sandproc.RpcError) as e:
        procs.Get(id="proc_000000000000000000000000")
    assert e.value.code == "NOT_FOUND" and e.value.status == 5 and "proc_000000000000000000000000" in e.value.message
    with pytest.raises(sandproc.RpcError) as e:
        procs.Start(argv=[])
    assert e.value.code == "INVALID_ARGUMENT"
    with pytest.raises(sandproc.RpcError) as e:
        procs.Start(argv=["/no/such/program"])
    assert e.value.code == "NOT_FOUND" and "No such file" in e.value.message
    with pytest.raises(sandproc.RpcError) as e:
        processes_sprpc.ProcessesStub(server.channel(token="sk_wrong")).List()
    assert e.value.code == "UNAUTHENTICATED"
    p = procs.Start(argv=["sleep", "60"])
    with pytest.raises(sandproc.RpcError) as e:
        procs.Wait(id=p.id, timeout=0.2)
    assert e.value.code == "DEADLINE_EXCEEDED"
    procs.Kill(id=p.id, wait_ms=10000)  # the channel goes on after a timeout
    with pytest.raises(TypeError):
        procs.Get(processes_pb2.StartRequest())
    with pytest.raises(sandproc.RpcError) as e:
        sandproc.Channel("ipc://%s/nothing-here" % server.dir)
    assert e.value.code == "UNAVAILABLE"


def test_token_from_the_environment_and_the_data_dir(server, monkeypatch):
    monkeypatch.delenv("SANDPROC_TOKEN", raising=False)
    monkeypatch.setenv("SANDPROC_DATA", server.data)
    assert processes_sprpc.ProcessesStub(sandproc.Channel(server.url)).List() is not None
    monkeypatch.setenv("SANDPROC_TOKEN", "sk_not_a_key")
    with pytest.raises(sandproc.RpcError) as e:
        processes_sprpc.ProcessesStub(sandproc.Channel(server.url)).List()
    assert e.value.code == "UNAUTHENTICATED"
    monkeypatch.setenv("SANDPROC_TOKEN", server.token)
    monkeypatch.setenv("SANDPROC_URL", server.url)
    assert system_sprpc.SystemStub(sandproc.Channel()).Health().version


@pytest.mark.parametrize("feed", [True, False])
def test_follow_a_fast_writer_has_no_gap_or_repeat(server, ch, feed):
    procs = processes_sprpc.ProcessesStub(ch)
    n = 20000
    p = procs.Start(argv=["sh", "-c", 'i=0; while [ $i -lt %d ]; do echo "line $i"; i=$((i+1)); done' % n])
    seqs, data = [], []
    for e in sandproc.follow(ch, p.id, None if feed else "none"):
        seqs.append(e.sequence)
        data.append(e.data)
    assert seqs == sorted(set(seqs)), "out of order or repeated"
    assert b"".join(data) == b"".join(b"line %d\n" % i for i in range(n))
    assert procs.Get(id=p.id).state == processes_pb2.STATE_EXITED


def test_follow_of_a_stream_and_of_live_output(ch):
    procs = processes_sprpc.ProcessesStub(ch)
    p = procs.Start(argv=["sh", "-c", "echo a; echo b >&2; read x; echo c; echo d >&2"])
    out = sandproc.follow(ch, p.id, stream=processes_pb2.STREAM_STDERR)
    assert next(out).data == b"b\n"
    procs.SendInput(id=p.id, data=b"\n")
    assert [e.data for e in out] == [b"d\n"]


def test_tty_round_trip(ch):
    procs = processes_sprpc.ProcessesStub(ch)
    p = procs.Start(argv=["sh", "-c", "stty -echo; printf 'name? '; read x; printf 'hi %s\\n' \"$x\""],
                    tty=True, cols=80, rows=24)
    got = b""
    for e in sandproc.follow(ch, p.id):
        assert e.stream == processes_pb2.STREAM_PTY
        got += e.data
        if got.endswith(b"name? "):
            procs.SendInput(id=p.id, data=b"sandproc\r")
    assert got.replace(b"\r\n", b"\n").endswith(b"hi sandproc\n")
    assert procs.Screen(id=p.id).lines[0].startswith("name? hi sandproc")


def test_run_with_stdin(ch):
    procs = processes_sprpc.ProcessesStub(ch)
    blob = bytes(range(256)) * 256  # 64 KiB of every byte value: the default max_input_bytes_per_request
    r = procs.Run(argv=["cat"], stdin=blob)
    assert r.exit_code == 0 and r.stdout == blob
    r = procs.Run(argv=["sh", "-c", "wc -c"], stdin=b"x" * 1000)
    assert r.stdout.strip() == b"1000"


def test_threads_share_a_channel(ch):
    import threading
    procs = processes_sprpc.ProcessesStub(ch)
    outs, errs = [], []

    def worker(i):
        try:
            outs.append(procs.Run(argv=["echo", str(i)]).stdout)
        except Exception as e:  # noqa: BLE001 - reported below
            errs.append(e)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errs and sorted(outs) == sorted(b"%d\n" % i for i in range(8))


def test_a_call_waiting_across_a_server_restart_is_resent_and_answered(server, ch):
    import threading
    procs = processes_sprpc.ProcessesStub(ch)
    p = procs.Start(argv=["sh", "-c", "read x; exit 4"])
    got = {}

    def wait():
        try:
            got["rec"] = procs.Wait(id=p.id, timeout=60)
        except Exception as e:  # noqa: BLE001 - reported below
            got["err"] = e

    t = threading.Thread(target=wait)
    t.start()
    deadline = time.time() + 10
    while server.proc.poll() is None and time.time() < deadline:
        # The Wait is parked in the server once Health says so.
        if system_sprpc.SystemStub(server.channel()).Health().parked_calls > 0:
            break
        time.sleep(0.02)
    server.crash()  # the process goes on under its holder
    server.start()
    procs2 = processes_sprpc.ProcessesStub(server.channel())
    procs2.SendInput(id=p.id, data=b"\n")
    t.join(60)
    assert "err" not in got, got.get("err")
    assert got["rec"].exit_code == 4 and got["rec"].state == processes_pb2.STATE_EXITED


def test_a_call_while_the_server_is_down_ends_within_its_timeout(server, ch):
    system = system_sprpc.SystemStub(ch)
    assert system.Health().version
    server.crash()
    start = time.monotonic()
    with pytest.raises(sandproc.RpcError) as e:
        system.Health(timeout=0.5)
    assert e.value.code in ("DEADLINE_EXCEEDED", "UNAVAILABLE")
    assert time.monotonic() - start < 20  # not the 30 s reconnect window, nor forever
    server.start()
    assert system.Health(timeout=30).version  # and the channel goes on once it is back


def test_installs_into_a_venv_offline(server):
    pkg = os.environ["SANDPROC_PY_BUILD"]
    with tempfile.TemporaryDirectory(prefix="sandproc-venv-") as d:
        venv = os.path.join(d, "v")
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "--no-index", pkg], check=True,
                       cwd=d, timeout=300)
        code = ("import sandproc; from sandproc.v1.system_sprpc import SystemStub;"
                "print(sandproc.__file__); print(SystemStub(sandproc.Channel(%r, token=%r)).Health().version)"
                % (server.url, server.token))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        out = subprocess.run([os.path.join(venv, "bin", "python"), "-c", code], check=True, cwd=d, env=env,
                             capture_output=True, text=True).stdout.split()
        assert out[0].startswith(venv) and out[1]
