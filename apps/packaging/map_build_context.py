"""Generate the MONAI Application Package (MAP) build context of ``apps/xray_synthesis`` offline.

Runs the pinned packager's own ``package`` steps (holoscan-cli 4.0.0, the same code as ``monai-deploy package``):
the artifact manifest is read from ``holoscan-artifacts.json`` (no download), then ``map/app.json``,
``map/pkg.json``, the application, ``app.config`` (app.yaml), the models, ``pip/requirements.txt`` and the
``Dockerfile`` are written into ``OUT``. It stops before ``docker buildx build``, the one step that needs a Docker
daemon. Run it with the packager environment's Python (see ``apps/xray_synthesis/README.md``)::

    .venv-map/bin/python apps/packaging/map_build_context.py OUT --models MODEL_DIR

and on a machine with Docker build the image from ``OUT`` with the command it prints.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

from holoscan_cli.__main__ import parse_args
from holoscan_cli.packager.arguments import PackagingArguments
from holoscan_cli.packager.container_builder import PythonAppBuilder
from holoscan_cli.packager.packager import _create_app_manifest, _create_package_manifest

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "apps" / "xray_synthesis"
MANIFEST = Path(__file__).resolve().with_name("holoscan-artifacts.json")


def stage_application(stage: Path) -> Path:
    """Copy the app and the ``monai_msgsagan`` package into ``stage/xray_synthesis``.

    The package goes inside the application folder (``/opt/holoscan/app`` in the image, the first entry of
    ``sys.path`` when the app runs) rather than through ``--add``, which would put every sub-folder of the package
    on ``PYTHONPATH`` and let modules such as ``metrics`` or ``dicom`` shadow top-level names. The package is copied,
    not installed, so its distribution metadata (the version, from ``pyproject.toml``) is written beside it.
    """
    app = stage / "xray_synthesis"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(APP, app, ignore=ignore)
    shutil.copytree(REPO / "monai_msgsagan", app / "monai_msgsagan", ignore=ignore)
    version = re.search(r'^version = "(.+)"$', (REPO / "pyproject.toml").read_text(), re.M).group(1)
    info = app / f"monai_msgsagan-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: monai-msgsagan\nVersion: {version}\n")
    return app


def build_context(out: Path, models: Path, tag: str, platform: str) -> Path:
    """Write the build context into the new folder ``out``; returns the Dockerfile path."""
    if out.exists():
        raise FileExistsError(f"{out} exists; give a new folder for the build context.")
    if not models.exists():
        raise FileNotFoundError(f"model path {models} does not exist.")
    with tempfile.TemporaryDirectory(prefix="map-app-") as stage:
        app = stage_application(Path(stage))
        # the `monai-deploy package` command line, as a machine with Docker runs it
        args = parse_args([
            "monai-deploy", "package", str(app),
            "--config", str(APP / "app.yaml"),
            "--sdk", "monai-deploy",
            "--platform", platform,
            "--source", str(MANIFEST),
            "--models", str(models),
            "--tag", tag,
        ])  # fmt: skip
        out.mkdir(parents=True)
        # holoscan_cli.packager.packager._package_application up to, not including, builder._build_internal
        packaging = PackagingArguments(args, str(out))
        _create_app_manifest(packaging.application_manifest, str(out))
        _create_package_manifest(packaging.package_manifest, str(out))
        builder = PythonAppBuilder(packaging.build_parameters, str(out))
        dockerfile = None
        for platform_parameters in packaging.platforms:
            builder._copy_supporting_files(platform_parameters)
            dockerfile = Path(builder._write_dockerfile(platform_parameters))
            print(
                "On a machine with Docker:\n  docker buildx build "
                f"--platform {platform_parameters.docker_arch} -f {dockerfile} -t {platform_parameters.tag} {out}"
            )
    return dockerfile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="new folder for the build context")
    parser.add_argument("--models", type=Path, required=True, help="model folder (MODEL/<name>/model.ts) or file")
    parser.add_argument("--tag", default="msgsagan-xray-synthesis:0.1.0")
    parser.add_argument("--platform", default="x86_64")
    args = parser.parse_args(argv)
    try:
        build_context(args.out.resolve(), args.models.resolve(), args.tag, args.platform)
    except (OSError, ValueError) as e:
        print(f"map_build_context: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
