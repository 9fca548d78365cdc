"""The instruction mixer: a stem, its song and a text prompt in, mixing tool calls out, executed with real effects.

tools       the mixing tools (pedalboard and scipy effects), their arguments, ranges and quantisation
grammar     the text form of a tool chain: format, parse (one-line errors), the grammar as Lark
distort     distort-and-fix examples: distortions drawn per category, the sign-correct inverse chain
prompts     repair and intent prompts (never containing the answer)
model       text + audio embeddings -> fusion MLP -> soft prefix -> causal decoder; the direct regressor
decoding    grammar-constrained decoding (a logits processor over the tool grammar)
task        the `mixer` model of the frame; evaluate: the held-out evaluation and its baselines
"""
