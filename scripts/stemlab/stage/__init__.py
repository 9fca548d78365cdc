"""Stage (Strano et al., 2025): single-stem accompaniment generation with prefix conditioning.

Codec half: `codec` (pluggable codecs, `load_codec`), `codec_task` (the `codec` model on the frame),
`metronome` (click tracks from beats), `tokenize` (rule tokenize_stage: token shards), `tokens`
(`read_tokens`), `tokenplan` (the token jobs as rows of the workflow, parse-time safe).
"""
