"""The build context that .dockerignore lets through: the lock and the app, nothing else."""

from __future__ import annotations

from pathlib import Path

from docker.utils.build import exclude_paths

REPO_ROOT = Path(__file__).resolve().parents[3]


def _context(root: Path) -> set[str]:
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return set(exclude_paths(str(root), patterns, dockerfile="service/Dockerfile"))


def test_context_is_the_lock_and_the_service_package() -> None:
    sent = _context(REPO_ROOT)
    assert "requirements.lock" in sent
    assert "service/jobsearch/main.py" in sent
    # Docker always sends these two; they reach no layer.
    extra = {"service/Dockerfile", ".dockerignore"}
    outside = {
        path
        for path in sent - extra
        if path != "requirements.lock" and not path.startswith("service/jobsearch")
    }
    assert outside == set()


def test_secrets_tests_and_bytecode_stay_out(tmp_path: Path) -> None:
    (tmp_path / "service" / "jobsearch" / "__pycache__").mkdir(parents=True)
    (tmp_path / "service" / "jobsearch" / "main.py").write_text("")
    (tmp_path / "service" / "jobsearch" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"")
    (tmp_path / "service" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "requirements.lock").write_text("")
    (tmp_path / ".env").write_text("RAPID_API_KEY=secret\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("")
    sent = _context(tmp_path)
    assert ".env" not in sent
    assert not any(path.startswith("tests") for path in sent)
    assert not any("__pycache__" in path or path.endswith(".pyc") for path in sent)
    assert "service/jobsearch/main.py" in sent
