"""`ops local`: arguments are checked before anything is built or started."""

from __future__ import annotations

import pytest

from infra.ops.cli import main


def _run(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(["local", *args])
    code = exit_info.value.code
    assert isinstance(code, int)
    return code


def test_a_bad_image_source_in_the_environment_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JOBSEARCH_LOCAL_IMAGES", "alpine")
    assert _run("--env", "test", "up") == 1
    error = capsys.readouterr().err
    assert "JOBSEARCH_LOCAL_IMAGES='alpine'" in error
    assert "official, debian" in error


def test_rollout_needs_an_image(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("rollout") == 2
    assert "--image" in capsys.readouterr().err


def test_unknown_instance_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("--env", "prod", "down") == 2
    assert "invalid choice: 'prod'" in capsys.readouterr().err


@pytest.mark.parametrize("verb", ["status", "rollback"])
def test_status_and_rollback_have_one_way_in(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`ops status --stack local` and `ops rollback --stack local`, not a second local copy."""
    assert _run(verb) == 2
    assert f"invalid choice: '{verb}'" in capsys.readouterr().err
