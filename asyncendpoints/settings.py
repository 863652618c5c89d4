"""Settings: one typed object per process, read from ``ASYNCENDPOINTS_*`` variables.

Every default of the project lives here (the Helm chart's values only set these
variables). Lists accept JSON (``["a","b"]``) or comma-separated text.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from asyncendpoints.types import REDIS_URL, RedisUrl

DEFAULT_SENSITIVE_HEADERS = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
    "x-csrf-token",
)


def _cpus() -> int:
    """CPUs this process may run on (not the whole node's, where affinity says less)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _split(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything a process of this project can be told, with its default."""

    model_config = SettingsConfigDict(
        env_prefix="ASYNCENDPOINTS_", extra="ignore", validate_default=True
    )

    # --- the store -------------------------------------------------------------------
    redis_url: RedisUrl | None = Field(
        default=None,
        description=(
            "Redis DSN (redis://, rediss://, unix://, or redis+sentinel://host:26379,.../"
            "<primary>/<db>). None: the in-memory store."
        ),
    )
    redis_url_file: Path | None = Field(
        default=None, description="A file holding the Redis DSN (a mounted Secret)."
    )
    key_prefix: str = Field(
        default="ae", pattern=r"^[A-Za-z0-9_.:-]{1,32}$", description="Prefix of every Redis key."
    )
    redis_timeout: float = Field(default=5.0, gt=0, description="Connect and command timeout.")
    max_queue_size: int = Field(
        default=100_000, ge=1, description="Queued jobs per job name before 429."
    )
    retention_seconds: float = Field(
        default=86_400.0, gt=0, description="How long finished jobs stay readable."
    )

    # --- jobs and retries --------------------------------------------------------------
    max_retries: int = Field(default=3, ge=0, le=100, description="Default retries per job.")
    job_timeout: float | None = Field(
        default=None, gt=0, description="Default per-job timeout in seconds (None: no limit)."
    )
    retry_base_seconds: float = Field(default=1.0, gt=0, description="Backoff base.")
    retry_cap_seconds: float = Field(default=300.0, gt=0, description="Backoff cap.")

    # --- the worker ---------------------------------------------------------------------
    worker_id: str | None = Field(default=None, description="Defaults to POD_NAME, else host-pid.")
    worker_names: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Job names this worker serves (empty: all)."
    )
    concurrency: int = Field(
        default_factory=lambda: min(200, 50 * _cpus()),
        ge=1,
        le=10_000,
        description=(
            "Jobs a worker runs at once (default: 50 per CPU, at most 200; async handlers wait"
            " on I/O, sync ones are bounded by sync_threads too). Lower it for CPU-heavy"
            " async handlers."
        ),
    )
    batch_size: int = Field(default=100, ge=1, le=1000, description="Jobs claimed per round trip.")
    lease_seconds: float = Field(default=30.0, ge=1, description="Lease on a claimed job.")
    heartbeat_seconds: float = Field(default=5.0, gt=0, description="Lease renewal interval.")
    recovery_seconds: float = Field(default=5.0, gt=0, description="Expired-lease sweep interval.")
    shutdown_grace_seconds: float = Field(
        default=25.0, ge=0, description="In-flight jobs' time to finish after SIGTERM."
    )
    worker_health_port: int = Field(default=8081, ge=0, le=65535, description="0 disables it.")
    sync_threads: int = Field(default=32, ge=1, description="Thread pool for sync handlers.")

    # --- the API -------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port the API listens on.")
    max_body_bytes: int = Field(default=1_048_576, ge=1, description="Larger bodies get 413.")
    auth_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Bearer tokens; any set turns auth on."
    )
    auth_tokens_file: Path | None = Field(
        default=None, description="A file with one bearer token per line (a mounted Secret)."
    )
    sensitive_headers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_SENSITIVE_HEADERS),
        description="Headers never stored in a job's captured context.",
    )
    long_poll_max_seconds: float = Field(default=60.0, gt=0, description="Cap on ?wait=.")

    # --- the controller ----------------------------------------------------------------
    controller_namespace: str | None = Field(
        default=None, description="Watch one namespace (None: all namespaces)."
    )
    controller_metrics_port: int = Field(default=8082, ge=0, le=65535)

    # --- logs --------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto", description="auto: JSON when stderr is not a terminal."
    )

    @field_validator("worker_names", "sensitive_headers", "auth_tokens", mode="before")
    @classmethod
    def _split_lists(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("sensitive_headers")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.lower() for v in value]

    @model_validator(mode="after")
    def _read_files(self) -> Settings:
        if self.redis_url is None and self.redis_url_file is not None:
            self.redis_url = REDIS_URL.validate_python(self.redis_url_file.read_text().strip())
        if self.auth_tokens_file is not None:
            extra = [t.strip() for t in self.auth_tokens_file.read_text().splitlines()]
            self.auth_tokens = [*self.auth_tokens, *(SecretStr(t) for t in extra if t)]
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError("heartbeat_seconds must be shorter than lease_seconds")
        return self

    @property
    def auth_enabled(self) -> bool:
        return bool(self.auth_tokens)


__all__ = ["DEFAULT_SENSITIVE_HEADERS", "Settings"]
