"""The Redis store's Lua scripts as package files: each one Redis accepts, and the files the
package ships are exactly the ones the code reads (a file nobody loads, or a name with no
file, fails here rather than on a server)."""

from __future__ import annotations

from importlib.resources import files

import pytest

from nextmonth_health.store.redis import calls
from nextmonth_health.store.redis.pipeline import ScriptRunner

from .redis_server import RedisServer


def shipped() -> set[str]:
    folder = files(calls.__package__) / "scripts"
    return {entry.name for entry in folder.iterdir() if entry.name.endswith(".lua")}


def test_the_shipped_files_are_the_ones_the_code_reads() -> None:
    used = {part for parts in calls.SCRIPT_FILES.values() for part in parts} | {calls.BATCH_LOOP}
    assert shipped() == {f"{name}.lua" for name in used}


@pytest.mark.parametrize("name", sorted(calls.script_sources()))
def test_each_script_loads_into_redis(redis_db: RedisServer, name: str) -> None:
    client = redis_db.client()
    try:
        source, sha = ScriptRunner(client).scripts[name]
        assert client.script_load(source) == sha
    finally:
        client.close()


def header(name: str, part: str) -> list[str]:
    """The names a script's header comment gives its KEYS or ARGV (``-- KEYS: a, b``)."""
    for line in calls.lua(name).splitlines():
        if not line.startswith("--"):
            break
        label, _, names = line.removeprefix("-- ").partition(": ")
        if label == part or label == part + ":":
            return [n.strip() for n in names.split(",") if n.strip()]
    raise AssertionError(f"{name}.lua names no {part}")


def test_every_script_has_one_call_class() -> None:
    assert set(calls.CALLS) == set(calls.SCRIPT_FILES)


@pytest.mark.parametrize("name", sorted(calls.CALLS))
def test_each_header_names_its_call_classs_layout(name: str) -> None:
    layout = calls.CALLS[name].layout()
    assert (header(name, "KEYS"), header(name, "ARGV")) == (layout["KEYS"], layout["ARGV"])


def test_a_call_lays_out_its_fields_in_order() -> None:
    hashes = calls.AlertHashes(b"a", b"c", b"k", b"n", b"r")
    call = calls.MarkNotified(hashes, b"id", None, "2.5", True, 60)
    assert call.command() == (
        "mark_notified",
        [b"a", b"c", b"k", b"n", b"r"],
        [b"id", "", "2.5", "1", 60],
    )
    write = calls.Write(
        index=b"ti",
        mark_key=None,
        prefix=b"p:",
        raw_ttl=7200,
        exact_limit=512,
        mark=None,
        rollups=[(300, 7200), (3600, 86400)],
        signals=[b"request"],
        late_write_seconds=30,
        lines=b"",
    )
    assert write.command() == (
        "write",
        [b"ti"],
        [b"p:", 7200, 512, "", 2, 300, 7200, 3600, 86400, 1, b"request", 30, b""],
    )
