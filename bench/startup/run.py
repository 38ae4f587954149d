#!/usr/bin/env python3
"""Start-up benchmark: the wizard against a minimal hello-world Tauri window built the same way.

Measures, side by side in one run (alternating, so both see the same machine state):
  - start to first paint: from spawning the process to the page's second animation frame, which
    calls a command that prints ENTRA_SETUP_READY (the wizard's `ui_ready`, the same in hello);
  - idle RSS: 3 s after first paint, the summed resident memory of the app and its WebKit
    child processes;
  - release binary size.
Writes the results into docs/PERFORMANCE.md between the bench:startup markers.

  xvfb-run -a python3 bench/startup/run.py [--runs N (default 25)] [--no-build]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
WIZARD = TARGET / "release" / "entra-setup-desktop"
HELLO = TARGET / "release" / "hello-tauri"
TARGET_START, TARGET_RSS = 1.2, 1.3


def build():
    subprocess.run(["npm", "run", "--silent", "build"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "entra-setup-app", "--features", "custom-protocol"], cwd=ROOT, check=True)
    env = dict(os.environ, CARGO_TARGET_DIR=str(TARGET))
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT / "bench/startup/hello", check=True, env=env)


def tree_rss_kb(pid):
    """Resident memory of pid and all its descendants, in KiB."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        except (OSError, ValueError, IndexError):
            pass
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
        todo.extend(children.get(p, []))
    return total


def one_run(binary, extra_env=None):
    home = tempfile.mkdtemp(prefix="bench-home-")
    env = {k: v for k, v in os.environ.items() if k != "WEBKIT_DISABLE_DMABUF_RENDERER"}
    env.update(extra_env or {})
    env = dict(env, HOME=home, XDG_CONFIG_HOME=f"{home}/config", XDG_DATA_HOME=f"{home}/data",
               XDG_CACHE_HOME=f"{home}/cache", ENTRA_SETUP_BENCH="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    try:
        for line in proc.stdout:
            if "ENTRA_SETUP_READY" in line:
                break
        else:
            raise RuntimeError(f"{binary.name} exited before painting")
        start_ms = (time.perf_counter() - t0) * 1000
        time.sleep(3)
        rss_mb = tree_rss_kb(proc.pid) / 1024
        return start_ms, rss_mb
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(home, ignore_errors=True)


def section(title, why, results, runs):
    def med(name, i):
        return statistics.median(r[i] for r in results[name])

    ws, hs = med("wizard", 0), med("hello", 0)
    wr, hr = med("wizard", 1), med("hello", 1)
    start_ratio, rss_ratio = ws / hs, wr / hr
    ok = lambda v, t: "meets" if v <= t else "MISSES"
    return "\n".join([
        f"### {title}",
        "",
        f"{why[0].upper()}{why[1:]}.",
        "",
        "| | Wizard | Hello-world Tauri | Ratio | Target |",
        "|---|---:|---:|---:|---|",
        f"| Start to first paint | {ws:.0f} ms | {hs:.0f} ms | {start_ratio:.2f}× | ≤ {TARGET_START}× ({ok(start_ratio, TARGET_START)}) |",
        f"| Idle RSS (app + WebKit processes) | {wr:.0f} MiB | {hr:.0f} MiB | {rss_ratio:.2f}× | ≤ {TARGET_RSS}× ({ok(rss_ratio, TARGET_RSS)}) |",
        "",
        "Runs (start ms / RSS MiB): wizard " + ", ".join(f"{s:.0f}/{r:.0f}" for s, r in results["wizard"])
        + "; hello " + ", ".join(f"{s:.0f}/{r:.0f}" for s, r in results["hello"]) + ".",
    ])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if not os.environ.get("DISPLAY"):
        sys.exit("needs a display: run under xvfb-run -a")
    if not args.no_build:
        build()
    one_run(WIZARD), one_run(HELLO)  # warm the page cache for both, then measure
    sections = []
    configs = [
        ("As shipped", None, "each app picks WebKitGTK's renderer itself (shared-memory when the machine has no GPU render node, as here)"),
        ("DMABUF renderer forced", {"WEBKIT_DISABLE_DMABUF_RENDERER": "0"}, "WebKitGTK's DMABUF renderer, which without a GPU falls back to software"),
    ]
    for title, extra, why in configs:
        results = {"wizard": [], "hello": []}
        for _ in range(args.runs):
            results["wizard"].append(one_run(WIZARD, extra))
            results["hello"].append(one_run(HELLO, extra))
        sections.append(section(title, why, results, args.runs))
    table = "\n\n".join([
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores under Xvfb (no GPU); median of {args.runs} alternating runs each, after one warm-up run.",
        *sections,
        f"Release binary: wizard {WIZARD.stat().st_size / 2**20:.1f} MiB, hello-world {HELLO.stat().st_size / 2**20:.1f} MiB "
        f"({WIZARD.stat().st_size / HELLO.stat().st_size:.2f}×).",
    ])
    print(table)
    doc = ROOT / "docs" / "PERFORMANCE.md"
    text = doc.read_text()
    begin, end = "<!-- bench:startup:begin -->", "<!-- bench:startup:end -->"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        doc.write_text(f"{head}{begin}\n{table}\n{end}{tail}")
        print(f"updated {doc}")


if __name__ == "__main__":
    main()
