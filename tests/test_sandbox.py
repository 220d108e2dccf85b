"""Hostile programs through the code verifier: each gets the right verdict in time and harms
nothing outside its sandbox."""

import os
import socket
import subprocess
import threading
import time

import pytest

from gspo_repro.verifiers import Verdict, run_tests, score_program
from gspo_repro.verifiers.sandbox import CHUNK, NOBODY, Limits, _drops_privileges, isolation

LIMITS = Limits(wall_s=2.0, cpu_s=2, mem_mb=256)
NAMESPACES = isolation() == "namespaces"
needs_ns = pytest.mark.skipif(not NAMESPACES, reason="kernel refuses namespaces here")


def run(source, stdin="", expected=None, limits=LIMITS):
    t0 = time.monotonic()
    [result] = run_tests(source, [{"input": stdin, "output": expected}], limits)
    elapsed = time.monotonic() - t0
    assert elapsed < limits.wall_s + 3, f"took {elapsed:.1f}s"
    return result


def nobody_processes() -> int:
    out = subprocess.run(["ps", "-u", str(NOBODY), "-o", "pid="], capture_output=True, text=True)
    return len(out.stdout.split())


@pytest.fixture
def planted(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-42")
    return secret


def test_correct_and_wrong_programs():
    src = "a=list(map(int,input().split()))\nprint(sum(a))"
    assert run(src, "1 2 3\n", "6\n").verdict is Verdict.PASS
    assert run(src, "1 2 3\n", "7\n").verdict is Verdict.FAIL
    ok, results = score_program(f"Here:\n```python\n{src}\n```", [{"input": "4\n", "output": "4"}])
    assert ok and results[0].verdict is Verdict.PASS


def test_infinite_loop_times_out():
    r = run("while True:\n    pass")
    assert r.verdict is Verdict.TIMEOUT


def test_fork_bomb_is_contained():
    before = nobody_processes()
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    r = run(bomb)
    assert r.verdict in (Verdict.TIMEOUT, Verdict.CRASH)
    # Every forked child is gone: the kernel tears a killed PID namespace down
    # asynchronously, so allow it a few seconds (an escaped child would stay forever).
    deadline = time.time() + 5
    while nobody_processes() > before and time.time() < deadline:
        time.sleep(0.1)
    assert nobody_processes() <= before


def test_a_fork_bomb_in_one_test_leaves_the_next_unharmed():
    """Tests share one sandboxed interpreter; what a test leaves behind dies before the next."""
    src = ("import os\nif input() == 'bomb':\n    while True:\n        try:\n"
           "            os.fork()\n        except OSError:\n            pass\nprint('ok')")
    tests = [{"input": "bomb\n", "output": "ok\n"}, {"input": "calm\n", "output": "ok\n"}]
    first, second = run_tests(src, tests, LIMITS)
    assert first.verdict in (Verdict.TIMEOUT, Verdict.CRASH)
    assert second.verdict is Verdict.PASS


def test_stop_on_failure_skips_the_rest_after_a_timeout():
    t0 = time.monotonic()
    results = run_tests("while True:\n    pass", [{"input": "", "output": "1"}] * 4, LIMITS,
                        stop_on_failure=True)
    assert [r.verdict for r in results] == [Verdict.TIMEOUT] * 4
    assert time.monotonic() - t0 < 2 * LIMITS.wall_s + 3  # one timeout, not four


def test_many_tests_span_several_sandboxed_interpreters():
    tests = [{"input": f"{i}\n", "output": f"{2 * i}\n"} for i in range(CHUNK + 3)]
    tests[CHUNK + 1]["output"] = "wrong\n"
    results = run_tests("print(2 * int(input()))", tests, LIMITS)
    assert [r.verdict for r in results] == (
        [Verdict.PASS] * (CHUNK + 1) + [Verdict.FAIL] + [Verdict.PASS])


def test_memory_bomb_crashes():
    r = run("a = []\nwhile True:\n    a.append(bytearray(50 * 2**20))")
    assert r.verdict is Verdict.CRASH
    assert "MemoryError" in r.detail or "killed" in r.detail


def test_writing_outside_its_dir_fails(planted):
    victim = planted.parent / "new_file.txt"
    src = (f"open({str(planted)!r}, 'w').write('pwned')\n"
           f"open({str(victim)!r}, 'w').write('pwned')\nprint('done')")
    r = run(src)
    assert r.verdict is Verdict.CRASH
    assert planted.read_text() == "TOP-SECRET-42"
    assert not victim.exists()


def test_reading_a_planted_file_fails(planted):
    r = run(f"print(open({str(planted)!r}).read())")
    assert r.verdict is Verdict.CRASH
    assert "TOP-SECRET" not in r.stdout


def test_its_own_dir_is_writable_and_private_per_test():
    src = ("import os\nopen('scratch.txt', 'a').write('x')\n"
           "print(open('scratch.txt').read(), sorted(os.listdir('.')))")
    results = run_tests(src, [{"input": "", "output": None}] * 2, LIMITS)
    assert [r.stdout.split()[0] for r in results] == ["x", "x"]  # no state carried over


class Listener:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received, self.connections = b"", 0
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.settimeout(1)
            try:
                self.received += conn.recv(1024)
            except OSError:
                pass
            conn.close()

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


def test_tcp_connection_is_refused():
    listener = Listener()
    try:
        src = (f"import socket\ns = socket.create_connection(('127.0.0.1', {listener.port}))\n"
               "s.sendall(b'exfiltrated')\nprint('sent')")
        r = run(src)
    finally:
        listener.close()
    assert r.verdict is Verdict.CRASH
    assert listener.connections == 0 and listener.received == b""


@needs_ns
def test_tcp_through_libc_is_refused_by_the_network_namespace():
    """Bypasses the in-interpreter socket guard: only the namespace stops this one."""
    listener = Listener()
    try:
        src = f"""
import ctypes, struct
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.socket(2, 1, 0)
addr = struct.pack('<H', 2) + struct.pack('>H', {listener.port}) + bytes([127, 0, 0, 1])
addr += bytes(8)
rc = libc.connect(fd, addr, len(addr))
assert rc == 0, ctypes.get_errno()
libc.send(fd, b'exfiltrated', 11, 0)
print('sent')
"""
        r = run(src)
    finally:
        listener.close()
    assert r.verdict is Verdict.CRASH
    assert listener.connections == 0 and listener.received == b""


def test_huge_output_is_capped():
    r = run("import sys\nsys.stdout.write('x' * (100 * 2**20))")
    assert r.verdict is Verdict.CRASH and r.detail == "output limit"
    assert len(r.stdout) <= 2000


def test_killing_its_parent_harms_no_one():
    fds = len(os.listdir("/proc/self/fd"))
    src = ("import os, signal\npid = int(input())\n"
           "for target in (os.getppid(), pid):\n"
           "    try:\n        os.kill(target, signal.SIGKILL)\n    except OSError:\n        pass\n"
           "os.kill(pid, signal.SIGKILL)")
    r = run(src, stdin=f"{os.getpid()}\n")
    assert r.verdict is Verdict.CRASH
    assert len(os.listdir("/proc/self/fd")) == fds  # still here, nothing leaked


@pytest.mark.parametrize("src,verdict", [
    ("print(6)\nimport sys\nsys.exit(0)", Verdict.PASS),  # a clean exit after the answer
    ("import sys\nsys.exit('boom')", Verdict.CRASH),
    ("raise SystemExit(0)\nprint(6)", Verdict.FAIL),  # exits cleanly, answer never printed
    ("import os\nprint(6, flush=True)\nos._exit(3)", Verdict.CRASH),
    ("import atexit, os\natexit.register(lambda: os._exit(0))\n1/0", Verdict.FAIL),
])
def test_exit_tricks(src, verdict):
    assert run(src, "", "6\n").verdict is verdict


def test_syntax_error_crashes():
    r = run("def f(:\n    pass")
    assert r.verdict is Verdict.CRASH and "SyntaxError" in r.detail


def test_no_secrets_in_its_environment(monkeypatch):
    monkeypatch.setenv("GSPO_TEST_API_TOKEN", "s3cr3t-token")
    r = run("import os\nprint(sorted(os.environ.items()))")
    assert r.verdict is Verdict.PASS and "s3cr3t" not in r.stdout


@pytest.mark.skipif(not _drops_privileges(), reason="only root can switch to nobody")
def test_runs_as_nobody():
    assert run("import os\nprint(os.getuid())").stdout.strip() == str(NOBODY)
