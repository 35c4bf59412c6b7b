"""The world server around the stages: start-up and shutdown (`serve.py`), recovery, the tick loop
and the stage order (`runner.py`), waiting out the database (`retry.py`), snapshots
(`checkpointer.py`) and the garbage collector's pacing (`gcpacer.py`)."""
