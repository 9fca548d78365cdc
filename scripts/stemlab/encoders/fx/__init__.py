"""The effect encoder: MEGAMI's effect ("style") embedding of a stem, on the model frame (models.fx_encoder).

features.py   MEGAMI's 8 interpretable features, their 64-d Fourier embedding and the join with a learned part
net.py        the encoder trained here (stereo log-mel CNN + projection head)
render.py     an annotated FX chain rendered on any dry content
data.py       contrastive batches: chains of the train split on other content, rendered on the fly
loss.py       NT-Xent
pretrained.py Fx-Encoder++ (fxencoder-plusplus) as a pretrained source, weights from a snapshot
probe.py      FX-parameter targets and the ridge probe
evaluate.py   probes, same-chain retrieval and triplets on the test split
task.py       the frame task (registered as `fx_encoder`)
__main__.py   `python -m stemlab.encoders.fx embed`: embeddings of your own files
"""
