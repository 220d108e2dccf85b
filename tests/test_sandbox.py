"""Hostile programs through the code verifier: each gets the right verdict in time and harms
nothing outside its sandbox, whether the caller is root or an ordinary user."""

import argparse
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from gspo_repro.verifiers import Verdict, run_tests, score_program
from gspo_repro.verifiers import sandbox as sbx
from gspo_repro.verifiers.sandbox import CHUNK, NOBODY, Limits, SandboxUnavailable, isolation
from tests.hostile_probe import Listener

LIMITS = Limits(wall_s=2.0, cpu_s=2, mem_mb=256)
MODE = isolation()  # GSPO_SANDBOX's mode; with no sandbox here every test below fails at once
needs_ns = pytest.mark.skipif(MODE == "rlimits", reason="GSPO_SANDBOX=rlimits: no namespaces")
SANDBOX_UID = NOBODY if os.geteuid() == 0 else os.getuid()  # whom the programs run as
REPO = Path(__file__).resolve().parents[1]


def run(source, stdin="", expected=None, limits=LIMITS):
    t0 = time.monotonic()
    [result] = run_tests(source, [{"input": stdin, "output": expected}], limits)
    elapsed = time.monotonic() - t0
    assert elapsed < limits.wall_s + 3, f"took {elapsed:.1f}s"
    return result


def sandbox_user_processes() -> int:
    out = subprocess.run(["ps", "-u", str(SANDBOX_UID), "-o", "pid="], capture_output=True,
                         text=True)
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
    before = sandbox_user_processes()
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    r = run(bomb)
    assert r.verdict in (Verdict.TIMEOUT, Verdict.CRASH)
    # Every forked child is gone: the kernel tears a killed PID namespace down
    # asynchronously, so allow it a few seconds (an escaped child would stay forever).
    deadline = time.time() + 5
    while sandbox_user_processes() > before and time.time() < deadline:
        time.sleep(0.1)
    assert sandbox_user_processes() <= before


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


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can switch to nobody")
def test_runs_as_nobody():
    assert run("import os\nprint(os.getuid())").stdout.strip() == str(NOBODY)


def test_a_test_finds_its_run_dir_emptied_of_the_previous_test_s_files():
    """Run directories share one tmpfs: what a test wrote (even locked away) goes before the
    next, so a full run dir does not starve the next test."""
    src = ("import os\nos.makedirs('a/b')\nfor n in range(40):\n"
           "    open('a/b/f%d' % n, 'wb').write(bytes(2**20 - 1))\n"
           "os.chmod('a', 0)\nprint('wrote')")
    results = run_tests(src, [{"input": "", "output": "wrote"}] * 3, Limits(wall_s=4, cpu_s=4))
    assert [r.verdict for r in results] == [Verdict.PASS] * 3  # 3 x 40 MiB: each had room


@pytest.fixture
def fresh_modes():
    """Forget the self-test results, before and after: a test may fake the tools found."""
    sbx._unavailable.cache_clear()
    yield
    sbx._unavailable.cache_clear()


def test_without_bubblewrap_code_is_refused_with_one_line(monkeypatch, fresh_modes):
    monkeypatch.delenv("GSPO_SANDBOX", raising=False)
    real = shutil.which
    monkeypatch.setattr(sbx.shutil, "which", lambda name: None if name == "bwrap" else real(name))
    with pytest.raises(SandboxUnavailable) as e:
        score_program("```python\nprint(1)\n```", [{"input": "", "output": "1"}])
    msg = str(e.value)
    assert "\n" not in msg and "bwrap is not installed" in msg
    assert "apt-get install bubblewrap" in msg and "GSPO_SANDBOX=unshare" in msg
    with pytest.raises(SandboxUnavailable):
        run_tests("print(1)", [{"input": "", "output": "1"}])
    # the command line turns it into that one line, not a traceback
    from gspo_repro import cli

    parser = argparse.ArgumentParser()
    parser.set_defaults(verb="rl", func=lambda args: run_tests("print(1)", [{"input": ""}]))
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    with pytest.raises(SystemExit, match="^gspo-repro rl: code rewards refused: no bwrap"):
        cli.main([])


