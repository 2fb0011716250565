"""The pseudonym secret (where it comes from, how it is kept) and ``customer_key`` = HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import threading

import pytest
from pyspark.sql import functions as F

from conftest import make_settings
from marketlab import privacy
from marketlab.errors import ConfError

IDS = [12346, 17850, 18287, 0, 63999]


@pytest.fixture(autouse=True)
def _no_secret_env(monkeypatch):
    for env in (privacy.SECRET_ENV, privacy.LEGACY_SECRET_ENV):
        monkeypatch.delenv(env, raising=False)


def reference_key(secret: str, cid) -> str:
    return hmac.new(secret.encode(), str(cid).encode(), hashlib.sha256).hexdigest()[:16]


def keys(spark, secret: str, ids=IDS) -> list[str]:
    df = spark.createDataFrame([(i,) for i in ids], "customer_id long")
    return [r[0] for r in privacy.pseudonymise(df, secret).orderBy("customer_id").select("customer_key").collect()]


def test_local_secret_is_created_private_once_and_reused(spark, tmp_path):
    st = make_settings(tmp_path)
    path = tmp_path / privacy.LOCAL_SECRET_FILE
    assert privacy.local_secret_path(st) == path and not path.exists()
    first = privacy.resolve_secret(st)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 64 and int(first, 16) >= 0  # 32 random bytes, hex
    assert sorted(p.name for p in tmp_path.iterdir()) == [privacy.LOCAL_SECRET_FILE]  # no temporary file left
    again = privacy.resolve_secret(make_settings(tmp_path))
    assert again == first
    assert keys(spark, again) == keys(spark, first) == [reference_key(first, i) for i in sorted(IDS)]
    # another lake, another secret
    assert privacy.resolve_secret(make_settings(tmp_path / "other")) != first


def test_stages_starting_at_once_agree_on_one_secret(tmp_path):
    st = make_settings(tmp_path)
    got, start = [], threading.Barrier(8)

    def resolve():
        start.wait()
        got.append(privacy.resolve_secret(st))

    threads = [threading.Thread(target=resolve) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and len(set(got)) == 1
    assert (tmp_path / privacy.LOCAL_SECRET_FILE).read_text().strip() == got[0]


def test_environment_wins_over_files_and_the_old_name_still_works(tmp_path, monkeypatch):
    mounted = tmp_path / "mounted"
    mounted.write_text("mounted-secret-0123456789\n")
    st = make_settings(tmp_path, [f"privacy.secret_file={mounted}"])
    assert privacy.resolve_secret(st) == "mounted-secret-0123456789"
    monkeypatch.setenv(privacy.LEGACY_SECRET_ENV, "legacy-secret-0123456789")
    assert privacy.resolve_secret(st) == "legacy-secret-0123456789"
    monkeypatch.setenv(privacy.SECRET_ENV, "env-secret-0123456789")
    assert privacy.resolve_secret(st) == "env-secret-0123456789"
    assert privacy.resolve_secret(make_settings(tmp_path / "x")) == "env-secret-0123456789"
    assert not (tmp_path / privacy.LOCAL_SECRET_FILE).exists()  # nothing generated when one is given


def test_cluster_mode_refuses_without_a_secret_and_uses_the_mounted_one(tmp_path, monkeypatch):
    st = make_settings(tmp_path, ["spark.mode=cluster"])
    with pytest.raises(ConfError, match=rf"cluster mode needs the pseudonym secret: set \${privacy.SECRET_ENV}"):
        privacy.resolve_secret(st)
    assert not (tmp_path / privacy.LOCAL_SECRET_FILE).exists()
    missing = make_settings(tmp_path, ["spark.mode=cluster", f"privacy.secret_file={tmp_path / 'nope'}"])
    with pytest.raises(ConfError, match="privacy.secret_file: .*nope does not exist"):
        privacy.resolve_secret(missing)
    (tmp_path / "k8s").write_text("from-a-kubernetes-secret\n")
    mounted = make_settings(tmp_path, ["spark.mode=cluster", f"privacy.secret_file={tmp_path / 'k8s'}"])
    assert privacy.resolve_secret(mounted) == "from-a-kubernetes-secret"
    monkeypatch.setenv(privacy.SECRET_ENV, "cluster-env-secret-0123")
    assert privacy.resolve_secret(st) == "cluster-env-secret-0123"


def test_unusable_secrets_are_refused(tmp_path, monkeypatch):
    st = make_settings(tmp_path)
    privacy.resolve_secret(st)
    os.chmod(tmp_path / privacy.LOCAL_SECRET_FILE, 0o644)
    with pytest.raises(ConfError, match=r"readable by others \(mode 0644\): chmod 600"):
        privacy.resolve_secret(st)
    monkeypatch.setenv(privacy.SECRET_ENV, "short")
    with pytest.raises(ConfError, match="shorter than 16 characters"):
        privacy.resolve_secret(st)
    monkeypatch.delenv(privacy.SECRET_ENV)
    remote = make_settings(tmp_path, ["lake_root=hdfs://namenode/lake"])
    with pytest.raises(ConfError, match="not a local folder"):
        privacy.resolve_secret(remote)


def test_customer_key_is_hmac_sha256_of_the_id_text(spark):
    # short, block-sized, longer than a block (hashed first, RFC 2104) and non-ASCII secrets
    for secret in ("k" * 16, "b" * 64, "l" * 100, "geheimnis-ä-€-0123"):
        assert keys(spark, secret) == [reference_key(secret, i) for i in sorted(IDS)], secret
    secret = "a-secret-of-this-lake"
    df = spark.createDataFrame([(17850.0, "17850"), (12346.0, "12346"), (None, None)], "d double, s string")
    got = df.select(privacy.customer_key("d", secret).alias("d"), privacy.customer_key(F.col("s"), secret).alias("s"))
    rows = got.collect()
    assert [(r.d, r.s) for r in rows] == [(reference_key(secret, 17850),) * 2, (reference_key(secret, 12346),) * 2,
                                         (None, None)]
    assert all(len(r.d) == 16 and int(r.d, 16) >= 0 for r in rows[:2])


def test_keys_change_with_the_secret_and_only_with_it(spark):
    old, new = keys(spark, "the-old-secret-0123"), keys(spark, "the-new-secret-0123")
    assert keys(spark, "the-old-secret-0123") == old
    assert all(a != b for a, b in zip(old, new)) and len(set(old)) == len(IDS)
