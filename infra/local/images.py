"""Images for the local topology: the service, and bases built from Debian packages.

Users get the official images (topology.Images). A machine that reaches no
container registry (this workplace, some CI boxes) builds stand-ins instead:
a Debian bookworm root filesystem from `debootstrap`, imported with
`docker import`, with Python from Debian; and on top of it the proxy, Redis
and Postgres from Debian's packages (recipes in infra/local/recipes/). Every
such image is tagged by a hash of its recipe, so it is built once per machine.

The job sources' stand-ins (infra/standins) run on their own image, a layer
over the service image that adds the package: the production image never has it.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import docker
from docker.errors import BuildError, DockerException, ImageNotFound

from infra.local.engine import apt_install
from infra.topology import Images

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE_DOCKERFILE = "service/Dockerfile"
STANDIN_RECIPES = REPO_ROOT / "infra" / "local" / "recipes"
# The job sources' stand-ins: their recipe, and what it copies from the repository.
SOURCE_STANDINS_RECIPE = STANDIN_RECIPES / "standins" / "Dockerfile"
SOURCE_STANDINS_FILES = ("infra/__init__.py", "infra/standins")
SOURCE_STANDINS_REPOSITORY = "jobsearch-local/standins"
# The Debian-built image of each topology image (a field of Images) with a recipe
# under recipes/, for machines with no registry; the service's is service/Dockerfile.
RECIPES = {"proxy": "caddy", "redis": "redis", "postgres": "postgres"}
STANDINS = tuple(RECIPES.values())

DEBIAN_SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
BASE_REPOSITORY = "jobsearch-local/debian-python"
# Downloads during builds go through this machine's TLS chain, which may be
# self-signed: the base trusts exactly what the host trusts.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Bump to rebuild every base after changing how it is made.
RECIPE_VERSION = "1"
# What a minimal base needs none of: package caches, indexes, docs, translations.
TRIMMED = (
    "var/cache/apt",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
)


class ImageError(Exception):
    """An image could not be built; the message says which and why."""


def _digest(parts: Iterable[bytes]) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(hashlib.sha256(part).digest())
    return hasher.hexdigest()[:12]


def _exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except ImageNotFound:
        return False
    return True


def debian_base_tag() -> str:
    recipe = json.dumps(
        {
            "suite": DEBIAN_SUITE,
            "packages": BASE_PACKAGES,
            "version": RECIPE_VERSION,
            "trimmed": TRIMMED,
        }
    ).encode()
    ca_bundle = HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.exists() else b""
    return f"{BASE_REPOSITORY}:{_digest([recipe, ca_bundle])}"


def debian_base(client: docker.DockerClient, work_dir: Path) -> str:
    """Tag of a bookworm base with Debian's Python 3, built only if absent."""
    tag = debian_base_tag()
    if _exists(client, tag):
        return tag
    if shutil.which("debootstrap") is None:
        apt_install("debootstrap")
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="rootfs-") as scratch:
        root = Path(scratch) / "root"
        # No mirror argument: debootstrap uses its default.
        command = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES)}",
            DEBIAN_SUITE,
            str(root),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise ImageError(f"debootstrap of {DEBIAN_SUITE} failed: {' / '.join(tail)}")
        if HOST_CA_BUNDLE.exists():
            shutil.copyfile(HOST_CA_BUNDLE, root / "etc/ssl/certs/ca-certificates.crt")
        for relative in TRIMMED:
            target = root / relative
            if target.is_dir():
                shutil.rmtree(target)
                target.mkdir()
        for needed_by_apt in ("var/lib/apt/lists/partial", "var/cache/apt/archives/partial"):
            (root / needed_by_apt).mkdir(parents=True, exist_ok=True)
        archive = Path(scratch) / "rootfs.tar"
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(root), "-cf", str(archive), "."],
            check=True,
            capture_output=True,
        )
        repository, _, version = tag.partition(":")
        client.api.import_image_from_file(
            str(archive),
            repository=repository,
            tag=version,
            changes=["ENV LANG=C.UTF-8", 'CMD ["python3"]'],
        )
    return tag


def _build(
    client: docker.DockerClient,
    *,
    context: Path,
    tag: str,
    dockerfile: str = "Dockerfile",
    buildargs: dict[str, str] | None = None,
) -> str:
    try:
        image, _ = client.images.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=tag,
            buildargs=buildargs or {},
            # Package downloads need the host's network (and its resolver).
            network_mode="host",
            rm=True,
            forcerm=True,
            pull=False,
        )
    except BuildError as error:
        lines = [
            str(item.get("stream") or item.get("error") or "").strip() for item in error.build_log
        ]
        tail = " / ".join(line for line in lines if line)[-600:]
        raise ImageError(f"building {tag} failed: {error.msg}; last output: {tail}") from None
    return str(image.id)


def standin_tag(name: str, base: str) -> str:
    recipe = STANDIN_RECIPES / name
    if not recipe.is_dir():
        raise ImageError(f"no recipe for a {name} stand-in in {recipe}")
    files = sorted(path for path in recipe.rglob("*") if path.is_file())
    parts = [base.encode()] + [path.name.encode() + path.read_bytes() for path in files]
    return f"jobsearch-local/{name}:{_digest(parts)}"


