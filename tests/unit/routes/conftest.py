from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from app.routes.domain import Network
from app.routes.network import load_network


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    return load_network(tmp_path_factory.mktemp("routes-cache"))


@pytest.fixture(scope="session")
def searoute_graphs() -> tuple[Any, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import searoute

        return searoute.setup_M(), searoute.setup_P()


def searoute_km(graphs: tuple[Any, Any], origin: Any, destination: Any, restrictions: list[str]) -> float:
    """searoute's length between two places (its network only: it leaves out the berth segments)."""
    import searoute

    m, p = graphs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a fully blocked route warns and returns 0
        feature = searoute.searoute(
            (origin.lon, origin.lat), (destination.lon, destination.lat), M=m, P=p, restrictions=restrictions
        )
    return float(feature.properties["length"])


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"
