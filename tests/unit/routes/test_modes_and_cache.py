"""The modes data file's faults carry file:line; the network cache is keyed and reused."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.core.definitions import DefinitionError, check_all
from app.routes.modes import MODES_FILE, decode_modes
from app.routes.network import cache_key, load_network

GOOD = MODES_FILE.read_text()


def _faults(text: str) -> list[str]:
    with pytest.raises(DefinitionError) as exc:
        decode_modes(text.encode(), "transport-modes.toml")
    return exc.value.faults


def _line(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_shipped_file_decodes() -> None:
    modes = decode_modes(GOOD.encode(), "transport-modes.toml")
    assert {m.id for m in modes.modes} >= {"road", "sea", "air"}
    assert modes.passage("bab-el-mandeb").tag == "babalmandab"


def test_a_wrong_type_names_its_line() -> None:
    text = GOOD.replace("speed_kmh = 800.0", 'speed_kmh = "fast"')
    (fault,) = _faults(text)
    line = _line(text, 'speed_kmh = "fast"')
    assert fault.startswith(f"transport-modes.toml:{line}:")


def test_an_unknown_field_names_its_line() -> None:
    text = GOOD.replace("circuity = 1.05", "circuity = 1.05\nwings = 2")
    (fault,) = _faults(text)
    assert fault.startswith(f"transport-modes.toml:{_line(text, 'wings = 2')}:")
    assert "wings" in fault


def test_duplicates_and_missing_modes_are_reported_together() -> None:
    text = GOOD.replace('id = "rail"', 'id = "road"').replace('tag = "sunda"', 'tag = "suez"')
    faults = _faults(text)
    assert any("duplicate mode id 'road'" in f for f in faults)
    sunda = next(n for n, line in enumerate(text.splitlines(), 1) if 'name = "Sunda Strait"' in line) - 1
    assert f"transport-modes.toml:{sunda}: passage 'sunda': tag 'suez' is mapped twice" in faults
    text = GOOD.replace('id = "air"', 'id = "plane"')
    assert any("mode 'air' is required" in f for f in _faults(text))


def test_a_bad_toml_file_names_its_line() -> None:
    (fault,) = _faults(GOOD.replace("[access]", "[access"))
    assert fault.startswith("transport-modes.toml:") and ":1:" not in fault[:25]


def test_check_all_knows_the_file(tmp_path: Path) -> None:
    ok, faults = check_all()
    assert not faults
    assert any(line.startswith("workflows/transport-modes.toml:") and "modes" in line for line in ok)


def test_cache_is_reused_and_keyed_by_the_data(tmp_path: Path) -> None:
    first = load_network(tmp_path)
    (cached,) = tmp_path.glob("routes-network-*.pickle")
    assert cache_key() in cached.name
    start = time.perf_counter()
    again = load_network(tmp_path)
    assert time.perf_counter() - start < 2.0
    assert again.junctions == first.junctions and len(again.places) == len(first.places)
    other = tmp_path / "modes.toml"
    other.write_text(GOOD.replace('version = "2026.11"', 'version = "2026.12"'))
    assert cache_key(other) != cache_key()


def test_a_torn_cache_file_is_rebuilt(tmp_path: Path) -> None:
    (tmp_path / f"routes-network-{cache_key()}.pickle").write_bytes(b"\x80\x05torn")
    assert load_network(tmp_path).junctions > 1000
