"""Helpers for the loopback Spark standalone cluster of ``infra/cluster`` (stdlib only).

``infra/cluster/up.sh`` uses them to wait for the master, the workers and the MLflow
server; the cluster tests use them to read what the master knows about applications.
Run as ``python -m marketlab.cluster COMMAND`` (see ``--help``).

The master's web UI serves its whole state as JSON at ``http://HOST:PORT/json/``:
``aliveworkers``, ``workers`` (each with ``state``), ``activeapps`` and ``completedapps``
(each with ``id``, ``name``, ``state``, ``duration`` in ms).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

# What the marketlab wheel is built from (setup.py reads README.md and requirements/*.in).
WHEEL_INPUTS = ("setup.py", "README.md", "requirements", "lib")


def fetch_json(url: str, timeout: float = 5.0) -> Any:
    """GET ``url`` and decode JSON.

    Raises:
        OSError: Not reachable (``urllib.error.URLError`` is an ``OSError``).
        ValueError: The answer is not JSON.
    """
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback URL from conf)
        return json.loads(resp.read().decode("utf-8"))


def master_state(ui_url: str, timeout: float = 5.0) -> dict:
    """The master's state (``/json/`` of its web UI)."""
    return fetch_json(ui_url.rstrip("/") + "/json/", timeout=timeout)


def alive_workers(state: dict) -> list[dict]:
    """Workers the master reports ALIVE."""
    return [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]


def applications(ui_url: str) -> list[dict]:
    """Every application the master knows: ``{id, name, state, duration_ms, completed}``."""
    state = master_state(ui_url)
    out = []
    for key, done in (("activeapps", False), ("completedapps", True)):
        for app in state.get(key, []):
            out.append({"id": app.get("id"), "name": app.get("name"), "state": app.get("state"),
                        "duration_ms": app.get("duration"), "completed": done})
    return out


def wait_for_workers(ui_url: str, count: int, timeout: float = 120.0, interval: float = 1.0) -> dict:
    """Block until the master lists at least ``count`` ALIVE workers.

    Returns:
        The master state at that moment.

    Raises:
        TimeoutError: Not reached within ``timeout`` seconds (message has the last state seen).
    """
    deadline = time.monotonic() + timeout
    last: Any = "master not reachable"
    while time.monotonic() < deadline:
        try:
            state = master_state(ui_url)
            alive = alive_workers(state)
            if len(alive) >= count:
                return state
            last = f"{len(alive)} ALIVE worker(s): {[w.get('id') for w in alive]}"
        except (OSError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(interval)
    raise TimeoutError(f"{ui_url}: fewer than {count} ALIVE workers after {timeout:.0f}s ({last})")


def wait_for_http(url: str, timeout: float = 120.0, interval: float = 1.0) -> int:
    """Block until ``url`` answers with a status below 500.

    Returns:
        The HTTP status.

    Raises:
        TimeoutError: No answer within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310
                return resp.status
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return exc.code
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(interval)
    raise TimeoutError(f"{url}: {last} after {timeout:.0f}s")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (for tests that start servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True if something accepts connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wheel_is_fresh(wheel: str | os.PathLike, project_root: str | os.PathLike) -> bool:
    """True if ``wheel`` is newer than every file it is built from."""
    wheel = Path(wheel)
    if not wheel.is_file():
        return False
    built = wheel.stat().st_mtime
    root = Path(project_root)
    for name in WHEEL_INPUTS:
        path = root / name
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        if any(f.stat().st_mtime > built for f in files):
            return False
    return True


def build_wheel(project_root: str | os.PathLike, out_dir: str | os.PathLike, python: str = sys.executable) -> Path:
    """Build the marketlab wheel from a clean copy of its sources into ``out_dir``.

    A copy, so that setuptools' in-tree ``build/`` folder can never put modules deleted
    from lib/ back into the wheel, and so that concurrent builds do not collide.

    Returns:
        Path of the wheel.

    Raises:
        RuntimeError: The build failed (message has its output).
    """
    root = Path(project_root)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="marketlab-wheel-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
        for name in WHEEL_INPUTS:
            path = root / name
            if path.is_dir():
                shutil.copytree(path, src / name, ignore=ignore)
            elif path.is_file():
                shutil.copy2(path, src / name)
        proc = subprocess.run([python, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(Path(tmp) / "dist"),
                               str(src)], capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"wheel build failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        built = sorted((Path(tmp) / "dist").glob("marketlab-*.whl"))
        if not built:
            raise RuntimeError(f"wheel build produced no wheel:\n{proc.stdout[-3000:]}")
        target = out / built[-1].name
        shutil.copy2(built[-1], target)
    return target


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m marketlab.cluster", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("wait-workers", help="wait until the master lists N ALIVE workers")
    p.add_argument("ui_url")
    p.add_argument("count", type=int)
    p.add_argument("--timeout", type=float, default=120.0)
    p = sub.add_parser("wait-http", help="wait until a URL answers")
    p.add_argument("url")
    p.add_argument("--timeout", type=float, default=120.0)
    p = sub.add_parser("status", help="print workers and applications of the master")
    p.add_argument("ui_url")
    p = sub.add_parser("port-in-use", help="exit 0 if something listens on 127.0.0.1:PORT")
    p.add_argument("port", type=int)
    p = sub.add_parser("build-wheel", help="build the marketlab wheel from a clean copy of the sources")
    p.add_argument("--root", default=".")
    p.add_argument("--out", default="dist")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "wait-workers":
            state = wait_for_workers(args.ui_url, args.count, args.timeout)
            print(f"master {state.get('url')}: {len(alive_workers(state))} ALIVE workers")
        elif args.cmd == "wait-http":
            print(f"{args.url}: HTTP {wait_for_http(args.url, args.timeout)}")
        elif args.cmd == "status":
            state = master_state(args.ui_url)
            print(f"master {state.get('url')} status={state.get('status')} "
                  f"cores={state.get('coresused')}/{state.get('cores')}")
            for w in state.get("workers", []):
                print(f"  worker {w.get('id')} {w.get('state')} cores={w.get('coresused')}/{w.get('cores')}")
            for app in applications(args.ui_url):
                print(f"  app {app['id']} {app['name']} {app['state']} {app['duration_ms']} ms")
        elif args.cmd == "port-in-use":
            return 0 if port_in_use(args.port) else 1
        elif args.cmd == "build-wheel":
            t0 = time.perf_counter()
            wheel = build_wheel(args.root, args.out)
            print(f"built {wheel} ({wheel.stat().st_size / 1024:.0f} KiB) in {time.perf_counter() - t0:.1f}s")
    except (TimeoutError, OSError, ValueError, RuntimeError) as exc:
        print(f"marketlab.cluster: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
