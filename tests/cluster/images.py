"""Container images for the real node, built without a Docker engine or a registry.

Four images, each an archive cached under ``~/.cache/krally/images`` and keyed on its recipe
(a changed recipe, source file or base builds anew; an unchanged one is reused in milliseconds):

- ``pause``: the pod sandbox (``images/pause.c``, ``gcc -static``, a scratch image);
- ``base``: Debian bookworm with Python (``debootstrap --variant=minbase``), standing in for the
  public Python base image that users build ``Dockerfile`` from;
- ``krally``: the project's own ``Dockerfile`` built by ``buildah bud`` on that base. Its
  kubectl stage is replaced by the kubectl that ``scripts/build-control-plane.sh`` built from the
  Kubernetes module (``--build-context kubectl=DIR``), and pip installs offline from a wheelhouse
  made on this machine, so the build sends nothing anywhere;
- ``alt``: ``images/alt.Dockerfile`` on top of krally, a second image for hooks that set
  ``job.image``.

Every step writes its own log; a failure raises ImageError naming the step and that log.

    scripts/build-images        # build what is missing, print the archives
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent / "images"
# Bumped by hand when a recipe below changes in a way its inputs do not show.
RECIPE_VERSION = "2"
BASE_PACKAGES = ("python3", "python3-venv")
BASE_SUITE = "bookworm"
# The names pods use (the shipped manifests are pointed at KRALLY_REF by an overlay:
# Cluster.install_overlay()).
PAUSE_REF = "localhost/krally-pause:local"
BASE_REF = "localhost/krally-base:bookworm"
KRALLY_REF = "localhost/krally:test"
ALT_REF = "localhost/krally-alt:test"


class ImageError(RuntimeError):
    """An image step failed; the message names the step and its log file."""


@dataclass(frozen=True)
class Archive:
    ref: str  # the image's name inside the archive (and in containerd after import)
    path: Path


def cache_dir() -> Path:
    root = os.environ.get("KRALLY_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "krally"
    )
    return Path(root)


class Builder:
    """Builds the images once per recipe; `archives()` returns them, building what is missing."""

    def __init__(self, kubectl: Path, cache: Path | None = None, quiet: bool = False) -> None:
        self.kubectl = kubectl
        self.cache = (cache or cache_dir()) / "images"
        self.logs = self.cache / "logs"
        self.quiet = quiet
        # buildah's own storage, kept apart from the host's /var/lib/containers.
        self.storage = self.cache / "buildah"

    # -- public ----------------------------------------------------------------------------

    def archives(self) -> list[Archive]:
        self.cache.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        pause = self.pause()
        base_key, base = self.base()
        krally_key, krally = self.krally(base_key, base)
        alt = self.alt(krally_key, krally)
        return [
            pause,
            krally,
            alt,
        ]

    def pause(self) -> Archive:
        source = HERE / "pause.c"
        key = _digest([RECIPE_VERSION, _gcc_version()], [source])
        archive = self.cache / f"pause-{key}.tar"
        if not archive.exists():
            self._note("building the pause image (gcc -static)")
            with tempfile.TemporaryDirectory() as tmp:
                binary = Path(tmp) / "pause"
                self._run(
                    "pause: gcc", ["gcc", "-static", "-O2", "-s", "-o", str(binary), str(source)]
                )
                self._scratch_image("pause", binary, "/pause", ["/pause"], PAUSE_REF, archive)
        return Archive(PAUSE_REF, archive)

    def base(self) -> tuple[str, Archive]:
        key = _digest([RECIPE_VERSION, BASE_SUITE, *BASE_PACKAGES, _host_arch()], [])
        archive = self.cache / f"base-{BASE_SUITE}-{key}.tar"
        if not archive.exists():
            self._note("building the Debian base image (debootstrap, about 1-3 minutes)")
            self._debootstrap_image(archive)
        return key, Archive(BASE_REF, archive)

    def krally(self, base_key: str, base: Archive) -> tuple[str, Archive]:
        charts = chart_library_dir()  # before the key: vendor/ is part of the sources
        sources = [REPO_ROOT / "Dockerfile", REPO_ROOT / "pyproject.toml", REPO_ROOT / "README.md"]
        sources += _tree(REPO_ROOT / "operator")
        sources += [REPO_ROOT / "scripts" / "build-control-plane.sh"]
        key = _digest([RECIPE_VERSION, base_key, _file_digest(self.kubectl)], sources)
        archive = self.cache / f"krally-{key}.tar"
        if not archive.exists():
            self._note("building the krally image from Dockerfile (buildah bud)")
            wheels = self._wheelhouse()
            with tempfile.TemporaryDirectory() as tmp:
                kubectl_dir = Path(tmp) / "kubectl"
                kubectl_dir.mkdir()
                shutil.copy2(self.kubectl, kubectl_dir / "kubectl")
                # The chart library as scripts/fetch-chart-lib installed it (hash checked).
                charts_dir = Path(tmp) / "chart-library"
                shutil.copytree(charts, charts_dir / "vendor")
                pip_conf = Path(tmp) / "pip.conf"
                pip_conf.write_text("[global]\nno-index = true\nfind-links = /wheels\n")
                self._load(base)
                self._bud(
                    "krally",
                    REPO_ROOT / "Dockerfile",
                    REPO_ROOT,
                    KRALLY_REF,
                    archive,
                    build_args={"PYTHON_IMAGE": BASE_REF},
                    extra=[
                        f"--build-context=kubectl={kubectl_dir}",
                        f"--build-context=chart-library={charts_dir}",
                        f"--volume={wheels}:/wheels:ro",
                        f"--volume={pip_conf}:/etc/pip.conf:ro",
                    ],
                )
        return key, Archive(KRALLY_REF, archive)

    def alt(self, krally_key: str, krally: Archive) -> Archive:
        dockerfile = HERE / "alt.Dockerfile"
        key = _digest([RECIPE_VERSION, krally_key], [dockerfile, *_tree(HERE / "plugins")])
        archive = self.cache / f"alt-{key}.tar"
        if not archive.exists():
            self._note("building the second hook image (images/alt.Dockerfile)")
            self._load(krally)
            self._bud(
                "alt",
                dockerfile,
                HERE,
                ALT_REF,
                archive,
                build_args={"KRALLY_IMAGE": KRALLY_REF},
            )
        return Archive(ALT_REF, archive)

    # -- steps -----------------------------------------------------------------------------

    def _buildah(self, *args: str) -> list[str]:
        runroot = Path(tempfile.gettempdir()) / "krally-buildah-run"
        return [
            "buildah",
            f"--root={self.storage}",
            f"--runroot={runroot}",
            "--storage-driver=vfs",
            *args,
        ]

    def _scratch_image(
        self, step: str, binary: Path, dest: str, entrypoint: Sequence[str], ref: str, out: Path
    ) -> None:
        container = self._output(f"{step}: buildah from", self._buildah("from", "scratch"))
        try:
            self._run(f"{step}: buildah copy", self._buildah("copy", container, str(binary), dest))
            self._run(
                f"{step}: buildah config",
                self._buildah("config", f"--entrypoint={_json_list(entrypoint)}", container),
            )
            self._run(f"{step}: buildah commit", self._buildah("commit", "-q", container, ref))
        finally:
            self._run(f"{step}: buildah rm", self._buildah("rm", container), check=False)
        self._push(step, ref, out)

    def _debootstrap_image(self, out: Path) -> None:
        mirror = debian_mirror()
        container = self._output("base: buildah from", self._buildah("from", "scratch"))
        try:
            root = self._output("base: buildah mount", self._buildah("mount", container))
            self._run(
                "base: debootstrap",
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(BASE_PACKAGES)}",
                    BASE_SUITE,
                    root,
                    mirror,
                ],
            )
            # What only the build needed (package caches and lists) and what no pod reads
            # (documentation, manual pages, translations): about a third of the size.
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for item in Path(root, junk).glob("*"):
                    if item.is_file():
                        item.unlink()
            for junk in ("usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info"):
                shutil.rmtree(Path(root, junk), ignore_errors=True)
            self._run(
                "base: buildah config",
                self._buildah("config", "--cmd=/usr/bin/python3", container),
            )
            self._run("base: buildah commit", self._buildah("commit", "-q", container, BASE_REF))
        finally:
            self._run("base: buildah rm", self._buildah("rm", container), check=False)
        self._push("base", BASE_REF, out)

    def _wheelhouse(self) -> Path:
        """Wheels of krally's dependencies (and its build backend), made by this machine's pip."""
        pyproject = REPO_ROOT / "pyproject.toml"
        key = _digest([RECIPE_VERSION, sys.version.split()[0]], [pyproject])
        wheels = self.cache / f"wheels-{key}"
        if wheels.is_dir():
            return wheels
        partial = wheels.with_name(wheels.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
        self._run(
            "wheels: pip wheel",
            [*pip, "wheel", "--quiet", "--wheel-dir", str(partial), str(REPO_ROOT)],
        )
        self._run(
            "wheels: pip download (build backend)",
            [*pip, "download", "--quiet", "--dest", str(partial), "setuptools>=68", "wheel"],
        )
        for own in partial.glob("krally-*.whl"):
            own.unlink()  # the image builds krally from its sources, never from a stale wheel
        partial.rename(wheels)
        return wheels

    def _bud(
        self,
        step: str,
        dockerfile: Path,
        context: Path,
        ref: str,
        out: Path,
        build_args: dict[str, str],
        extra: Iterable[str] = (),
    ) -> None:
        args = [f"--build-arg={k}={v}" for k, v in build_args.items()]
        self._run(
            f"{step}: buildah bud",
            self._buildah(
                "bud",
                "--network=none",
                "--isolation=oci",
                "--pull=never",
                "--layers=false",
                *args,
                *extra,
                "-f",
                str(dockerfile),
                "-t",
                ref,
                str(context),
            ),
        )
        self._push(step, ref, out)

    def _load(self, archive: Archive) -> None:
        """Make an archived image known to buildah's storage (a base for the next build)."""
        known = self._run("buildah images", self._buildah("inspect", archive.ref), check=False)
        if known != 0:
            self._run(
                f"buildah pull {archive.ref}",
                self._buildah("pull", "-q", f"docker-archive:{archive.path}"),
            )

    def _push(self, step: str, ref: str, out: Path) -> None:
        partial = out.with_name(out.name + ".partial")
        partial.unlink(missing_ok=True)
        self._run(
            f"{step}: buildah push",
            self._buildah("push", "-q", ref, f"docker-archive:{partial}:{ref}"),
        )
        partial.rename(out)
        self._prune(out)
        # Older builds' images, now untagged: vfs keeps full copies of their layers.
        self._run(f"{step}: buildah rmi --prune", self._buildah("rmi", "--prune"), check=False)

    def _prune(self, keep: Path) -> None:
        """Drop older archives of the same image: only the current recipe's is kept."""
        prefix = keep.name.rsplit("-", 1)[0] + "-"
        for old in self.cache.glob(f"{prefix}*.tar"):
            if old != keep and old.name.rsplit("-", 1)[0] + "-" == prefix:
                old.unlink(missing_ok=True)

    # -- process plumbing ------------------------------------------------------------------

    def _log_path(self, step: str) -> Path:
        name = "".join(ch if ch.isalnum() else "-" for ch in step.split(":")[0]).strip("-")
        return self.logs / f"{name}.log"

    def _run(self, step: str, argv: Sequence[str], check: bool = True) -> int:
        log = self._log_path(step)
        started = time.monotonic()
        with log.open("ab") as out:
            out.write(f"\n$ {' '.join(argv)}\n".encode())
            out.flush()
            try:
                proc = subprocess.run(
                    list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
                )
            except FileNotFoundError as exc:
                raise ImageError(f"{step}: {exc.filename} is not installed (log: {log})") from exc
            out.write(
                f"# exit {proc.returncode} after {time.monotonic() - started:.1f}s\n".encode()
            )
        if check and proc.returncode != 0:
            raise ImageError(f"{step} failed (exit {proc.returncode}); log: {log}")
        return proc.returncode

    def _output(self, step: str, argv: Sequence[str]) -> str:
        log = self._log_path(step)
        proc = subprocess.run(list(argv), capture_output=True, text=True)
        with log.open("a") as out:
            out.write(f"\n$ {' '.join(argv)}\n{proc.stdout}{proc.stderr}# exit {proc.returncode}\n")
        if proc.returncode != 0:
            raise ImageError(f"{step} failed (exit {proc.returncode}); log: {log}")
        return proc.stdout.strip().splitlines()[-1]

    def _note(self, text: str) -> None:
        if not self.quiet:
            print(f"[images] {text}", file=sys.__stderr__, flush=True)


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (debootstrap fetches from the same place)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
                return parts[2] if parts[1].startswith("[") else parts[1]
    raise ImageError("no Debian mirror found in /etc/apt/sources.list(.d) for debootstrap")


