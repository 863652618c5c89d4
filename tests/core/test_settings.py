"""Settings come from ASYNCENDPOINTS_* variables, with files for secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from asyncendpoints import Settings


def test_defaults_are_documented_and_sane(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("ASYNCENDPOINTS_"):
            monkeypatch.delenv(name)
    settings = Settings()
    assert settings.redis_url is None
    assert settings.key_prefix == "ae"
    assert settings.heartbeat_seconds < settings.lease_seconds
    assert settings.shutdown_grace_seconds < 30  # below Kubernetes' default grace period
    assert "authorization" in settings.sensitive_headers
    assert not settings.auth_enabled
    for name, field in Settings.model_fields.items():
        assert field.description or name in {"log_level", "controller_metrics_port"}, name


def test_environment_and_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCENDPOINTS_REDIS_URL", "redis://:pw@redis.example:6380/2")
    monkeypatch.setenv("ASYNCENDPOINTS_WORKER_NAMES", "a, b")
    monkeypatch.setenv("ASYNCENDPOINTS_SENSITIVE_HEADERS", '["X-Secret"]')
    settings = Settings()
    assert settings.redis_url is not None and settings.redis_url.hosts()[0]["port"] == 6380
    assert settings.worker_names == ["a", "b"]
    assert settings.sensitive_headers == ["x-secret"]


def test_secret_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = tmp_path / "url"
    url.write_text("redis://127.0.0.1:6390/0\n")
    tokens = tmp_path / "tokens"
    tokens.write_text("alpha\n\nbeta\n")
    monkeypatch.setenv("ASYNCENDPOINTS_REDIS_URL_FILE", str(url))
    monkeypatch.setenv("ASYNCENDPOINTS_AUTH_TOKENS_FILE", str(tokens))
    monkeypatch.delenv("ASYNCENDPOINTS_REDIS_URL", raising=False)
    settings = Settings()
    assert str(settings.redis_url) == "redis://127.0.0.1:6390/0"
    assert [t.get_secret_value() for t in settings.auth_tokens] == ["alpha", "beta"]
    assert "alpha" not in repr(settings)  # secrets never show in logs


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ASYNCENDPOINTS_REDIS_URL", "http://not-redis"),
        ("ASYNCENDPOINTS_CONCURRENCY", "0"),
        ("ASYNCENDPOINTS_KEY_PREFIX", "has space"),
        ("ASYNCENDPOINTS_HEARTBEAT_SECONDS", "60"),
    ],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError):
        Settings()


def test_a_sentinel_dsn_names_its_sentinels_and_the_primary() -> None:
    settings = Settings(redis_url="redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26380/ae/2")
    assert settings.redis_url is not None
    assert [(h["host"], h["port"]) for h in settings.redis_url.hosts()] == [
        ("10.0.0.1", 26379),
        ("10.0.0.2", 26380),
    ]
    assert settings.redis_url.path == "/ae/2"
