"""Locate the package's data (config/, urdf/, models/, launch/).

Installed with colcon: share/hjepa_agent/<dir>. From a source checkout (or a pip
editable install): the repository root next to the hjepa_agent package.
"""
from __future__ import annotations

from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def share_dir() -> Path:
    """Directory holding config/, urdf/, models/ and launch/."""
    if (_SOURCE_ROOT / "package.xml").is_file() and (_SOURCE_ROOT / "config").is_dir():
        return _SOURCE_ROOT
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory("hjepa_agent"))
    except (ImportError, LookupError) as exc:  # PackageNotFoundError subclasses KeyError
        raise FileNotFoundError(
            "hjepa_agent data not found: neither a source checkout next to the package "
            "nor an installed share/hjepa_agent. Run from the repository or install with colcon.") from exc


def data_path(*parts: str) -> Path:
    """Path of a file under the package's data directory, e.g. data_path('config', 'ego_model.yaml')."""
    return share_dir().joinpath(*parts)


def package_relative(value: str, *default: str) -> Path:
    """A path parameter: empty, the package's ``default`` (data_path parts); absolute, as given; relative,
    from the working directory if it is there, else under the package's data directory (so a params file
    can name the shipped models/skidrover or config/watchdog_skidrover.yaml wherever the agent is started)."""
    if not value:
        return data_path(*default)
    p = Path(value)
    if p.is_absolute() or p.exists():
        return p
    return data_path(*p.parts)


def models_dir(value: str) -> Path:
    """A node's ``models_dir`` parameter as a directory (:func:`package_relative`; empty: models/)."""
    return package_relative(value, "models")
