"""Pseudonymisation: the one home of ``customer_key`` and of the secret it is keyed with.

Every stage that turns a shop customer id into the gold ``customer_key`` (features, effect,
evaluation, export, strategy, value, report) calls :func:`customer_key` with the secret from
:func:`resolve_secret`, so the keys of one lake join across tables.

``customer_key`` is HMAC-SHA256(secret, id), so a key cannot be recomputed — and the small
id space (~4,400 five-digit ids) cannot be enumerated — without the secret, which is never
in the repository. Where the secret comes from (first match wins):

1. the environment variable :data:`SECRET_ENV` (:data:`LEGACY_SECRET_ENV` is still read);
2. the mounted secret file ``privacy.secret_file`` of the conf (a Kubernetes secret);
3. local mode only: :data:`LOCAL_SECRET_FILE` in the lake root's parent folder, created with
   a random secret (mode 0600) on first use and reused afterwards, so reruns keep the keys.

Cluster mode has no third step: without 1 or 2 :func:`resolve_secret` raises a ``ConfError``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import stat
from pathlib import Path
from urllib.parse import urlparse

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.errors import ConfError

log = logging.getLogger(__name__)

SECRET_ENV = "MARKETLAB_PSEUDONYM_SECRET"
#: The variable's name before keys became HMACs; read when :data:`SECRET_ENV` is unset.
LEGACY_SECRET_ENV = "MARKETLAB_PSEUDONYM_SALT"
#: File name of the generated local-mode secret, in the lake root's parent folder: beside
#: the lake rather than in it, so a copy of the lake folder does not carry its secret.
LOCAL_SECRET_FILE = ".marketlab-secret"
#: Fewest characters a secret may have (the generated one has 64 hex characters).
MIN_SECRET_CHARS = 16

_BLOCK = 64  # SHA-256 block size in bytes (RFC 2104)


def resolve_secret(settings) -> str:
    """The pseudonymisation secret of this lake (see the module docstring for the order).

    Args:
        settings: The run's :class:`marketlab.config.Settings` (``spark.mode``,
            ``lake_root``, ``privacy.secret_file``).

    Raises:
        ConfError: Cluster mode without the environment variable or the mounted file; a
            configured secret file that is missing or empty; a secret shorter than
            :data:`MIN_SECRET_CHARS`; a generated secret file readable by others; a
            local-mode lake root that is not a local folder.
    """
    for env in (SECRET_ENV, LEGACY_SECRET_ENV):
        value = os.environ.get(env, "").strip()
        if value:
            return _checked(value, f"${env}")
    mounted = settings.privacy.secret_file
    if mounted:
        path = Path(settings.resolve(mounted))
        if not path.is_file():
            raise ConfError(f"privacy.secret_file: {path} does not exist (mount the pseudonym secret there "
                            f"or set ${SECRET_ENV})")
        return _checked(path.read_text().strip(), str(path))
    if settings.spark.mode == "cluster":
        raise ConfError(f"cluster mode needs the pseudonym secret: set ${SECRET_ENV} or mount it and set "
                        f"privacy.secret_file (local mode generates one beside the lake)")
    return _local_secret(local_secret_path(settings))


def local_secret_path(settings) -> Path:
    """Where local mode keeps its generated secret: :data:`LOCAL_SECRET_FILE` beside the lake root.

    Raises:
        ConfError: ``lake_root`` is a non-file URI (hdfs://, s3a://): no local folder to use.
    """
    root = settings.resolve(settings.lake_root)
    parsed = urlparse(root)
    if parsed.scheme == "file":
        root = parsed.path
    elif parsed.scheme and len(parsed.scheme) > 1:  # one letter: a Windows drive, not a scheme
        raise ConfError(f"lake_root {root} is not a local folder: set ${SECRET_ENV} or privacy.secret_file")
    return Path(root.rstrip("/")).parent / LOCAL_SECRET_FILE


def _local_secret(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write a private temporary file, then link it into place: link() fails when the name
        # exists, so two stages starting at once agree on one secret and no reader ever sees
        # a half-written file.
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)
                log.warning("created the pseudonym secret %s (mode 0600): keep it, and keep it out of any copy "
                            "of the lake; losing it changes every customer_key on the next run", path)
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfError(f"pseudonym secret {path} is readable by others (mode {mode:04o}): chmod 600 it")
    return _checked(path.read_text().strip(), str(path))


def _checked(secret: str, where: str) -> str:
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfError(f"pseudonym secret from {where} is empty or shorter than {MIN_SECRET_CHARS} characters")
    return secret


def _pads(secret: str) -> tuple[bytes, bytes]:
    key = secret.encode()
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def customer_key(customer_id: Column | str, secret: str) -> Column:
    """``customer_key``: first 16 hex chars of HMAC-SHA256(secret, id) (docs/CONTRACTS.md).

    Integral ids (``17850`` and ``17850.0`` alike) are keyed by their integer text, so the
    same customer gets one key whichever table's type the id had.

    Spark has no HMAC function, so this is RFC 2104 spelled with Spark's own ``sha2``:
    sha256((K ^ opad) || sha256((K ^ ipad) || id)). It equals Python's
    ``hmac.new(secret, id, sha256)`` (tests/test_privacy.py) and stays in the JVM, where a
    pandas UDF would ship every id through Python. The pads are derived from the secret and
    appear in the query plan, so the Spark UI and event logs are as private as the secret.
    """
    col = F.col(customer_id) if isinstance(customer_id, str) else customer_id
    as_text = F.when(col.cast("double") == col.cast("long").cast("double"), col.cast("long").cast("string")) \
        .otherwise(col.cast("string"))
    ipad, opad = _pads(secret)
    inner = F.unhex(F.sha2(F.concat(F.lit(ipad), F.encode(as_text, "UTF-8")), 256))
    return F.substring(F.sha2(F.concat(F.lit(opad), inner), 256), 1, 16)


def pseudonymise(df: DataFrame, secret: str, id_col: str = C.CUSTOMER_ID, key_col: str = C.CUSTOMER_KEY) -> DataFrame:
    """``df`` with ``key_col`` = :func:`customer_key` of ``id_col``."""
    return df.withColumn(key_col, customer_key(id_col, secret))
