"""Settings: one validated model for conf/*.yaml, holding the table catalog.

An environment file (``conf/local.yaml``, ``conf/cluster.yaml``, ``conf/test.yaml``) is
deep-merged *over* every YAML file of its base folder (``conf/base`` by default: the
catalog, the sources and one parameter file per job), then validated. Unknown keys and
wrong types are rejected with the dotted key path in the message, so a typo in a
parameter fails at start-up instead of silently falling back to a default.

Relative paths in conf are relative to the project root (the folder holding ``conf/``);
URIs (``hdfs://``, ``s3a://``, ``file:/``) are used as they are.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from marketlab.behaviour.params import BehaviourParams
from marketlab.clean.params import CleanParams
from marketlab.drift.params import DriftParams
from marketlab.effect.params import EffectParams
from marketlab.evaluation.params import EvaluationParams, ExportParams
from marketlab.features.params import FeaturesParams
from marketlab.forecast.params import ForecastParams
from marketlab.ingest.params import IngestParams
from marketlab.inventory.params import InventoryParams
from marketlab.quality.params import QualityParams
from marketlab.recommend.params import RecommendParams
from marketlab.report.params import ReportParams
from marketlab.segments.params import SegmentsParams
from marketlab.simulator.params import SimulatorParams
from marketlab.campaign.params import CampaignParams
from marketlab.sequence.params import SequenceParams
from marketlab.strategy.params import StrategyParams
from marketlab.rl.params import RLParams
from marketlab.value.params import ValueParams

from marketlab.errors import ConfError
from marketlab.params_base import StrictModel

_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:/")


_MASTER = re.compile(r"^(local(\[(\*|[1-9]\d*)(,\s*\d+)?\])?|local-cluster\[\d+,\s*\d+,\s*\d+\]|"
                     r"spark://[^\s/]+(,[^\s/]+)*|yarn|k8s://\S+)$")
#: Spark settings that take a JVM memory size ("4g", "512m", "1024": MiB).
_SIZE_KEYS = {"spark.driver.memory", "spark.executor.memory", "spark.driver.memoryOverhead",
              "spark.executor.memoryOverhead", "spark.driver.maxResultSize", "spark.executor.pyspark.memory"}
_SIZE = re.compile(r"^\d+([kmgtp]b?|b)?$", re.IGNORECASE)


class ConfigError(ConfError):
    """Conf could not be loaded: the message names the file and every bad key path."""


class SparkSettings(StrictModel):
    """How to obtain the Spark session.

    Attributes:
        mode: ``local`` builds a session (tests, demo); ``cluster`` only attaches to the one
            spark-submit created and never overrides what spark-submit set.
        master: Spark master URL in local mode (``local[*]``, ``local[2]``).
        conf: Extra Spark settings (strings), applied in local mode; in cluster mode only
            where spark-submit did not set the key.
        jars_dir: Folder with the Delta Lake jars fetched by ``make jars``.
        log_level: Spark's log level once the session is up.
        bind_address: The address the driver, its block manager and the Spark UI listen
            on (an IP address or ``localhost``). It replaces any ``$SPARK_LOCAL_IP`` the
            caller's environment carries: an inherited ``0.0.0.0`` would otherwise open the
            UI on every interface. ``env`` honours ``$SPARK_LOCAL_IP`` (127.0.0.1 when unset).
    """

    mode: Literal["local", "cluster"] = "local"
    master: str = "local[*]"
    app_name: str = "marketlab"
    conf: dict[str, str] = Field(default_factory=dict)
    jars_dir: str = ".jars"
    log_level: Literal["ERROR", "WARN", "INFO", "DEBUG"] = "WARN"
    bind_address: str = "127.0.0.1"

    @field_validator("bind_address")
    @classmethod
    def _address(cls, v: str) -> str:
        if v in ("env", "localhost"):
            return v
        try:
            return str(ipaddress.ip_address(v))
        except ValueError:
            raise ValueError(f"'{v}' is not an IP address, 'localhost' or 'env'") from None

    @field_validator("conf", mode="before")
    @classmethod
    def _stringify(cls, v: Any) -> Any:
        # YAML turns `false`/`4` into bool/int; Spark wants strings ("false", "4").
        if isinstance(v, dict):
            return {k: (str(x).lower() if isinstance(x, bool) else str(x)) for k, x in v.items()}
        return v

    # Checked here, not by the JVM: a bad value would end in a Java trace after a slow start.
    @field_validator("master")
    @classmethod
    def _master(cls, v: str) -> str:
        if not _MASTER.match(v):
            raise ValueError(f"'{v}' is not a Spark master URL (local, local[N], local[*], local[N,F], "
                             "local-cluster[N,C,M], spark://HOST:PORT, yarn, k8s://URL)")
        return v

    @field_validator("conf")
    @classmethod
    def _sizes(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if key in _SIZE_KEYS and not _SIZE.match(value.strip()):
                raise ValueError(f"{key}='{value}' is not a memory size (e.g. 512m, 4g)")
        return v


class MlflowSettings(StrictModel):
    """Where runs and models go.

    Attributes:
        tracking_uri: ``sqlite:///mlflow/mlflow.db`` (a local store; relative path resolved
            against the project root) or a server URL such as ``http://127.0.0.1:5000``.
        artifact_root: Artifact folder/URI for experiments this project creates.
        experiment: Experiment name every job logs to.
        connect_timeout_s: A job checks that a tracking server answers within this many
            seconds before it starts (instead of MLflow's minutes of silent retries).
    """

    tracking_uri: str = "sqlite:///mlflow/mlflow.db"
    artifact_root: str = "mlflow/artifacts"
    experiment: str = "marketlab"
    ui_host: str = "127.0.0.1"
    ui_port: int = Field(5000, ge=1, le=65535)
    #: Seconds to wait for a tracking server (http/https URI) before a job gives up with one line.
    connect_timeout_s: float = Field(5.0, gt=0)


class PrivacySettings(StrictModel):
    """Where the pseudonymisation secret of ``customer_key`` comes from (lib/marketlab/privacy.py).

    Attributes:
        secret_file: A mounted file holding the secret (a Kubernetes secret), used when
            ``$MARKETLAB_PSEUDONYM_SECRET`` is unset. Unset in local mode, a secret is
            generated beside the lake; cluster mode refuses to run without one of the two.
    """

    secret_file: str | None = None


class LoggingSettings(StrictModel):
    """How jobs log (lib/marketlab/logs.py).

    Attributes:
        format: ``human`` (``HH:MM:SS LEVEL logger: message``, the summary line printed on
            stdout) or ``json``: one JSON object per line (timestamp, level, job, stage,
            run_id, mlflow_run_id, logger, message; the summary line with its figures), for
            a log collector.
    """

    format: Literal["human", "json"] = "human"


class PipelineSettings(StrictModel):
    """How ``marketlab pipeline`` runs the stage graph.

    Attributes:
        max_parallel_stages: Stages run at once in the one Spark application once their
            inputs are written (driver threads sharing the executors). Independent stages
            (effect beside features, recommend beside forecast) fill the cores one stage
            leaves idle between its Spark jobs; 1 runs them one after another in graph
            order. Results do not depend on it.
    """

    max_parallel_stages: int = Field(2, ge=1, le=16)


class TableSpec(StrictModel):
    """One Delta table of the lake.

    Attributes:
        layer: Medallion layer; also the first part of the catalog name.
        path: Location relative to ``lake_root`` (or an absolute URI).
        partition_by: Partition columns, if any.
        description: What a row is.
    """

    layer: Literal["bronze", "silver", "gold", "quality", "ops"]
    path: str
    partition_by: list[str] = Field(default_factory=list)
    description: str = ""


class SourceSpec(StrictModel):
    """A raw source: which files, how to parse them, which canonical schema they map to.

    Attributes:
        kind: Canonical schema (see :mod:`marketlab.ingest.schemas`).
        path: A file or a folder, taken literally: ``[``, ``]``, ``{``, ``}``, ``*``, ``?``,
            ``\\`` and ``:`` are characters of the name, never a pattern. A folder's files
            (not its hidden ``_``/``.`` ones) are each one ingest batch.
        pattern: Hadoop glob of file names in the folder ``path`` (``orders_*.csv``,
            ``part-{1,2}.csv``): the only setting that globs. Unset: every file of the folder.
        format: ``csv`` (also ``.csv.gz``), ``json`` (JSON Lines) or ``parquet``.
        table: Catalog name of the bronze table the rows go to.
        columns: Canonical column -> column name in this export. Unmapped optional
            canonical columns are loaded as null.
        delimiter: Field separator of ``csv`` files (one ASCII character).
        quote: Quote character of ``csv`` files (one ASCII character); a quoted field may
            hold the delimiter and line breaks, so a record may span physical lines.
        escape: Escape character inside quoted fields. Default: the quote itself, RFC
            4180's doubled quote (``"7"" FRAME"`` is ``7" FRAME``). ``"\\"`` for exports
            that write ``\"`` inside quotes instead (a backslash then makes the next
            character literal, a line break included).
        timestamp_format: Spark datetime pattern of date columns (``M/d/yyyy H:mm`` for
            the 2009-2011 re-export of Online Retail).
        max_reject_fraction: A file with a larger share of rejected records fails as a
            whole (it is most likely the wrong file or mis-configured), instead of
            quarantining most of it.
        optional: A path that matches no file yet is not an error (a response export
            folder before the first wave); ``{lake_root}`` in ``path`` is the lake root.
    """

    kind: Literal["orders", "campaign", "sessions", "campaign_responses"]
    path: str
    pattern: str | None = None
    format: Literal["csv", "json", "parquet"] = "csv"
    table: str
    delimiter: str = Field(",", min_length=1, max_length=1)
    quote: str = Field('"', min_length=1, max_length=1)
    escape: str = Field('"', min_length=1, max_length=1)
    header: bool = True
    encoding: Literal["utf-8"] = "utf-8"
    timestamp_format: str = "yyyy-MM-dd HH:mm:ss"
    columns: dict[str, str]
    max_reject_fraction: float = Field(0.05, ge=0.0, le=1.0)
    optional: bool = False

    @field_validator("pattern")
    @classmethod
    def _file_names_only(cls, v: str | None) -> str | None:
        # A pattern matches names inside `path`; globbing across folders would bring back the
        # Hadoop Globber, which fails on a ':' in any name it walks past.
        if v is not None and ("/" in v or not v.strip()):
            raise ValueError(f"'{v}' must be a non-empty pattern of file names (no '/'); the folder is `path`")
        return v

    @model_validator(mode="after")
    def _check_syntax(self) -> "SourceSpec":
        # The record splitter works on undecoded bytes (ingest/sources.py), and a line break or
        # a shared character would make record and field boundaries ambiguous.
        chars = {"delimiter": self.delimiter, "quote": self.quote}
        if self.escape != self.quote:
            chars["escape"] = self.escape
        values = set(chars.values())
        if len(values) < len(chars) or {"\r", "\n"} & values or not all(c.isascii() for c in values):
            raise ValueError(f"delimiter, quote and escape must be ASCII, differ (escape may equal quote) and "
                             f"not be a line break; got {chars}")
        return self

    @model_validator(mode="after")
    def _check_mapping(self) -> "SourceSpec":
        from marketlab.ingest.schemas import CANONICAL

        schema = CANONICAL[self.kind]
        known = {f.name for f in schema}
        unknown = sorted(set(self.columns) - known)
        if unknown:
            raise ValueError(f"columns: unknown canonical column(s) {unknown} for kind '{self.kind}'; known: {sorted(known)}")
        missing = sorted(f.name for f in schema if f.required and f.name not in self.columns)
        if missing:
            raise ValueError(f"columns: required canonical column(s) {missing} are not mapped")
        if not self.header and self.format == "csv":
            # Without a header the mapping values are 0-based column positions.
            bad = [v for v in self.columns.values() if not str(v).isdigit()]
            if bad:
                raise ValueError(f"columns: header is false, so values must be column positions, got {bad}")
        return self


class JobsSettings(StrictModel):
    """Parameters per job; each model lives with its capability in ``lib/marketlab/*/params.py``."""

    ingest: IngestParams = Field(default_factory=IngestParams)
    clean: CleanParams = Field(default_factory=CleanParams)
    quality: QualityParams = Field(default_factory=QualityParams)
    features: FeaturesParams = Field(default_factory=FeaturesParams)
    segments: SegmentsParams = Field(default_factory=SegmentsParams)
    behaviour: BehaviourParams = Field(default_factory=BehaviourParams)
    recommend: RecommendParams = Field(default_factory=RecommendParams)
    forecast: ForecastParams = Field(default_factory=ForecastParams)
    inventory: InventoryParams = Field(default_factory=InventoryParams)
    effect: EffectParams = Field(default_factory=EffectParams)
    strategy: StrategyParams = Field(default_factory=StrategyParams)
    evaluation: EvaluationParams = Field(default_factory=EvaluationParams)
    export: ExportParams = Field(default_factory=ExportParams)
    report: ReportParams = Field(default_factory=ReportParams)
    simulator: SimulatorParams = Field(default_factory=SimulatorParams)
    value: ValueParams = Field(default_factory=ValueParams)
    sequence: SequenceParams = Field(default_factory=SequenceParams)
    campaign: CampaignParams = Field(default_factory=CampaignParams)
    drift: DriftParams = Field(default_factory=DriftParams)
    rl: RLParams = Field(default_factory=RLParams)


class Settings(StrictModel):
    """Everything a job needs to know, validated.

    Attributes:
        project_root: Folder that relative paths are resolved against (set by the loader).
        env: Name of the environment file (``local``, ``cluster``, ``test``).
        lake_root: Root of the Delta lake (local folder or Hadoop URI).
        pipeline: How the pipeline runner schedules the stages.
        logging: Log format of the jobs.
        privacy: Where the pseudonymisation secret comes from.
        catalog: Catalog name (``layer.table``) -> table spec.
        sources: Source name -> raw source spec.
    """

    project_root: str = "."
    env: str = "local"
    lake_root: str = "lake"
    spark: SparkSettings = Field(default_factory=SparkSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    catalog: dict[str, TableSpec] = Field(default_factory=dict)
    sources: dict[str, SourceSpec] = Field(default_factory=dict)
    jobs: JobsSettings = Field(default_factory=JobsSettings)

    @model_validator(mode="after")
    def _cross_references(self) -> "Settings":
        for name, spec in self.catalog.items():
            if name.split(".", 1)[0] != spec.layer:
                raise ValueError(f"catalog.{name}: name must start with its layer '{spec.layer}.'")
        for name, src in self.sources.items():
            if src.table not in self.catalog:
                raise ValueError(f"sources.{name}.table: '{src.table}' is not in the catalog")
        unknown = [n for n in self.jobs.ingest.sources if n not in self.sources]
        if unknown:
            raise ValueError(f"jobs.ingest.sources: unknown source(s) {unknown}; configured: {sorted(self.sources)}")
        unwatched = [c.table for c in self.jobs.drift.checks if c.table not in self.catalog]
        if unwatched:
            raise ValueError(f"jobs.drift.checks: table(s) {unwatched} not in the catalog")
        return self

    # --- path helpers ----------------------------------------------------------------
    def resolve(self, path: str) -> str:
        """Absolute path or URI for a conf path (relative paths hang off the project root)."""
        if _URI.match(path) or os.path.isabs(path):
            return path
        return str((Path(self.project_root) / path).resolve())

    def source_path(self, spec: "SourceSpec") -> str:
        """Absolute path or URI of a source's files (``{lake_root}`` expanded)."""
        return self.resolve(spec.path.replace("{lake_root}", self.resolve(self.lake_root)))

    def table_path(self, name: str) -> str:
        """Location of catalog table ``name``.

        Raises:
            KeyError: The name is not in the catalog (the message lists close names).
        """
        if name not in self.catalog:
            close = [n for n in self.catalog if n.split(".")[-1] in name or name.split(".")[-1] in n]
            raise KeyError(f"table '{name}' is not in the catalog" + (f"; did you mean {close}?" if close else ""))
        spec = self.catalog[name]
        if _URI.match(spec.path) or os.path.isabs(spec.path):
            return spec.path
        return self.resolve(self.lake_root).rstrip("/") + "/" + spec.path

    def tracking_uri(self) -> str:
        """MLflow tracking URI with a relative SQLite path made absolute."""
        uri = self.mlflow.tracking_uri
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            return "sqlite:///" + self.resolve(uri[len("sqlite:///"):])
        return uri

    def artifact_root(self) -> str:
        """Artifact location as a URI."""
        root = self.mlflow.artifact_root
        return root if _URI.match(root) else Path(self.resolve(root)).as_uri()


# --- loading -------------------------------------------------------------------------


def _deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    except ValueError as exc:  # undecodable bytes, or a YAML date that is no date ("2011-13-01")
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: the problem and where (PyYAML's text spans several lines)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    context = getattr(exc, "context", None)
    return " ".join((f"{problem}{where}" + (f" ({' '.join(str(context).split())})" if context else "")).split())


# Maps whose keys themselves contain dots: Spark settings (the rest of the path is one
# key) and catalog names ("layer.table": two parts).
_DOTTED_KEY_MAPS = {"spark.conf.": None, "catalog.": 2}


def _split_path(dotted: str) -> list[str]:
    for prefix, width in _DOTTED_KEY_MAPS.items():
        if dotted.startswith(prefix) and len(dotted) > len(prefix):
            head = prefix.rstrip(".").split(".")
            rest = dotted[len(prefix):].split(".")
            if width is None:
                return [*head, ".".join(rest)]
            return [*head, ".".join(rest[:width]), *rest[width:]]
    return dotted.split(".")


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    node = data
    *parents, leaf = _split_path(dotted)
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted}: '{part}' is not a mapping")
    node[leaf] = value


def _format_errors(exc: ValidationError, origin: str) -> str:
    # One line (the harness prints it after `marketlab <job>: `): every bad key path with its problem.
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        problems.append(f"{loc}: {' '.join(str(msg).split())}")
    return f"invalid configuration ({origin}): " + "; ".join(problems)


def load_settings(path: str | os.PathLike, overrides: list[str] | None = None) -> Settings:
    """Load and validate an environment conf file merged over its base folder.

    Args:
        path: Environment YAML, e.g. ``conf/local.yaml``.
        overrides: ``dotted.key=value`` strings applied last (values parsed as YAML), e.g.
            ``["jobs.forecast.epochs=2", "spark.master=local[2]"]``.

    Returns:
        The validated settings, with ``project_root`` set to the parent of the conf folder.

    Raises:
        ConfigError: Missing file, bad YAML, or validation errors (all listed with key paths).
    """
    env_path = Path(path).resolve()
    if not env_path.is_file():
        raise ConfigError(f"conf file not found: {path}")
    env = _read_yaml(env_path)
    base_dir = env_path.parent / env.pop("base", "base")
    merged: dict = {}
    if base_dir.is_dir():
        for part in sorted(base_dir.rglob("*.yaml")):
            merged = _deep_merge(merged, _read_yaml(part))
    merged = _deep_merge(merged, env)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like dotted.key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except ValueError as exc:  # a YAML date that is no date ("2011-13-01") fails in the constructor
            raise ConfigError(f"override '{item}': {exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"override '{item}': the value is not valid YAML: {_yaml_problem(exc)}") from None
        _set_dotted(merged, key.strip(), value)
    merged.setdefault("project_root", str(env_path.parent.parent))
    merged.setdefault("env", env_path.stem)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, str(env_path))) from None
