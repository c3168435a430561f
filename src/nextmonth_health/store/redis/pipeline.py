"""Script calls to Redis: EVALSHA, pipelined, loading a script when the server does not
know it yet.

Why here, apart from the store: how calls travel (one round trip, batched per site on a
single Redis, per node on a cluster, again after NOSCRIPT) is one concern the store's
methods should not repeat; they say which calls, this says how.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Final

from redis.cluster import RedisCluster
from redis.exceptions import AskError, NoScriptError, RedisError, TryAgainError

from .calls import Command, ScriptCall, script_sources

#: Calls of one script that a pass makes per site (leases, open incidents, windows) are
#: sent to a single Redis as one call of its batched form per this many sites: a script
#: call costs the client far more than the server, and a chunk this size keeps each
#: call short (a few milliseconds), so other clients are not held up.
_BATCH_CALLS: Final = 50


class ScriptRunner:
    """Runs script calls on ``client`` (which the store replaces in a forked child)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.scripts = {name: (source, _sha1(source)) for name, source in script_sources().items()}

    def run(self, calls: Sequence[ScriptCall], *, batch: bool = False) -> list[Any]:
        """Run script calls in one pipelined round trip; return their results, in order.

        With ``batch`` (calls of one script, per site, that only read or renew a lease),
        a single Redis gets them :data:`_BATCH_CALLS` at a time, each batch as one call.
        A server that lost its script cache (a restart, a failover) answers NOSCRIPT: the
        scripts are loaded and only those calls run again.
        """
        return self._run([call.command() for call in calls], batch=batch)

    def _run(self, commands: Sequence[Command], *, batch: bool = False) -> list[Any]:
        if batch and len(commands) > 1 and not isinstance(self.client, RedisCluster):
            return self._run_batched(commands)
        results = self._pipeline_scripts(commands)
        retry = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if retry:
            for name in {commands[i][0] for i in retry}:
                self.client.script_load(self.scripts[name][0])
            again = self._pipeline_scripts([commands[i] for i in retry])
            for i, result in zip(retry, again, strict=True):
                results[i] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    def _run_batched(self, commands: Sequence[Command]) -> list[Any]:
        packed: list[Command] = []
        for i in range(0, len(commands), _BATCH_CALLS):
            chunk = commands[i : i + _BATCH_CALLS]
            name = chunk[0][0]
            keys: list[Any] = []
            args: list[Any] = [len(chunk)]
            for script, call_keys, call_args in chunk:
                if script != name:
                    raise ValueError(f"one batch runs one script, got {name!r} and {script!r}")
                keys += call_keys
                args += (len(call_keys), len(call_args), *call_args)
            packed.append((f"batched:{name}", keys, args))
        return [result for replies in self._run(packed) for result in replies]

    def _pipeline_scripts(self, commands: Sequence[Command]) -> list[Any]:
        client = self.client
        if not isinstance(client, RedisCluster):
            return self._pipeline_on(client, commands)
        # A cluster pipeline refuses scripts: pipeline them to each key's node directly, one
        # round trip per node. A slot that moved meanwhile is retried through the cluster
        # client, which follows the redirection and refreshes its slot map.
        by_node: dict[str, list[int]] = defaultdict(list)
        nodes = {}
        for i, (_, keys, _) in enumerate(commands):
            node = client.get_node_from_key(keys[0])
            nodes[node.name] = node
            by_node[node.name].append(i)
        results: list[Any] = [None] * len(commands)
        for name, indexes in by_node.items():
            connection = client.get_redis_connection(nodes[name])
            replies = self._pipeline_on(connection, [commands[i] for i in indexes])
            for i, result in zip(indexes, replies, strict=True):
                if isinstance(result, AskError | TryAgainError):  # MovedError is an AskError
                    script, keys, args = commands[i]
                    try:
                        result = client.evalsha(self.scripts[script][1], len(keys), *keys, *args)
                    except RedisError as exc:
                        result = exc
                results[i] = result
        return results

    def _pipeline_on(self, client: Any, commands: Sequence[Command]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for name, keys, args in commands:
            pipe.evalsha(self.scripts[name][1], len(keys), *keys, *args)
        return list(pipe.execute(raise_on_error=False))


def _sha1(source: str) -> str:
    return hashlib.sha1(source.encode()).hexdigest()
