"""Release bundles: trained weights and result tables in one verified tar, and the restore path that
replaces training with them (config `restore: {url, sha256}`).

`source.py` (parse-time safe: stdlib only) reads the config; `manifest.py` builds and checks the
manifest; `pack.py` writes the deterministic tar (rule bundle); `archive.py` downloads and verifies one
(rule download_bundle); `restore.py` extracts one (model, seed) from it (rule restore_model);
`compare.py` sets the restored run's tables beside the bundled ones (rule check_restored_tables).
"""
