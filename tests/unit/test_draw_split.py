"""`etl.analyze.draw_split`: the report's figures drawn over two processes are the same
figures, in the same order, as drawn in one; a failing child changes nothing; a failing
figure fails as it would in one process, and leaves no child behind."""

from __future__ import annotations

import os
import sys

import pytest

from analysis.figure_style import Figure
from etl import analyze

SPARE_CORE = analyze.spare_core  # before the fixture below stands in for it

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2,
                                reason="the split runs on Linux with 2+ cores only")


@pytest.fixture(autouse=True)
def idle_machine(monkeypatch):
    """The split as on an idle machine (the shared test machine's load must not decide)."""
    monkeypatch.setattr(analyze, "spare_core", lambda: True)


def job(k: int, parent: int | None = None, fail_in_child: bool = False, fail: bool = False):
    def run():
        if fail or (fail_in_child and os.getpid() != parent):
            raise ValueError(f"figure {k} failed")
        if k == 3:
            return None  # a job may give no figure (a PH plot without a test)
        return Figure(name=f"f{k}", title=f"F{k}", png=bytes([k]) * 1000, svg=b"<svg/>" + bytes(k))
    return run


def children() -> set[int]:
    """This process's live child pids (Linux /proc)."""
    me = str(os.getpid())
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == me:
                out.add(int(d))
    return out


def test_split_gives_the_same_figures_in_the_same_order():
    jobs = [job(k) for k in range(11)]
    split = analyze.draw_split(jobs)
    assert [(f.name, f.png, f.svg) for f in split] == \
        [(f.name, f.png, f.svg) for f in (j() for j in jobs) if f is not None]
    assert [f.name for f in split] == [f"f{k}" for k in range(11) if k != 3]
    assert not children()


def test_a_failing_child_is_replaced_by_the_parent():
    parent = os.getpid()
    jobs = [job(k, parent, fail_in_child=True) for k in range(10)]
    assert [f.name for f in analyze.draw_split(jobs)] == [f"f{k}" for k in range(10) if k != 3]
    assert not children()


@pytest.mark.parametrize("bad", [4, 5])  # one the parent draws, one the child draws
def test_a_failing_figure_fails_as_in_one_process(bad):
    jobs = [job(k, fail=(k == bad)) for k in range(10)]
    with pytest.raises(ValueError, match=f"figure {bad} failed"):
        analyze.draw_split(jobs)
    assert not children()


def test_few_jobs_stay_in_one_process(monkeypatch):
    monkeypatch.setattr(os, "fork", lambda: pytest.fail("forked for 2 jobs"))
    assert [f.name for f in analyze.draw_split([job(0), job(1)])] == ["f0", "f1"]


def test_killing_analyze_kills_its_drawing_child(tmp_path):
    """kill -9 of the parent while both draw: the forked child goes with it (no orphan)."""
    import signal
    import subprocess
    import time

    script = tmp_path / "slow.py"
    script.write_text(
        "import time\n"
        "from etl import analyze\n"
        "from etl.analyze import draw_split\n"
        "analyze.spare_core = lambda: True\n"
        "def slow():\n"
        "    time.sleep(60)\n"
        "draw_split([slow] * 10)\n")
    proc = subprocess.Popen([sys.executable, str(script)], cwd=os.getcwd())
    try:
        child = None
        for _ in range(200):  # the child appears once the imports are done
            time.sleep(0.05)
            kids = [int(d) for d in os.listdir("/proc") if d.isdigit() and _parent_of(d) == proc.pid]
            if kids:
                child = kids[0]
                break
        assert child is not None, "draw_split did not fork"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for _ in range(100):
            if not os.path.exists(f"/proc/{child}") or _state(child) == "Z":
                break
            time.sleep(0.05)
        assert not os.path.exists(f"/proc/{child}") or _state(child) == "Z"
    finally:
        proc.kill()


def _stat(pid) -> list[str]:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return ["X", "0"]


def _parent_of(pid) -> int:
    return int(_stat(pid)[1])


def _state(pid) -> str:
    return _stat(pid)[0]


def test_a_busy_machine_stays_in_one_process(monkeypatch):
    monkeypatch.setattr(analyze, "spare_core", lambda: False)
    monkeypatch.setattr(os, "fork", lambda: pytest.fail("forked on a busy machine"))
    assert len(analyze.draw_split([job(k) for k in range(10)])) == 9


@pytest.mark.parametrize(("cores", "busy", "spare"), [(2, 0, True), (2, 40, True), (2, 60, False),
                                                     (1, 0, False), (8, 640, True), (8, 660, False)])
def test_spare_core_reads_how_busy_the_cores_are(monkeypatch, cores, busy, spare):
    """`busy` jiffies of other work in a window of 100 jiffies per core: a spare core
    when 1.5 cores stay idle (this process's and the child's)."""
    samples = iter([(0, 0), (cores * 100 - busy, cores * 100)])
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    monkeypatch.setattr(analyze, "_cpu_times", lambda: next(samples))
    assert SPARE_CORE(window_s=0) is spare


def test_cpu_times_reads_proc_stat():
    idle, total = analyze._cpu_times()
    assert 0 < idle < total
