"""Pack the project's virtualenv for executors: ``make pack-env`` -> dist/marketlab-env.tar.gz.

The archive is what ``marketlab submit --env-archive`` ships with ``--archives
ARCHIVE#environment``; executors then run ``./environment/bin/python``, so compiled
dependencies (NumPy, pyarrow, TensorFlow, Horovod, SciPy ...) need not be installed on the
workers. Packed with venv-pack (pinned in requirements/dev.in).

* marketlab itself is left out: the venv holds it as an editable install of lib/, which
  venv-pack refuses; executors get marketlab from the wheel (``--py-files``) instead.
* ``--slim`` (default) also leaves out what executors' Python workers never use:
  pyspark's jars (the executor JVM has its own Spark), TensorFlow's C headers and
  pyspark's examples.
* A ``python -m venv`` environment links bin/python to the base interpreter, so every
  worker needs the same base Python at the same path (true for the loopback cluster and
  for the container image of infra/docker). ``--python-prefix`` rewrites that path.

    python infra/cluster/pack_env.py [--venv .venv] [--output dist/marketlab-env.tar.gz]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SLIM_EXCLUDES = ("*/site-packages/pyspark/jars/*", "*/site-packages/pyspark/examples/*",
                 "*/site-packages/tensorflow/include/*")


def _tolerate_own_editable(lib_dir: Path):
    """venv-pack's editable check, minus marketlab's own editable install (excluded below)."""
    import venv_pack.core as core

    original = core.check_no_editable_packages

    def check(context):
        site = Path(context.prefix) / context.py_lib / "site-packages"
        foreign = []
        for pth in site.glob("*.pth"):
            for line in pth.read_text().splitlines():
                line = line.strip()
                if not line or line.startswith(("#", "import ")):
                    continue
                location = os.path.normpath(os.path.join(str(site), line))
                if not location.startswith(context.prefix) and Path(location).resolve() != lib_dir.resolve():
                    foreign.append(f"{pth.name}: {line}")
        if foreign:
            raise core.VenvPackException("editable packages other than marketlab cannot be packed:\n"
                                         + "\n".join(f"- {f}" for f in foreign))

    core.check_no_editable_packages = check
    return original


def pack_env(venv: str | os.PathLike, output: str | os.PathLike, slim: bool = True, compress_level: int = 1,
             python_prefix: str | None = None) -> dict:
    """Pack ``venv`` into ``output`` (tar.gz) without marketlab's editable install.

    Returns:
        ``{"output", "bytes", "seconds", "files"}``.
    """
    import venv_pack

    venv = Path(venv).resolve()
    output = Path(output).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".part")
    original = _tolerate_own_editable(ROOT / "lib")
    try:
        t0 = time.perf_counter()
        env = venv_pack.Env(str(venv))
        excludes = ["*/site-packages/__editable__*marketlab*", "*/site-packages/marketlab-*.dist-info/*",
                    "*/site-packages/marketlab-*.dist-info", *(SLIM_EXCLUDES if slim else ())]
        for pattern in excludes:
            env = env.exclude(pattern)
        files = len(env.files)
        if tmp.exists():
            tmp.unlink()
        env.pack(output=str(tmp), format="tar.gz", compress_level=compress_level, python_prefix=python_prefix,
                 verbose=False, force=True)
        tmp.replace(output)
        output.chmod(0o644)
        secs = time.perf_counter() - t0
    finally:
        import venv_pack.core as core

        core.check_no_editable_packages = original
    return {"output": str(output), "bytes": output.stat().st_size, "seconds": round(secs, 1), "files": files}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default=str(ROOT / ".venv"))
    parser.add_argument("--output", default=str(ROOT / "dist" / "marketlab-env.tar.gz"))
    parser.add_argument("--full", action="store_true", help="keep pyspark jars, TF headers, examples")
    parser.add_argument("--compress-level", type=int, default=1, choices=range(0, 10), metavar="0-9")
    parser.add_argument("--python-prefix", default=None, help="base Python prefix on the workers, if it differs")
    args = parser.parse_args(argv)
    if not glob.glob(str(Path(args.venv) / "pyvenv.cfg")):
        print(f"pack_env: {args.venv} is not a virtualenv (run `make install`)", file=sys.stderr)
        return 2
    info = pack_env(args.venv, args.output, slim=not args.full, compress_level=args.compress_level,
                    python_prefix=args.python_prefix)
    print(f"packed {info['files']} files into {info['output']}: {info['bytes'] / 2**20:.0f} MiB in {info['seconds']}s")
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
