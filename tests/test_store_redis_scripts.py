"""The Redis store's Lua scripts as package files: each one Redis accepts, and the files the
package ships are exactly the ones the code reads (a file nobody loads, or a name with no
file, fails here rather than on a server)."""

from __future__ import annotations

from importlib.resources import files

import pytest

from nextmonth_health.store.redis import calls
from nextmonth_health.store.redis.pipeline import ScriptRunner

from .redis_server import RedisServer, redis_db, redis_server  # noqa: F401  (fixtures)


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
