"""Corpora in one canonical layout, and the preprocessing every model reads (features, splits, segments).

Real corpora (MoisesDB, MUSDB18-HQ, MedleyDB 2.0) are converted by their adapters into canonical song
directories; synthetic shards are hard-linked into the same layout. Everything after that (features,
splits, segment tables, the corpus summary) runs one code path for every corpus.
"""