def chart_library_dir() -> Path:
    """krally/results/html/vendor, fetched (npm pack, hash checked) when missing."""
    sys.path.insert(0, str(REPO_ROOT / "operator"))
    from krally.results.html import assets

    subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "fetch-chart-lib")], check=True)
    return assets.VENDOR_DIR


def _tree(root: Path) -> list[Path]:
    skip = {"__pycache__", ".mypy_cache", ".ruff_cache"}
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip and not d.endswith(".egg-info"))
        found += [Path(dirpath, f) for f in sorted(filenames) if not f.endswith(".pyc")]
    return found


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _digest(words: Sequence[str], files: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for word in words:
        h.update(word.encode() + b"\0")
    for path in files:
        h.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0")
        h.update(_file_digest(path).encode())
    return h.hexdigest()[:16]


def _gcc_version() -> str:
    try:
        return subprocess.run(["gcc", "-dumpfullversion"], capture_output=True, text=True).stdout
    except FileNotFoundError as exc:
        raise ImageError("pause: gcc is not installed (apt-get install gcc libc6-dev)") from exc


def _host_arch() -> str:
    return os.uname().machine


def _json_list(items: Sequence[str]) -> str:
    return "[" + ",".join(f'"{item}"' for item in items) + "]"


def main() -> int:
    from tests.cluster.controlplane import ensure_binaries

    try:
        archives = Builder(ensure_binaries() / "kubectl").archives()
    except ImageError as exc:
        print(f"images: {exc}", file=sys.stderr)
        return 1
    for archive in archives:
        print(f"{archive.ref}\t{archive.path}\t{archive.path.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
