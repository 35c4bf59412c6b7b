"""The public file formats (FORMATS.md): world files and command batches, read strictly, every
problem named by file, line and field (`jsoninput.py` holds what both readers share)."""
