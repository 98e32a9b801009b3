"""What the benchmarks share: the corpus location, timing summaries, the results table."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def shared_dir(option: str | None) -> Path:
    """The shared/ folder: --shared, else NEWSBOT_SHARED, else beside the checkout."""
    path = Path(option or os.environ.get("NEWSBOT_SHARED") or ROOT.parent / "shared")
    if not (path / "corpus").is_dir():
        sys.exit(f"benchmark needs the shared corpus: not found under {path} (use --shared)")
    return path


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of `values`, linear between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/mean of timings given in seconds, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "mean_ms": statistics.fmean(ms) if ms else float("nan"),
    }


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain Markdown table on stdout."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def write_json(name: str, data: dict[str, Any]) -> Path:
    """Write results to benchmarks/results/NAME.json and return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def status_kb(pid: int, field: str) -> int:
    """A /proc/PID/status figure in kB (VmRSS, VmHWM); 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    found = [pid]
    for parent in found:
        try:
            for task in os.listdir(f"/proc/{parent}/task"):
                with open(f"/proc/{parent}/task/{task}/children", encoding="ascii") as fh:
                    found.extend(int(c) for c in fh.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def run_measured(args: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Run a command to its exit: wall seconds, peak RSS of its process tree (sum) and of
    its main process, and its output."""
    started = time.perf_counter()
    process = subprocess.Popen(
        args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    tree_peak = main_peak = 0
    while process.poll() is None:
        pids = _tree(process.pid)
        tree_peak = max(tree_peak, sum(status_kb(p, "VmRSS") for p in pids))
        main_peak = max(main_peak, status_kb(process.pid, "VmHWM"))
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{args} failed ({process.returncode}): {err[-2000:]}")
    return {
        "seconds": seconds,
        "peak_rss_tree_mb": tree_peak / 1024,
        "peak_rss_main_mb": main_peak / 1024,
        "stdout": out,
    }


def subprocess_env(db: Path, checkout: Path = ROOT, **extra: str) -> dict[str, str]:
    """The environment of a `newsbot` subprocess: ours without NEWSBOT_/TELEGRAM_ settings,
    the database and the checkout to run given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSBOT_", "TELEGRAM_"))}
    env.update({"NEWSBOT_DB": str(db), "PYTHONPATH": str(checkout), **extra})
    return env


def command_update(update_id: int, chat_id: int, text: str) -> dict[str, Any]:
    """A private-chat message update carrying a /command, as Telegram sends it."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Reader"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Reader"},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
        },
    }