def standin(client: docker.DockerClient, name: str, base: str) -> str:
    """Tag of the Debian-package stand-in for an official image, built only if absent."""
    tag = standin_tag(name, base)
    if not _exists(client, tag):
        _build(client, context=STANDIN_RECIPES / name, tag=tag, buildargs={"BASE_IMAGE": base})
    return tag


def build_from_files(
    client: docker.DockerClient,
    dockerfile: str,
    tag: str,
    files: Mapping[str, bytes] | None = None,
    buildargs: Mapping[str, str] | None = None,
) -> str:
    """Build an image from a Dockerfile given as text and a few files (the whole
    context, so nothing else of the repository is sent); returns its id."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in {"Dockerfile": dockerfile.encode(), **(files or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(content))
    buffer.seek(0)
    try:
        image, _ = client.images.build(
            fileobj=buffer,
            custom_context=True,
            tag=tag,
            buildargs=dict(buildargs or {}),
            rm=True,
            forcerm=True,
            pull=False,
        )
    except BuildError as error:
        raise ImageError(f"building {tag} failed: {error.msg}") from None
    return str(image.id)


def _standins_files() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for entry in SOURCE_STANDINS_FILES:
        path = REPO_ROOT / entry
        found = sorted(path.rglob("*")) if path.is_dir() else [path]
        for item in found:
            if item.is_file() and item.suffix in (".py", ".json"):
                files[item.relative_to(REPO_ROOT).as_posix()] = item.read_bytes()
    return files


def build_standins_image(client: docker.DockerClient, service_image: str) -> str:
    """The job sources' stand-ins on `service_image` (an id or tag); built only when
    that image or the stand-ins' code changed. Returns the image's tag."""
    files = _standins_files()
    recipe = SOURCE_STANDINS_RECIPE.read_bytes()
    base = client.images.get(service_image)
    parts = [str(base.id).encode(), recipe] + [name.encode() + d for name, d in files.items()]
    tag = f"{SOURCE_STANDINS_REPOSITORY}:{_digest(parts)}"
    if not _exists(client, tag):
        # FROM takes a name, not an image id: name the base after its id.
        base_tag = f"{SOURCE_STANDINS_REPOSITORY}-base:{str(base.id).removeprefix('sha256:')[:12]}"
        base.tag(base_tag)
        build_from_files(client, recipe.decode(), tag, files, buildargs={"SERVICE_IMAGE": base_tag})
    return tag


def _git(*args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(REPO_ROOT), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def oci_build_args() -> dict[str, str]:
    """Source, revision and creation time from git: stable for a given commit,
    so that rebuilding an unchanged tree gives the same image."""
    return {
        "SOURCE": _git("config", "--get", "remote.origin.url") or f"file://{REPO_ROOT}",
        "REVISION": _git("rev-parse", "HEAD") or "unknown",
        "CREATED": _git("log", "-1", "--format=%cI") or "unknown",
    }


def build_service_image(client: docker.DockerClient, *, base_image: str | None, tag: str) -> str:
    """Build service/Dockerfile from the repository root; returns the image id.

    Without `base_image`, the Dockerfile's default (the official image) is used.
    """
    buildargs = oci_build_args()
    if base_image is not None:
        buildargs["BASE_IMAGE"] = base_image
    return _build(
        client, context=REPO_ROOT, dockerfile=SERVICE_DOCKERFILE, tag=tag, buildargs=buildargs
    )


def official_base() -> str:
    """The Dockerfile's default base (pinned by digest), read from the Dockerfile itself."""
    for line in (REPO_ROOT / SERVICE_DOCKERFILE).read_text().splitlines():
        if line.startswith("ARG BASE_IMAGE="):
            return line.removeprefix("ARG BASE_IMAGE=").strip()
    raise ImageError(f"{SERVICE_DOCKERFILE} declares no default BASE_IMAGE")


def registry_reachable(client: docker.DockerClient) -> bool:
    """Whether the official images can be had: present already, or pullable now."""
    official = Images(service="")
    base = official_base()
    wanted = (base, *(getattr(official, field) for field in RECIPES))
    if all(_exists(client, tag) for tag in wanted):
        return True
    try:
        client.images.pull(base)
    except DockerException:
        return False
    return True


def service_base(client: docker.DockerClient, source: str, work_dir: Path) -> str | None:
    """The service image's base: None (the Dockerfile's default) for official images."""
    if source == "official":
        return None
    if source != "debian":
        raise ImageError(f"image source {source!r}: expected official or debian")
    return debian_base(client, work_dir)


def runtime_images(client: docker.DockerClient, source: str, work_dir: Path) -> Images:
    """The topology's images but the service's (left empty: each `up` chooses it)."""
    base = service_base(client, source, work_dir)
    if base is None:
        return Images(service="")
    return Images(
        service="", **{field: standin(client, recipe, base) for field, recipe in RECIPES.items()}
    )
