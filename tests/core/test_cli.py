"""The ``asyncendpoints`` command: services found through entry points, clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from asyncendpoints.cli import build_parser, main
from asyncendpoints.errors import ConfigurationError
from asyncendpoints.services import available_services, load_service


def test_every_service_is_registered() -> None:
    assert set(available_services()) == {"api", "worker", "controller"}
    for name in available_services():
        assert load_service(name).help


def test_unknown_service_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="not installed"):
        load_service("nope")


def test_only_the_chosen_service_is_loaded() -> None:
    code = (
        "import sys; from asyncendpoints.cli import build_parser; "
        "build_parser(['worker', '--help'][:1]); "
        "print('kopf' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser(["--help"]).parse_args(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for command in ("dev", "api", "worker", "controller"):
        assert command in text


def test_a_bad_app_reference_exits_2_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "no.such.module:app", "--redis-url", "redis://127.0.0.1:1/0"]) == 2
    assert "cannot import 'no.such.module'" in capsys.readouterr().err
