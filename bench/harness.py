"""What the bench/ scripts share: device choice, timing with warm-up and synchronisation, peak
memory, a description of the machine, markdown tables and the JSON result file.

Timing: ``measure(fn)`` runs ``fn`` ``warmup`` times untimed, then ``repeats`` times, each timed
with ``time.perf_counter`` between two ``torch.cuda.synchronize()`` calls on a GPU (the device
queue is drained before the clock starts and before it stops); the median is what tables show.

Peak memory (``RowMonitor``): on a GPU, ``torch.cuda.max_memory_allocated`` over the block (tensors
PyTorch allocated, after ``reset_peak_memory_stats``). On the CPU, the largest resident set size
(RSS, from /proc/self/statm) seen by a thread sampling every 5 ms during the block: the whole
process (Python, libraries, models and activations), so compare rows of one run. ``ru_maxrss``
(the process's all-time peak, monotone) is recorded in the JSON beside it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from statistics import median
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here downloads
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

RESULTS = ROOT / "bench" / "results"
_FLUSH_DENORMAL = False  # set by setup()


# -- arguments and device -----------------------------------------------------------------------
class _Help(argparse.RawDescriptionHelpFormatter):
    """Shows an option's default unless its help already speaks of it (or it has none)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


def make_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=_Help)
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N; auto: cuda if available")
    parser.add_argument(
        "--out", default=None, help="JSON result path (default bench/results/<name>-<device>-<date>.json)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    return parser


def setup(args: argparse.Namespace, flush_denormal: bool = False) -> torch.device:
    """The device of ``--device``; sets ``--threads``. ``flush_denormal``: treat denormal floats as
    zero on the CPU (random weights produce them, and they make CPU arithmetic many times slower)."""
    global _FLUSH_DENORMAL
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else "cpu"
        if args.device == "auto"
        else args.device
    )
    if args.threads:
        torch.set_num_threads(args.threads)
    if flush_denormal:
        _FLUSH_DENORMAL = torch.set_flush_denormal(True)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- timing -------------------------------------------------------------------------------------
def timed(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float]:
    """(fn(), seconds), the device's queue drained before and after."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def measure(fn: Callable[[], Any], device: torch.device, warmup: int = 1, repeats: int = 3) -> dict[str, Any]:
    """{"median", "min", "max", "times"} in seconds over ``repeats`` timed calls after ``warmup``."""
    for _ in range(warmup):
        timed(fn, device)
    times = [timed(fn, device)[1] for _ in range(max(1, repeats))]
    return {"median": median(times), "min": min(times), "max": max(times), "times": times, "warmup": warmup}


# -- memory and load ---------------------------------------------------------------------------
def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _cpu_ticks() -> tuple[int, int]:
    """(busy ticks of the whole machine, ticks of this process and its reaped children)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    with open("/proc/self/stat") as f:
        own = f.read().rsplit(")", 1)[1].split()
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7], sum(int(x) for x in own[11:15])  # utime..cstime


class RowMonitor:
    """``with RowMonitor(device) as m: ...``, then ``m.mib``: peak memory (see the module docstring),
    and ``m.other_cpu``: CPU cores kept busy by *other* processes during the block, on average (the
    machine may be shared; a row with a high value was slowed by them). Live child processes (DataLoader
    workers until they exit, compile workers) count as others."""

    def __init__(self, device: torch.device, interval: float = 0.005):
        self.device, self.interval = device, interval
        self.peak, self.other_cpu = 0, None
        self.method = (
            "torch.cuda.max_memory_allocated"
            if device.type == "cuda"
            else "peak process RSS sampled every 5 ms (/proc/self/statm)"
        )

    def __enter__(self) -> "RowMonitor":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.peak = _rss_bytes()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        self._ticks, self._start = _cpu_ticks(), time.perf_counter()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss_bytes())

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, _rss_bytes())
        busy, own = (b - a for a, b in zip(self._ticks, _cpu_ticks()))
        seconds = time.perf_counter() - self._start
        self.other_cpu = max(0.0, (busy - own) / os.sysconf("SC_CLK_TCK") / seconds) if seconds > 0 else None

    @property
    def mib(self) -> float:
        return self.peak / 2**20


def max_rss_mib() -> float:
    """The process's all-time peak RSS (``resource.getrusage``; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def own_peak_rss_mib() -> float:
    """This process's own peak RSS: /proc/self/status VmHWM (the high-water mark of its address space). Linux's
    ``ru_maxrss`` starts a spawned process at its parent's peak (exec keeps the larger of the two), so in a child of
    a big parent it reports the parent's memory until the child outgrows it."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- machine ------------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return head + ("+dirty" if dirty else "") if head else None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "git": _git_commit(),
        "device": str(device),
        "flush_denormal": _FLUSH_DENORMAL,
        "loadavg_at_end": os.getloadavg(),
    }
    try:
        import diffusers
        import transformers

        info.update(diffusers=diffusers.__version__, transformers=transformers.__version__)
    except ImportError:
        pass
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            gpu_capability=f"{props.major}.{props.minor}",
            gpu_sms=props.multi_processor_count,
            cudnn=torch.backends.cudnn.version(),
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
            tf32_cudnn=torch.backends.cudnn.allow_tf32,
        )
    return info


def device_label(device: torch.device) -> str:
    """ "cpu" or the GPU's name shortened for file names (e.g. "cuda-NVIDIA-H100-80GB-HBM3")."""
    if device.type != "cuda":
        return "cpu"
    return "cuda-" + "".join(c if c.isalnum() else "-" for c in torch.cuda.get_device_name(device)).strip("-")


# -- output -------------------------------------------------------------------------------------
def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        if abs(value) >= 0.01:
            return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
        return f"{value:.2g}"
    return str(value)


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_results(
    args: argparse.Namespace, name: str, device: torch.device, payload: dict[str, Any], command: str | None = None
) -> Path:
    """Write ``payload`` (plus the machine and the command, default this process's) as JSON; return the path."""
    path = Path(args.out) if args.out else RESULTS / f"{name}-{device_label(device)}-{datetime.date.today()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": name,
        "command": command or " ".join([Path(sys.executable).name] + sys.argv),
        "args": vars(args),
        "machine": machine_info(device),
        "max_rss_mib": round(max_rss_mib(), 1),
        **payload,
    }
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return path


def report(
    args: argparse.Namespace,
    name: str,
    device: torch.device,
    title: str,
    rows: list[dict[str, Any]],
    columns: list[str],
) -> int:
    """Print ``title`` and the table, write the JSON; the script's exit status (0)."""
    print(f"\n{title}")
    print(markdown_table(rows, columns))
    path = write_results(args, name, device, {"rows": rows})
    print(f"\nwrote {path}")
    return 0
