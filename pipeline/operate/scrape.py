"""Metrics read off the running server at scrape time, not counted per tick.

Players online and entities come from the current WorldView's counts
(kept in O(changes) by the view itself), the gateway's stanzas and bytes
from the counts it last reported over the link, database outages from the
pipeline's Outages, snapshots from the Checkpointer. Each is an attribute read: a scrape costs the same
with ten entities or a million.

The gateway counts stanzas and bytes from its own start, and the link sums
over the gateways connected now: a restarted gateway starts again from
zero, which Prometheus reads as a counter reset (rate() and increase()
allow for those).
"""

from __future__ import annotations

from typing import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..server.checkpointer import Checkpointer
from .state import ServerState


class LiveCollector(Collector):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        state = self.state
        view = state.current_view()
        if view is not None:
            yield GaugeMetricFamily("fluxworld_world_tick", "The tick the world stands at", value=view.tick)
            yield GaugeMetricFamily("fluxworld_entities", "Entities in the world", value=view.entity_count)
            yield GaugeMetricFamily("fluxworld_players_online", "Players online in the world",
                                    value=view.online_count)
        if state.inbox is not None:
            yield GaugeMetricFamily("fluxworld_inbox_commands", "Commands waiting for the next tick",
                                    value=len(state.inbox))
        outages = state.metrics.outages
        yield CounterMetricFamily("fluxworld_database_outages", "Times ticks began to wait on an unreachable "
                                  "database", value=outages.count)
        yield CounterMetricFamily("fluxworld_database_outage_seconds", "Seconds ticks waited on an unreachable "
                                  "database, the outage going on included", value=outages.seconds())
        yield GaugeMetricFamily("fluxworld_database_available", "0 while a tick waits on an unreachable database",
                                value=0 if outages.now_out else 1)
        if state.checkpointer is not None:
            yield from self._snapshots(state.checkpointer)
        if state.xmpp:
            yield from self._gateway()

    @staticmethod
    def _snapshots(checkpointer: Checkpointer) -> Iterator[Metric]:
        snapshots = CounterMetricFamily("fluxworld_snapshots", "World snapshots (checkpoints) by outcome: written, "
                                        "skipped (the one before still ran), failed", labels=["outcome"])
        snapshots.add_metric(["written"], len(checkpointer.written))
        snapshots.add_metric(["skipped"], len(checkpointer.skipped))
        snapshots.add_metric(["failed"], checkpointer.failed)
        yield snapshots
        yield CounterMetricFamily("fluxworld_snapshot_seconds", "Seconds spent encoding and writing the snapshots "
                                  "written", value=checkpointer.seconds)
        if checkpointer.written:
            yield GaugeMetricFamily("fluxworld_snapshot_tick", "The tick of the newest snapshot this server wrote",
                                    value=checkpointer.written[-1])
            yield GaugeMetricFamily("fluxworld_snapshot_bytes", "The newest snapshot's size, compressed",
                                    value=checkpointer.last_bytes)

    def _gateway(self) -> Iterator[Metric]:
        link = self.state.link
        serving = link is not None and link.serving.is_set()
        yield GaugeMetricFamily("fluxworld_gateway_serving", "1 while some XMPP gateway serves players",
                                value=int(serving))
        if link is None:
            return
        stanzas_in, stanzas_out, bytes_out = link.counts()
        stanzas = CounterMetricFamily("fluxworld_gateway_stanzas", "Stanzas the gateways received from players "
                                      "(in) and sent to them (out)", labels=["direction"])
        stanzas.add_metric(["in"], stanzas_in)
        stanzas.add_metric(["out"], stanzas_out)
        yield stanzas
        yield CounterMetricFamily("fluxworld_gateway_sent_bytes", "Bytes of stanzas the gateways sent to players",
                                  value=bytes_out)
        yield CounterMetricFamily("fluxworld_gateway_connections", "Gateway connections to the world's link "
                                  "(each reconnect adds one)", value=link.connections)
        yield CounterMetricFamily("fluxworld_gateway_xmpp_reconnects", "Times the gateways connected now began "
                                  "their session with the XMPP server again", value=link.xmpp_reconnects())
        if self.state.gateway is not None:
            yield CounterMetricFamily("fluxworld_gateway_restarts", "Times serve started the gateway process "
                                      "again after it exited", value=self.state.gateway.restarts)
