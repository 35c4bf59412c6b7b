"""The rules engines: the compiled AssemblyScript reducers run by wasmtime (`wasm/`) and their
pure-Python twin (`twin/`), one interface (`engine.py`), the thread they run on beside the event
loop (`enginethread.py`) and the FlatBuffers frames that carry the world across (`frames.py`)."""
