"""The floor pipeline/ and persistence/ both stand on: the world's shared vocabulary.

    types.py     the records that cross between parts (TickResult, WorldData, Batch, TickWrite, ...)
    errors.py    the error tree
    records.py   the fixed binary records of schema/world.fbs, packed and unpacked
    hashing.py   the canonical encoding and the world hash
    ids.py       which ids joins use and which each zone creates

Nothing here imports from pipeline/, persistence/ or loadtest/.
"""
