"""The floor pipeline/ and persistence/ both stand on: the world's shared vocabulary.

    types.py     the records that cross between parts (TickResult, WorldData, Batch, TickWrite, ...)
    errors.py    the error tree
    records.py   the fixed binary records of schema/world.fbs, packed and unpacked
    hashing.py   the canonical encoding and the world hash

Nothing here imports from pipeline/, persistence/ or loadtest/.
"""
