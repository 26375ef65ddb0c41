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
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from debate.core.errors import ConfigError
from debate.core.rubric import DEFAULT_WEIGHTS, Rubric

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_ROOT / "config"
DEFAULT_TOML = CONFIG_DIR / "default.toml"
PRESETS_DIR = CONFIG_DIR / "presets"
SECRET_KEYS = {"api_key", "reviewer_tokens"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DebateSettings(_Section):
    rounds: int = Field(2, ge=1, le=10, description="Proposer/critic rounds at most.")
    judges: int = Field(3, ge=1, le=15, description="Judges on the panel.")
    evidence_limit: int = Field(8, ge=1, le=50, description="Evidence chunks retrieved per run.")
    stop_on_concede: bool = Field(True, description="End the rounds early when the critic concedes.")
    stop_on_repeat: bool = Field(True, description="End the rounds early when a side says nothing new.")


class SearchSettings(_Section):
    min_hits: int = Field(3, ge=0, description="Fewer all-terms hits than this falls back to any-term.")
    default_limit: int = Field(10, ge=1, le=200, description="Results shown by `kb search`.")


class OpenAISettings(_Section):
    base_url: str | None = Field(None, description="Endpoint; unset falls back to OPENAI_BASE_URL.")
    api_key: SecretStr | None = Field(None, description="Environment only; falls back to OPENAI_API_KEY.")
    model: str = Field("gpt-4o-mini", description="Default model for every role.")
    role_models: dict[str, str] = Field(default_factory=dict, description="proposer/critic -> model.")
    judge_models: list[str] = Field(default_factory=list, description="Model per judge seat, cycled.")
    structured_output: Literal["json_schema", "json_object", "prompt"] = "json_schema"
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
    max_output_tokens: int | None = Field(None, ge=1)
    prices: dict[str, list[float]] = Field(
        default_factory=dict, description="model -> [USD per 1M prompt tokens, per 1M completion]."
    )

    @field_validator("prices")
    @classmethod
    def _two_prices(cls, v: dict[str, list[float]]) -> dict[str, list[float]]:
        for model, pair in v.items():
            if len(pair) != 2 or any(p < 0 for p in pair):
                raise ValueError(f"price for {model!r} must be [prompt, completion] USD per 1M tokens")
        return v


class RelatedSettings(_Section):
    limit: int = Field(10, ge=1, le=200, description="Scored lines per Related Hypotheses list.")


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
    backend: Literal["offline", "openai"] = "offline"
    prompts_dir: str = Field("", description="Prompt templates; empty = the bundled prompts/.")
    debate: DebateSettings = Field(default_factory=DebateSettings)
    rubric: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    search: SearchSettings = Field(default_factory=SearchSettings)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    related: RelatedSettings = Field(default_factory=RelatedSettings)
    rescore: RescoreSettings = Field(default_factory=RescoreSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
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


def load_settings(**overrides: Any) -> Settings:
    """Load settings; any problem becomes one :class:`ConfigError` naming the field."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "settings"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"bad setting {field}: {msg}") from None
