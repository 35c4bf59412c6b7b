"""The reducer ABI (docs/abi.md): its version and export names, in one place."""

ABI_VERSION = 4

MEMORY = "memory"
ABI_VERSION_EXPORT = "abi_version"
INPUT = "input"
PROJECT = "project"
TRANSFORM = "transform"
SIGHTINGS = "sightings"
CANONICAL = "canonical"

REQUIRED_EXPORTS = (MEMORY, ABI_VERSION_EXPORT, INPUT, PROJECT, TRANSFORM, SIGHTINGS, CANONICAL)

# AssemblyScript's abort(message, file, line, column): the only import.
ABORT_MODULE, ABORT_NAME = "env", "abort"
