"""The relations codebook on its neural encoders: wav2vec 2.0 from a pretrained snapshot (a tiny
config-built Wav2Vec2Model the test writes and serves on 127.0.0.1, fetched by the frame's pretrained
download), and the frame-level features of a trained CLAP model's audio branch."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from tests.relations_fixture import CODEBOOK, codebook_job, write_corpus

pytestmark = pytest.mark.slow


def _tiny_wav2vec2(folder):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)  # the test's stand-in for pretrained weights
    config = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                            conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                            do_stable_layer_norm=True, feat_extract_norm="layer")  # fmt: skip
    model = Wav2Vec2Model(config).eval()
    model.save_pretrained(folder)
    return model


def test_wav2vec2_snapshot_downloads_loads_and_feeds_the_codebook(tmp_path):
    from stemlab.download.pretrained import fetch_snapshot
    from stemlab.relations.perception import Wav2Vec2Perception
    from stemlab.train.run import train_job
    from stemlab.train.task import read_final
    from tests.download_server import FileServer

    reference = _tiny_wav2vec2(tmp_path / "written")
    blobs = {p.name: p.read_bytes() for p in sorted((tmp_path / "written").iterdir())}
    with FileServer() as server:
        for name, data in blobs.items():
            server.state.files[f"/w2v/{name}"] = data
        files = [{"path": n, "url": server.url(f"/w2v/{n}"), "sha256": hashlib.sha256(d).hexdigest(),
                  "key": f"pretrained.w2v.files[{i}]"} for i, (n, d) in enumerate(blobs.items())]  # fmt: skip
        fetch_snapshot("w2v", files, tmp_path / "snapshot", tmp_path / "cache", show_progress=False)
    perception = Wav2Vec2Perception(tmp_path / "snapshot", None, torch.device("cpu"))
    mono = (0.1 * np.sin(2 * np.pi * 220 * np.arange(44_100) / 44_100)).astype(np.float32)
    feats, times = perception.frames(mono)
    assert feats.shape[1] == 16 and abs(len(feats) - 50) <= 1  # 50 frames per second
    np.testing.assert_allclose(np.diff(times), 0.02)
    from stemlab.audio import resample

    x = resample(mono[:, None], 44_100, 16_000)[:, 0]
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    with torch.no_grad():
        direct = reference(torch.from_numpy(x)[None]).last_hidden_state[0].numpy()
    np.testing.assert_allclose(feats, direct, atol=1e-5)

    root = write_corpus(tmp_path / "corpus", seconds=3.0)
    settings = CODEBOOK | {"encoder": {"name": "wav2vec2", "wav2vec2": {"snapshot": "w2v"}}}
    job = codebook_job(root, settings)
    job = type(job)(**{**job.__dict__, "inputs": type(job.inputs)(**{**job.inputs.__dict__, "pretrained": {"w2v": str(tmp_path / "snapshot")}})})
    train_job(job, tmp_path / "codebook")
    payload = read_final(tmp_path / "codebook" / "final.pt")
    assert payload["export"]["dim"] == 16 and payload["state_dict"]["centres"].shape == (8, 16)


def test_clap_frame_features_feed_the_codebook(tmp_path):
    from stemlab.relations.perception import ClapPerception
    from stemlab.train.run import train_job
    from stemlab.train.task import read_final
    from tests.test_clap import TINY, clap_job, write_clap_corpus

    clap_root = write_clap_corpus(tmp_path / "clap", songs=4)
    train_job(clap_job(clap_root, TINY, steps=1), tmp_path / "clap_model")
    perception = ClapPerception(tmp_path / "clap_model" / "final.pt", torch.device("cpu"))
    mono = (0.1 * np.sin(2 * np.pi * 220 * np.arange(2 * 44_100) / 44_100)).astype(np.float32)
    feats, times = perception.frames(mono)
    assert feats.shape[1] == perception.dim and len(feats) == len(times) and times.max() < 2.0
    assert np.all(np.diff(times) > 0)

    root = write_corpus(tmp_path / "corpus", seconds=3.0)
    job = codebook_job(root, CODEBOOK | {"encoder": {"name": "clap"}})
    job = type(job)(**{**job.__dict__, "inputs": type(job.inputs)(**{**job.inputs.__dict__,
                                                                      "upstream": {"clap": str(tmp_path / "clap_model" / "final.pt")}})})
    train_job(job, tmp_path / "codebook")
    assert read_final(tmp_path / "codebook" / "final.pt")["export"]["dim"] == perception.dim
