"""The paper as outputs: the benchmark table, the numbers the text quotes, the rule-graph figure, the
paper's own figures (CLAP retrieval, effect-encoder probe, annotation validity, training curves) and its
compilation. Every module reads result tables; none recomputes a result."""
