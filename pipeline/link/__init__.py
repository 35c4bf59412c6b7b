"""The link between the world server and its gateways: one local socket, frames both ways.

    codec.py    frames: a kind, a few integers and a few byte strings
    world.py    the world server's side: commands in (as CommandBlocks), ticks out (an Outbox)
    client.py   a gateway's side: connects, follows the world, sends its players' commands
    router.py   a gateway's side of a world split into shards: a client per shard, one merged world

A gateway (pipeline/xmpp/gateway.py) holds everything about players'
connections; the world server holds none of it. What crosses is what the
tick loop already has as bytes: packed commands one way, and the other way
a snapshot of the world when a gateway connects, then each committed tick's
result (changed records, effects, the accepted batch) and refusals. So the
tick loop's cost of a gateway is a few writes a tick, whatever the number
of players, and a gateway that falls behind is cut off (it reconnects and
starts again from a snapshot) rather than slowing the world.
"""
