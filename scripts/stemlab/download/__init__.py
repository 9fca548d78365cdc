"""Downloads for every download rule: streamed, resumable, verified fetches and safe archive extraction.

`fetch` (stemlab.download.fetch) and `extract` (stemlab.download.extract) are the two primitives;
`stemlab.download.sources` turns config entries (data.corpora.*, checkpoints.*, soundfonts[]) into them.
Submodules are imported lazily so that common.smk can import `sources` at parse time for free.
"""
