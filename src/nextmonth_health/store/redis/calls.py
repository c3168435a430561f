"""The Lua scripts of the Redis store, read from the ``scripts/`` files of this package.

Why files: Lua in Python strings is read by no Lua tool and reviewed as a wall of text. A
script is one file, or a few shared functions (``_*.lua``) and its own file, joined in the
order :data:`SCRIPT_FILES` gives; the files ship in the wheel as package data and are read
with :mod:`importlib.resources`, so a zipped install works too.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Final

#: Each script the store runs, by name: the files it is made of, shared functions first.
SCRIPT_FILES: Final[dict[str, tuple[str, ...]]] = {
    "write": ("write",),
    "touch_sites": ("touch_sites",),
    "count_users": ("_count", "count_users"),
    "read_many": ("read_many",),
    "window_users": ("_count", "_series_of", "window_users"),
    "open_incidents": ("open_incidents",),
    "trim": ("_series_of", "trim"),
    "save_incident": ("save_incident",),
    "save_alert": ("save_alert",),
    "acknowledge": ("acknowledge",),
    "mark_notified": ("mark_notified",),
    "save_planned": ("save_planned",),
    "replace_planned": ("replace_planned",),
    "trim_planned": ("trim_planned",),
    "acquire": ("acquire",),
    "release": ("release",),
    "set_with_ttl": ("set_with_ttl",),
}

#: The scripts a pass calls once per site, which the pipeline may batch: each also has a
#: form ``batched:<name>`` that runs several calls in one (``_batch_loop.lua``).
BATCHABLE: Final = ("acquire", "open_incidents", "read_many")

#: The file that turns a script into its batched form.
BATCH_LOOP: Final = "_batch_loop"


def lua(name: str) -> str:
    """The text of ``scripts/<name>.lua``."""
    return (files(__package__) / "scripts" / f"{name}.lua").read_text(encoding="utf-8")


def script_sources() -> dict[str, str]:
    """Every script's source by name, and the batched forms as ``batched:<name>``.

    A batched form makes the script's body a function whose parameters shadow KEYS and
    ARGV (single Redis only: on a cluster, the keys of different sites live in different
    slots).
    """
    sources = {name: "".join(map(lua, parts)) for name, parts in SCRIPT_FILES.items()}
    loop = lua(BATCH_LOOP)
    for name in BATCHABLE:
        sources[f"batched:{name}"] = "local function call(KEYS, ARGV)\n" + sources[name] + "end\n" + loop
    return sources
