"""Consumer lag on the raw topic: per partition this worker holds, how many records are on
the log that its consumer group has not committed yet (log end offset minus committed
offset, what ``kafka-consumer-groups.sh --describe`` calls LAG).

Read from faust's consumer, cheaply: one ListOffsets request for the end offsets of the
held partitions (bounded; when it fails or the broker is known to be down, the end offsets
the last fetch responses carried), and the committed offsets faust keeps itself (those it
read on assignment and each one it committed since). A partition with nothing committed
yet counts from its earliest offset (``auto_offset_reset=earliest``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("worker.lag")

LAG_TIMEOUT_S = 1.0


def _partition(tp: Any) -> int:
    return int(tp.partition)


async def _bounded(coro: Any, timeout_s: float) -> Mapping[Any, Any] | None:
    try:
        return dict(await asyncio.wait_for(coro, timeout_s))
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - lag is best effort: the last known values
        log.debug("consumer lag: offsets request failed: %s", exc)
        return None


async def read_lag(
    consumer: Any, topic: str, *, ask_broker: bool = True, timeout_s: float = LAG_TIMEOUT_S
) -> dict[int, int]:
    """``{partition: records behind}`` for the partitions of ``topic`` that ``consumer``
    (faust's ``app.consumer``) holds; partitions whose end offset is not known yet are left
    out. ``ask_broker=False``: no request, only what the consumer already knows."""
    tps = sorted((tp for tp in consumer.assignment() if tp.topic == topic), key=_partition)
    if not tps:
        return {}
    ends: Mapping[Any, Any] | None = None
    if ask_broker:
        ends = await _bounded(consumer.highwaters(*tps), timeout_s)
    if ends is None:
        ends = {}
        for tp in tps:
            try:
                ends[tp] = consumer.highwater(tp)
            except Exception:  # noqa: BLE001 - not fetched from yet
                ends[tp] = None
    committed: Mapping[Any, Any] = getattr(consumer, "_committed_offset", None) or {}
    starts: Mapping[Any, Any] = {}
    never = [tp for tp in tps if committed.get(tp) is None and ends.get(tp) is not None]
    if never and ask_broker:
        starts = await _bounded(consumer.earliest_offsets(*never), timeout_s) or {}
    out = {}
    for tp in tps:
        end = ends.get(tp)
        if end is None:
            continue
        done = committed.get(tp)
        if done is None:
            done = starts.get(tp) or 0
        out[_partition(tp)] = max(0, int(end) - int(done))
    return out
