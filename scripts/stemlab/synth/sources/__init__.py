"""Composition sources and sound sources of the synthetic engine beyond the built-in presets: genre files,
soundfont pools, MIDI corpora and sample layers."""
