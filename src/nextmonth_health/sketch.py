"""Bounded-memory distinct counting of affected users.

Health checks want "how many *different* users hit this error", per time
bucket, mergeable across buckets and worker processes.  Small sites (the
common case) need exact numbers, so a counter starts as a plain set and only
turns into a 4 KiB HyperLogLog once it has seen more than ``EXACT_LIMIT``
distinct users, where a ~1.6% standard error is an acceptable price for
constant memory.
"""

from __future__ import annotations

import hashlib
import math
import struct
from array import array
from collections.abc import Iterable
from itertools import islice

__all__ = ["EXACT_LIMIT", "HLL_PRECISION", "DistinctCounter", "Packed", "user_hash"]

EXACT_LIMIT = 512
HLL_PRECISION = 12

_M = 1 << HLL_PRECISION
_RANK_BITS = 64 - HLL_PRECISION
_RANK_MASK = (1 << _RANK_BITS) - 1
_MASK64 = (1 << 64) - 1
_ALPHA_INF = 1.0 / (2.0 * math.log(2.0))

_TAG_EXACT = 0
_UNBOUNDED = 1 << 62
_TAG_HLL = 1

#: A counter as plain data, which the garbage collector does not track (see
#: :meth:`DistinctCounter.pack`): the hashes of an exact one as ``bytes`` of native
#: unsigned 64-bit ints, the registers of an estimating one as a ``bytearray``, or None
#: when empty.
Packed = bytes | bytearray | None


