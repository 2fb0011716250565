"""Helpers for the loopback Spark standalone cluster of ``infra/cluster`` (stdlib only).

``infra/cluster/up.sh`` uses them to wait for the master, the workers and the MLflow
server, and to create the cluster's secrets; the cluster tests use them to read what the
master knows about applications. Run as ``python -m marketlab.cluster COMMAND`` (see ``--help``).

Secrets live in ``$MARKETLAB_CLUSTER_ROOT/secrets/`` (mode 0700, every file 0600), made by
:func:`ensure_secrets` on the first ``up.sh`` and reused after that:

* ``spark-auth.conf``: a Spark properties file with ``spark.authenticate`` and the shared
  secret (plus the UI ACLs); the daemons' ``conf/spark-defaults.conf`` includes it and
  ``marketlab submit`` hands it to the driver with ``--properties-file``, so the secret is
  never on a command line;
* ``mlflow-auth.ini``: the config of MLflow's basic-auth app (``MLFLOW_AUTH_CONFIG_PATH``),
  with the generated admin credentials unless ``MARKETLAB_MLFLOW_ADMIN_USER`` /
  ``_PASSWORD`` give them;
* ``mlflow-flask.key``: the Flask secret key the basic-auth app's CSRF protection needs.

The master's web UI serves its whole state as JSON at ``http://HOST:PORT/json/``:
``aliveworkers``, ``workers`` (each with ``state``), ``activeapps`` and ``completedapps``
(each with ``id``, ``name``, ``state``, ``duration`` in ms).
"""

from __future__ import annotations

import argparse
import configparser
import getpass
import io
import json
import os
import secrets
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

ROOT_ENV = "MARKETLAB_CLUSTER_ROOT"
DEFAULT_ROOT = "/tmp/marketlab-cluster"
ADMIN_USER_ENV = "MARKETLAB_MLFLOW_ADMIN_USER"
ADMIN_PASSWORD_ENV = "MARKETLAB_MLFLOW_ADMIN_PASSWORD"
DEFAULT_ADMIN_USER = "admin"


def cluster_root(env: dict[str, str] | None = None) -> Path:
    """``$MARKETLAB_CLUSTER_ROOT`` (default ``/tmp/marketlab-cluster``)."""
    env = os.environ if env is None else env
    return Path(env.get(ROOT_ENV) or DEFAULT_ROOT)


def spark_auth_file(root: str | os.PathLike) -> Path:
    """The Spark properties file with the cluster's shared secret."""
    return Path(root) / "secrets" / "spark-auth.conf"


def mlflow_auth_file(root: str | os.PathLike) -> Path:
    """The basic-auth app's config (``MLFLOW_AUTH_CONFIG_PATH``)."""
    return Path(root) / "secrets" / "mlflow-auth.ini"


def mlflow_flask_key_file(root: str | os.PathLike) -> Path:
    """The Flask secret key of the MLflow server (``MLFLOW_FLASK_SERVER_SECRET_KEY``)."""
    return Path(root) / "secrets" / "mlflow-flask.key"


def _write_private(path: Path, text: str) -> bool:
    """Create ``path`` with mode 0600 holding ``text``; False (untouched) if it exists.

    Created 0600 from the start (``O_EXCL``), so the secret is never readable by others,
    not even between a write and a chmod.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return True


def ensure_secrets(root: str | os.PathLike, env: dict[str, str] | None = None) -> dict[str, Path]:
    """Create the cluster's secret files under ``root/secrets`` unless they exist.

    An existing file is reused as it is (delete it to rotate, see docs/CLUSTER.md). Files
    are created 0600 in a 0700 folder, and the folder and every file are set back to those
    modes each time, so a loosened mode does not survive the next ``up.sh``.

    Args:
        root: The cluster root.
        env: Environment to read ``MARKETLAB_MLFLOW_ADMIN_USER`` / ``_PASSWORD`` from; when
            both are set the ini holds no admin credentials (the server gets them from the
            environment).

    Returns:
        ``{"spark": ..., "mlflow": ..., "flask_key": ...}`` paths.
    """
    env = os.environ if env is None else env
    root = Path(root).resolve()
    folder = root / "secrets"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    paths = {"spark": spark_auth_file(root), "mlflow": mlflow_auth_file(root), "flask_key": mlflow_flask_key_file(root)}
    user = getpass.getuser()
    _write_private(paths["spark"], "\n".join([
        "# Shared secret of the loopback cluster (daemons, drivers, executors); written by up.sh.",
        "spark.authenticate        true",
        f"spark.authenticate.secret {secrets.token_hex(32)}",
        "spark.acls.enable         true",
        f"spark.admin.acls          {user}",
        ""]))
    ini = configparser.ConfigParser()
    ini["mlflow"] = {"default_permission": "NO_PERMISSIONS",
                     "database_uri": f"sqlite:///{root / 'mlflow-auth.db'}",
                     "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth"}
    if not (env.get(ADMIN_USER_ENV) and env.get(ADMIN_PASSWORD_ENV)):
        ini["mlflow"].update(admin_username=DEFAULT_ADMIN_USER, admin_password=secrets.token_urlsafe(24))
    # Reused as it is when present: the admin password only matters the first time the
    # server starts on an empty auth store, which then keeps it.
    buf = io.StringIO()
    ini.write(buf)
    _write_private(paths["mlflow"], "# MLflow basic-auth config of the loopback cluster; written by up.sh.\n" + buf.getvalue())
    _write_private(paths["flask_key"], secrets.token_hex(32) + "\n")
    for path in paths.values():
        path.chmod(0o600)
    return paths


def mlflow_credentials(root: str | os.PathLike | None = None, env: dict[str, str] | None = None) -> dict[str, str]:
    """``MLFLOW_TRACKING_USERNAME`` / ``_PASSWORD`` for the cluster's MLflow server.

    From ``MARKETLAB_MLFLOW_ADMIN_USER`` / ``_PASSWORD`` when both are set, else from the
    admin credentials of ``mlflow-auth.ini`` under ``root`` (default :func:`cluster_root`);
    empty when neither is there (a server without authentication).
    """
    env = os.environ if env is None else env
    user, password = env.get(ADMIN_USER_ENV), env.get(ADMIN_PASSWORD_ENV)
    if not (user and password):
        ini = configparser.ConfigParser()
        ini.read(mlflow_auth_file(root if root is not None else cluster_root(env)))
        section = ini["mlflow"] if ini.has_section("mlflow") else {}
        user, password = section.get("admin_username"), section.get("admin_password")
    if not (user and password):
        return {}
    return {"MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password}


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
    p = sub.add_parser("secrets", help="create the cluster's secret files unless they exist (prints their paths)")
    p.add_argument("root")
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
        elif args.cmd == "secrets":
            for name, path in ensure_secrets(args.root).items():
                print(f"{name}={path}")
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