def test_a_bubblewrap_too_old_for_the_caps_is_refused(monkeypatch, tmp_path, fresh_modes):
    fake = tmp_path / "bwrap"  # Ubuntu 22.04's: no --size (0.7), no --disable-userns (0.8)
    fake.write_text("#!/bin/sh\necho bubblewrap 0.6.1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.delenv("GSPO_SANDBOX", raising=False)
    with pytest.raises(SandboxUnavailable, match="bwrap 0.6 is older than 0.8"):
        isolation()


def test_a_sandbox_that_does_not_start_is_an_error_not_a_verdict(monkeypatch, tmp_path):
    """No runner twice (the sandbox's fault, not the program's): one error, no CRASH wall."""
    starts = tmp_path / "starts"
    monkeypatch.setattr(sbx, "_command", lambda *a: [
        "sh", "-c", f"echo >> {starts}; echo 'bwrap: out of namespaces' >&2; exit 1"])
    with pytest.raises(SandboxUnavailable, match="did not start: bwrap: out of namespaces"):
        run_tests("print(1)", [{"input": "", "output": "1"}] * 3)
    assert len(starts.read_text().splitlines()) == 2  # once more, in case it was passing


def test_an_unknown_mode_is_refused(monkeypatch):
    monkeypatch.setenv("GSPO_SANDBOX", "docker")
    with pytest.raises(SandboxUnavailable, match="auto, bwrap, unshare, rlimits"):
        isolation()


@pytest.mark.parametrize("mode", ["bwrap", "unshare", "rlimits"])
def test_each_mode_runs_programs_when_named(monkeypatch, mode):
    monkeypatch.setenv("GSPO_SANDBOX", mode)
    try:
        assert isolation() == mode
    except SandboxUnavailable as e:
        pytest.skip(str(e))
    src = "import os\nprint(int(input()) * 2, os.getuid())"
    results = run_tests(src, [{"input": "21\n"}, {"input": "4\n"}], LIMITS)
    # unshare maps an ordinary caller to root of its user namespace (its rights on the host)
    uid = str(0 if mode == "unshare" and os.geteuid() else SANDBOX_UID)
    assert [r.stdout.split() for r in results] == [["42", uid], ["8", uid]]


def test_eval_reports_name_the_isolation(monkeypatch, fresh_modes):
    from gspo_repro.eval.scoring import sandbox_isolation
    from gspo_repro.eval.synthetic import evaluate
    from gspo_repro.rollout import Sample
    from gspo_repro.tasks import make_split

    class Engine:  # answers every prompt with the reference solution's fenced code
        def generate(self, prompts, n, *a):
            return [Sample(i, f"```python\n{tasks[i].reference}\n```", (1,), True)
                    for i in range(len(prompts)) for _ in range(n)]

    tasks = make_split("code", "eval", 2, seed=0)
    rep = evaluate(None, None, tasks, 1, 1.0, 8, 0, 1, engine=Engine())
    assert rep["isolation"] == MODE and rep["pass@1"] == 1.0
    real = shutil.which
    monkeypatch.setattr(sbx.shutil, "which", lambda name: None if name == "bwrap" else real(name))
    monkeypatch.delenv("GSPO_SANDBOX", raising=False)
    sbx._unavailable.cache_clear()
    assert sandbox_isolation({"math"}) == "none (no code run)"  # math runs no code
    with pytest.raises(SandboxUnavailable):
        sandbox_isolation({"math", "code"})


# The hostile set, run by tests/hostile_probe.py as the caller: as root (when the tests run
# as root) and as an unprivileged user (made here when the tests run as root).
HOSTILE_USERS = ["root", "unprivileged"] if os.geteuid() == 0 else ["unprivileged"]
PROBE_USER = "gspo-sbx-probe"


def _unprivileged_user():
    """(uid, gid, made here) of an ordinary user, made with useradd when missing; skips where
    it cannot."""
    made = False
    try:
        pw = pwd.getpwnam(PROBE_USER)
    except KeyError:
        if not shutil.which("useradd"):
            pytest.skip("the tests run as root and useradd is missing: no unprivileged user")
        p = subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            PROBE_USER], capture_output=True, text=True)
        if p.returncode:
            pytest.skip(f"useradd {PROBE_USER} failed: {p.stderr.strip()}")
        pw, made = pwd.getpwnam(PROBE_USER), True
    return pw.pw_uid, pw.pw_gid, made


