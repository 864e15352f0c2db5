"""The package version, read from the installed distribution's metadata: ``pyproject.toml`` is its one source.

A leaf module (no package imports), so modules inside the package can name the version without importing the
package from within itself. An editable install reads the version written at install time: re-run
``scripts/setup.sh`` after changing it in ``pyproject.toml``.
"""

from importlib.metadata import version

__version__: str = version("monai-msgsagan")
