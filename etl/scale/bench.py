"""`make bench`: carpool at consortium scale, side by side with raw DuckDB, measured in one run.

    make bench                                  # 100,000 patients, 8 sites, 100 lab rows each (10M)
    make bench BENCH_PATIENTS=5000              # quick
    BENCH_REPEATS=3 BENCH_DIR=/tmp/b python -m etl.scale.bench

Writes a synthetic consortium (`carpool synth`), then times, as subprocesses, with the
median over BENCH_REPEATS runs:
- the floor: raw DuckDB `read_csv` -> Parquet of the same lab files;
- `carpool refresh --full` (every site read, mapped, validated; warehouse built), its
  ratio to the floor and its peak memory (largest process, and the process tree summed);
- the no-change refresh, beside the interpreter + CLI start-up (`carpool --help`);
- `carpool analyze` on the consortium's warehouse (KM, log-rank, Cox, report);
- the demo end to end, cold (`carpool demo` into an empty output folder).
Nothing here is a test: the targets in docs/performance.md are goals, not assertions.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RAW = """
import sys, duckdb
con = duckdb.connect()
files = sys.argv[2:]
quote = lambda s: "'" + s.replace("'", "''") + "'"  # noqa: E731 (paths as SQL literals)
con.execute(f"COPY (SELECT * FROM read_csv([{', '.join(map(quote, files))}])) TO {quote(sys.argv[1])} "
            "(FORMAT PARQUET)")
"""


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    mem = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0)
    return f"{os.cpu_count()} cores ({cpu}), {mem / 1024 / 1024:.1f} GiB RAM, Python {sys.version.split()[0]}"


def _tree_rss(pid: int) -> tuple[int, int]:
    """Resident memory (bytes) of the largest process and of the whole tree (Linux /proc)."""
    total, largest, todo = 0, 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                    total, largest = total + rss, max(largest, rss)
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return largest, total


def run(cmd: list[str], cwd: Path | None = None) -> tuple[float, int, int, int]:
    """Wall seconds, exit code, peak RSS of the largest process, peak RSS of the tree (bytes),
    sampled every 50 ms from /proc (ru_maxrss would carry this process's own high-water
    mark over fork+exec)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0, 0]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            largest, total = _tree_rss(proc.pid)
            peak[0], peak[1] = max(peak[0], largest), max(peak[1], total)
            done.wait(0.05)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    _, status, _usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    done.set()
    watcher.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode not in (0,):
        print(f"  ! {' '.join(cmd[:3])}... exit {proc.returncode}: {err.strip()[-300:]}", file=sys.stderr)
    return seconds, proc.returncode, peak[0], peak[1]


def repeat(cmd: list[str], n: int, before=None, cwd: Path | None = None) -> dict:
    runs = []
    for _ in range(n):
        if before:
            before()
        runs.append(run(cmd, cwd))
    secs = [r[0] for r in runs]
    return {"median": statistics.median(secs), "min": min(secs), "max": max(secs),
            "rss": max(r[2] for r in runs), "tree": max(r[3] for r in runs), "exit": max(r[1] for r in runs)}


def _demo_config(root: Path) -> Path:
    raw = yaml.safe_load((ROOT / "carpool.yml").read_text(encoding="utf-8"))
    raw["output_dir"] = str(root / "demo-out")
    for s in raw["sites"]:
        s["mapping"] = str(ROOT / s["mapping"])
    path = root / "demo.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def main() -> int:
    from etl.scale.synth import synth

    patients = int(os.environ.get("BENCH_PATIENTS") or 100_000)
    sites = int(os.environ.get("BENCH_SITES") or 8)
    labs = int(os.environ.get("BENCH_LABS") or 100)
    n = int(os.environ.get("BENCH_REPEATS") or 3)
    root = Path(os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix="carpool-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    carpool = str(Path(sys.executable).parent / "carpool")
    print(f"carpool bench: {patients:,} patients, {sites} sites, {labs} lab rows each "
          f"({patients * labs:,} lab rows); median of {n}; in {root}")
    print(f"machine: {machine()}")
    t0 = time.perf_counter()
    cfg = synth(root / "consortium", patients, sites, labs)
    print(f"synth: {time.perf_counter() - t0:.1f} s")
    lab_files = [str(p) for p in sorted((root / "consortium" / "sites").glob("*/export/labs.csv"))]
    out = cfg.parent / "out"
    results = {}
    results["raw"] = repeat([sys.executable, "-c", RAW, str(root / "raw.parquet"), *lab_files], n)
    results["refresh"] = repeat([carpool, "refresh", "--full", "--config", str(cfg)], n)
    results["nochange"] = repeat([carpool, "refresh", "--config", str(cfg)], n)
    results["startup"] = repeat([carpool, "--help"], n)
    results["analyze"] = repeat([carpool, "analyze", "--config", str(cfg)], n)
    demo = _demo_config(root)
    results["demo"] = repeat([carpool, "demo", "--config", str(demo)], n,
                             before=lambda: shutil.rmtree(root / "demo-out", ignore_errors=True))
    floor = results["raw"]["median"]
    labels = {
        "raw": "floor: DuckDB read_csv -> Parquet (lab files)",
        "refresh": "carpool refresh --full",
        "nochange": "carpool refresh (no change)",
        "startup": "interpreter + CLI start (carpool --help)",
        "analyze": "carpool analyze (KM, log-rank, Cox, report)",
        "demo": "demo cold: carpool demo (4 centers)",
    }
    print()
    print(f"| {'step':<46} | {'median s':>8} | {'min-max s':>11} | {'x floor':>7} | {'RSS max MB':>10} | "
          f"{'RSS tree MB':>11} |")
    print(f"|{'-' * 48}|{'-' * 10}:|{'-' * 13}:|{'-' * 9}:|{'-' * 12}:|{'-' * 13}:|")
    for key, label in labels.items():
        r = results[key]
        ratio = f"{r['median'] / floor:.1f}" if key in ("raw", "refresh") else ""
        flag = "" if r["exit"] == 0 else f" (exit {r['exit']})"
        print(f"| {label + flag:<46} | {r['median']:8.2f} | {r['min']:5.1f}-{r['max']:<5.1f} | {ratio:>7} | "
              f"{r['rss'] / 2**20:10.0f} | {r['tree'] / 2**20:11.0f} |")
    extra = results["nochange"]["median"] - results["startup"]["median"]
    print(f"\nno-change refresh beyond start-up: {extra:.2f} s; refresh / floor: "
          f"{results['refresh']['median'] / floor:.1f}x")
    if not os.environ.get("BENCH_DIR"):
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"kept: {root} (warehouse: {out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
