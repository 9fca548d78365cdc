"""Learned chord and melody generators: an optional composer backend of the synthetic engine.

`vocab` (the token vocabulary: the engine's own chord symbols and scale-walk steps), `corpus` (chord and
melody sequences of a generated corpus), `lm` (the torch LSTM trained by the frame, `models.harmony_lm`),
`weights` (final.pt read without torch), `sampler` (its numpy float64 inference), `composer` (the backend
`compose` calls), `task` (the frame task). Markov (stemlab.synth.harmony, parts.ScaleWalk) stays the default.
"""