@pytest.fixture(scope="module", params=HOSTILE_USERS)
def hostile(request):
    """What tests/hostile_probe.py saw, run as the caller ``request.param``."""
    if MODE != "bwrap":
        pytest.skip(f"the hostile set checks bwrap's guarantees; GSPO_SANDBOX={MODE} is weaker")
    as_root = request.param == "root"
    uid, gid, made = (os.getuid(), os.getgid(), False) if as_root or os.geteuid() else (
        _unprivileged_user())
    dirs = []
    try:
        # The code under test and the probe, copied where any user can read them
        code = tempfile.mkdtemp(prefix="gspo-sbx-code-")
        dirs.append(code)
        shutil.copytree(REPO / "gspo_repro" / "verifiers", Path(code) / "gspo_repro" / "verifiers",
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(REPO / "gspo_repro" / "__init__.py", Path(code) / "gspo_repro")
        shutil.copy(REPO / "tests" / "hostile_probe.py", code)
        os.chmod(code, 0o755)
        # The caller's home and temp dir, and a dir of the caller's in the repository (in
        # its git-ignored .pytest_cache), or in the temp dir where the checkout is read-only
        home = tempfile.mkdtemp(prefix="gspo-sbx-home-")
        tmp = tempfile.mkdtemp(prefix="gspo-sbx-tmp-")
        dirs += [home, tmp]
        try:
            (REPO / ".pytest_cache").mkdir(exist_ok=True)
            work = tempfile.mkdtemp(prefix="gspo-sbx-work-", dir=REPO / ".pytest_cache")
        except OSError:
            work = tempfile.mkdtemp(prefix="gspo-sbx-work-")
        dirs.append(work)
        for d in (home, tmp, work):
            os.chown(d, uid, gid)
            os.chmod(d, 0o700)
        # the venv's interpreter where the caller can run it, else the system's
        python = sys.executable
        if uid != os.getuid() and not sbx._world_executable(python):
            python = shutil.which("python3", path="/usr/bin:/usr/local/bin") or python
        cmd = [python, "-B", str(Path(code) / "hostile_probe.py")]
        if not as_root and os.geteuid() == 0:
            cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--", *cmd]
        secret = f"gspo-secret-{uuid.uuid4().hex}"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "TMPDIR": tmp,
               "PYTHONPATH": code, "GSPO_PROBE_SECRET": secret, "LANG": "C.UTF-8"}
        cfg = {"home": home, "workdir": work, "marker": f"gspo-daemon-{uuid.uuid4().hex}"}
        p = subprocess.run(cmd, input=json.dumps(cfg), capture_output=True, text=True, env=env,
                           cwd=tmp, timeout=240)
        assert p.returncode == 0, p.stderr[-3000:]
        rep = json.loads(p.stdout)
        assert rep["uid"] == uid and rep["isolation"] == "bwrap"
        yield {**rep, **cfg, "secret": secret}
    finally:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
        if made:
            subprocess.run(["userdel", PROBE_USER], capture_output=True)


def _out(rec: dict) -> dict:
    return json.loads(rec["stdout"])


def test_hostile_writes_reach_nothing_outside_the_run_dir(hostile):
    """Overwrite a file in the caller's home and in a dir of the caller's in the repository,
    and create one in each: done without a sandbox, none happens in it."""
    targets = [os.path.join(d, n) for d in (hostile["home"], hostile["workdir"])
               for n in ("victim.txt", "new.txt")]
    sandboxed, direct = hostile["sandboxed"]["write"], hostile["direct"]["write"]
    assert sandboxed["verdict"] == "pass"
    assert all(_out(sandboxed)[t] != "written" for t in targets)
    assert all(sandboxed["files"][t] == "original" for t in targets if t.endswith("victim.txt"))
    assert not any(t in sandboxed["files"] for t in targets if t.endswith("new.txt"))
    assert all(json.loads(direct["stdout"])[t] == "written" for t in targets)  # the probe bites
    assert all(direct["files"][t] == "pwned" for t in targets)


def test_hostile_disk_filling_stops_at_the_cap(hostile):
    """Files just under the output limit, 256 MiB of them: ENOSPC inside, at the cap, and the
    host's disks lose no more than the cap; nothing is left behind."""
    rec = hostile["sandboxed"]["disk"]
    out, cap = _out(rec), hostile["limits_disk_mb"] << 20
    assert out["error"] == "ENOSPC"
    assert cap // 2 < out["bytes"] <= cap  # the run dir has room, up to the cap and no more
    assert rec["free_space_drop"] < cap
    assert hostile["left_in_tmp"]["sandboxed"] == []


def test_hostile_proc_shows_only_the_sandbox(hostile):
    """Scan /proc for the caller's process and the secret in its environment: without a
    sandbox both are there; in it, /proc holds the runner and the program only."""
    sandboxed, direct = _out(hostile["sandboxed"]["proc"]), _out(hostile["direct"]["proc"])
    assert sandboxed == {"pids": [1], "secret": None, "caller_seen": False}
    assert direct["secret"] == hostile["secret"] and direct["caller_seen"]


def test_hostile_daemon_dies_with_its_verdict(hostile):
    """A double-forked, setsid daemon: without a sandbox it outlives its program; in one,
    nothing with its marker runs once run_tests has returned."""
    sandboxed, direct = hostile["sandboxed"]["daemon"], hostile["direct"]["daemon"]
    assert sandboxed["verdict"] == "pass" and sandboxed["stdout"].strip() == "spawned"
    assert sandboxed["survivors"] == []
    assert direct["stdout"].strip() == "spawned" and direct["survivors"]


def test_hostile_network_reaches_no_listener(hostile):
    """connect() through libc to a listener of the caller's on 127.0.0.1."""
    sandboxed, direct = hostile["sandboxed"]["network"], hostile["direct"]["network"]
    assert _out(sandboxed)["rc"] != 0 and sandboxed["connections"] == 0
    assert _out(direct)["rc"] == 0 and direct["connections"] >= 1


def test_hostile_secrets_stay_with_the_caller(hostile):
    """A secret in the caller's environment and in a file only the caller can read."""
    sandboxed, direct = _out(hostile["sandboxed"]["secrets"]), _out(hostile["direct"]["secrets"])
    assert sandboxed["env"] is None and hostile["secret"] not in sandboxed["file"]
    assert direct == {"env": hostile["secret"], "file": hostile["secret"]}
