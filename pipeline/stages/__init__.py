"""The six stages, one module each, all of one shape: `async (TickContext) -> TickContext`.

negotiate -> contextualize -> project -> transform -> plan -> actuate.
No stage imports another; pipeline/server/runner.py (with the live pipeline) sets their order.
"""