def user_hash(user: str) -> int:
    """64-bit hash of a user id, identical in every process (unlike the salted ``hash()``)."""
    digest = hashlib.blake2b(user.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _hll_add(regs: bytearray, h: int) -> None:
    h &= _MASK64
    idx = h >> _RANK_BITS
    rank = _RANK_BITS + 1 - (h & _RANK_MASK).bit_length()
    regs[idx] = max(regs[idx], rank)


def _sigma(x: float) -> float:
    """Correction for empty registers (Ertl 2017); finite for x < 1."""
    y = 1.0
    z = x
    while True:
        x *= x
        prev = z
        z += x * y
        y += y
        if z == prev:
            return z


def _tau(x: float) -> float:
    """Correction for saturated registers (Ertl 2017)."""
    if x == 0.0 or x == 1.0:
        return 0.0
    y = 1.0
    z = 1.0 - x
    while True:
        x = math.sqrt(x)
        prev = z
        y *= 0.5
        z -= (1.0 - x) ** 2 * y
        if z == prev:
            return z / 3.0


class DistinctCounter:
    """Distinct count of 64-bit hashes: exact up to ``EXACT_LIMIT``, HyperLogLog (p=12) beyond.

    Items must already be uniformly distributed 64-bit unsigned ints (see
    :func:`user_hash`); the HLL relies on their bits being random.
    """

    __slots__ = ("_exact", "_limit", "_regs")

    _exact: set[int] | None
    _regs: bytearray | None

    def __init__(self, limit: int | None = EXACT_LIMIT) -> None:
        """``limit=None`` stays exact however many items arrive, until :meth:`compact`.

        The recorder counts each flush's users that way, so a store that keeps its own
        sketches (Redis HyperLogLogs) can be handed every user; memory is bounded by
        the flush anyway.
        """
        self._exact = set()
        self._regs = None
        self._limit = _UNBOUNDED if limit is None else limit

    def compact(self) -> DistinctCounter:
        """Turn an unbounded exact counter into the bounded form (HLL past the limit)."""
        self._limit = EXACT_LIMIT
        if self._exact is not None and len(self._exact) > EXACT_LIMIT:
            self._to_hll()
        return self

    def exact_items(self) -> set[int] | None:
        """The hashes themselves while exact (do not modify), else None."""
        return self._exact

    @property
    def is_exact(self) -> bool:
        """Whether ``len()`` is still an exact count rather than an estimate."""
        return self._exact is not None

    def add(self, h: int) -> None:
        exact = self._exact
        if exact is not None:
            exact.add(h)
            if len(exact) > self._limit:
                self._to_hll()
        else:
            _hll_add(self._regs, h)  # type: ignore[arg-type]

    def update(self, items: Iterable[int]) -> None:
        """Add many hashes; consumes the iterable in chunks so memory stays bounded."""
        it = iter(items)
        while self._exact is not None:
            chunk = list(islice(it, EXACT_LIMIT + 1))
            if not chunk:
                return
            self._exact.update(chunk)
            if len(self._exact) > self._limit:
                self._to_hll()
        regs = self._regs
        assert regs is not None
        for h in it:
            h &= _MASK64
            idx = h >> _RANK_BITS
            rank = _RANK_BITS + 1 - (h & _RANK_MASK).bit_length()
            regs[idx] = max(regs[idx], rank)

    def merge(self, other: DistinctCounter) -> None:
        """Fold ``other`` into this counter in place (set union / register max)."""
        if other._exact is not None:
            if self._exact is not None:
                self._exact |= other._exact
                if len(self._exact) > self._limit:
                    self._to_hll()
            else:
                regs = self._regs
                assert regs is not None
                for h in other._exact:
                    _hll_add(regs, h)
            return
        if self._exact is not None:
            self._to_hll()
        assert self._regs is not None and other._regs is not None
        self._regs = bytearray(map(max, self._regs, other._regs))

    def pack(self) -> Packed:
        """This counter as plain data (see :data:`Packed`): for a store that keeps
        thousands of sketches, which as objects would slow every garbage collection."""
        if self._exact is not None:
            return array("Q", [h & _MASK64 for h in self._exact]).tobytes() if self._exact else None
        assert self._regs is not None
        return bytearray(self._regs)

    @classmethod
    def unpack(cls, packed: Packed) -> DistinctCounter:
        """A bounded counter from what :meth:`pack` gave."""
        new = cls()
        new.merge_packed(packed)
        return new

    def merge_packed(self, packed: Packed) -> None:
        """:meth:`merge` a counter as :meth:`pack` gave it, without unpacking it first."""
        if packed is None:
            return
        if type(packed) is bytes:
            hashes = array("Q")
            hashes.frombytes(packed)
            if self._exact is not None:
                self._exact.update(hashes)
                if len(self._exact) > self._limit:
                    self._to_hll()
            else:
                regs = self._regs
                assert regs is not None
                for h in hashes:
                    _hll_add(regs, h)
            return
        if self._exact is not None:
            self._to_hll()
        assert self._regs is not None
        self._regs = bytearray(map(max, self._regs, packed))

    def copy(self) -> DistinctCounter:
        new = DistinctCounter.__new__(DistinctCounter)
        new._exact = None if self._exact is None else set(self._exact)
        new._regs = None if self._regs is None else bytearray(self._regs)
        new._limit = self._limit
        return new

    def estimate(self) -> float:
        """Distinct count as a float; exact while :attr:`is_exact`.

        Uses Ertl's improved HyperLogLog estimator (arXiv:1702.01284) rather
        than the classic raw/linear-counting switch, whose bias around
        2.5 * 4096 registers pushed ~10k-user counts well past 3% error.
        """
        if self._exact is not None:
            return float(len(self._exact))
        regs = self._regs
        assert regs is not None
        hist = [0] * (_RANK_BITS + 2)
        for r in regs:
            hist[r] += 1
        if hist[0] == _M:
            return 0.0
        z = _M * _tau(1.0 - hist[_RANK_BITS + 1] / _M)
        for k in range(_RANK_BITS, 0, -1):
            z = 0.5 * (z + hist[k])
        z += _M * _sigma(hist[0] / _M)
        return _ALPHA_INF * _M * _M / z

    def __len__(self) -> int:
        return round(self.estimate())

    def __repr__(self) -> str:
        kind = "exact" if self.is_exact else "hll"
        return f"<DistinctCounter {kind} ~{len(self)}>"

    def to_bytes(self) -> bytes:
        """Compact form for SQLite: tag byte, then sorted big-endian u64s or the 4096 registers."""
        if self._exact is not None:
            items = sorted(h & _MASK64 for h in self._exact)
            return bytes((_TAG_EXACT,)) + struct.pack(f">{len(items)}Q", *items)
        assert self._regs is not None
        return bytes((_TAG_HLL,)) + bytes(self._regs)

    @classmethod
    def from_bytes(cls, data: bytes) -> DistinctCounter:
        """Inverse of :meth:`to_bytes`; raises ``ValueError`` on corrupt input."""
        data = bytes(data)
        if not data:
            raise ValueError("empty DistinctCounter payload")
        tag, body = data[0], data[1:]
        new = cls.__new__(cls)
        new._limit = EXACT_LIMIT
        if tag == _TAG_EXACT:
            if len(body) % 8:
                raise ValueError("exact DistinctCounter payload is not a multiple of 8 bytes")
            new._exact = set(struct.unpack(f">{len(body) // 8}Q", body))
            new._regs = None
            if len(new._exact) > EXACT_LIMIT:
                new._to_hll()
        elif tag == _TAG_HLL:
            if len(body) != _M:
                raise ValueError(f"HLL DistinctCounter payload must be {_M} bytes, got {len(body)}")
            if max(body) > _RANK_BITS + 1:
                raise ValueError("HLL DistinctCounter payload has an impossible register value")
            new._exact = None
            new._regs = bytearray(body)
        else:
            raise ValueError(f"unknown DistinctCounter tag {tag}")
        return new

    def _to_hll(self) -> None:
        self._limit = EXACT_LIMIT
        regs = bytearray(_M)
        assert self._exact is not None
        for h in self._exact:
            _hll_add(regs, h)
        self._regs = regs
        self._exact = None
