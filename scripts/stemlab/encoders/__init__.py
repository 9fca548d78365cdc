"""Shared audio encoders on the model frame: a CLAP content encoder and an effect (FX) encoder, whose
embeddings later models read from the embedding cache instead of recomputing them."""
