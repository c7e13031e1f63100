"""The model registry: contract, training step, checkpoints, pretrained loading, prompts, MAC counts.

Pretrained loading is tested against small random checkpoints written here with the real key names
(PANNs .pth, transformers save_pretrained); nothing is downloaded.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from trainer.features import FEATURE_SETS
from trainer.models import (MacCounter, ModelError, WordTokenizer, all_prompts, bts_prompt, count_macs, count_params,
                            create_model, example_inputs, list_models, model_info)
from trainer.models.text import CHEST_LOCATIONS

torch.set_num_threads(2)

FULL = ["cnn6", "resnet18", "efficientnet_b0", "ast", "audio_clap", "bts", "cpmobile-s", "cpmobile-m"]
TINY = list(dict.fromkeys(f"{name.split('-')[0]}-tiny" for name in FULL))  # cpmobile-s and -m share one


def fixed_batch(model, batch=4, seed=0):
    """Noise plus a class-specific band of energy: learnable by any of the models in a few steps."""
    gen = torch.Generator().manual_seed(seed)
    frames, bins = FEATURE_SETS[model.feature_set].shape
    if model.feature_set == "cnn":
        frames = 128  # CNNs take any length; a shorter cycle keeps the CPU test quick
    y = torch.arange(batch) % model.num_classes
    x = 0.5 * torch.randn(batch, frames, bins, generator=gen)
    band = bins // model.num_classes
    for i, label in enumerate(y.tolist()):
        x[i, :, label * band:(label + 1) * band] += 1.5
    text = None
    if model.needs_text:
        rows = [({"chest_location": loc, "device": dev}, {"age": age, "sex": sex})
                for loc, dev, age, sex in [("Al", "AKGC417L", 8, "F"), ("Tc", "Meditron", 70, "M"),
                                           ("Pr", "LittC2SE", None, "M"), ("Lr", "Litt3200", 40, None)]]
        text = model.tokenize([bts_prompt(*rows[i % 4]) for i in range(batch)])
    return x, y, text


# ---------------------------------------------------------------- registry and contract

def test_registry_lists_every_family_and_its_tiny_variant():
    assert set(FULL + TINY) <= set(list_models())
    assert set(list_models(include_tiny=False)) == set(FULL)
    with pytest.raises(ModelError, match="did you mean cnn6"):
        create_model("cnn7")


@pytest.mark.parametrize("name", TINY)
def test_tiny_model_forward_trains_and_round_trips_through_safetensors(name, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, num_classes=4)
    assert model.arch == name
    assert model.num_classes == 4
    assert model.feature_set in {"cnn", "ast", "clap"}
    assert model.needs_text == name.startswith("bts")
    x, y, text = fixed_batch(model)

    logits = model(x, text=text)
    assert logits.shape == (4, 4) and torch.isfinite(logits).all()
    assert model.embed(x, text=text).shape == (4, model.embedding_dim)

    # A few optimiser steps on one fixed batch must lower its loss, and every trainable tensor must
    # get a gradient: nothing is cut off from the loss.
    lr = 3e-3 if model.feature_set == "cnn" else 1e-2
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    model.train()
    for step in range(5 if model.feature_set == "cnn" else 8):
        opt.zero_grad()
        loss = F.cross_entropy(model(x, text=text), y)
        loss.backward()
        if step == 0:
            no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
            assert not no_grad, no_grad
        opt.step()
        losses.append(loss.item())
    assert min(losses[-2:]) < 0.9 * losses[0], losses

    model.eval()
    with torch.no_grad():
        before = model(x, text=text)
    path = tmp_path / "model.safetensors"
    save_file(model.state_dict(), str(path))
    rebuilt = create_model(**model.spec)
    rebuilt.load_state_dict(load_file(str(path)))
    rebuilt.eval()
    with torch.no_grad():
        after = rebuilt(x, text=text)
    assert torch.equal(before, after)


def test_misspelt_settings_are_refused_not_ignored():
    with pytest.raises(ModelError, match="unknown setting"):
        create_model("resnet18-tiny", dropout=0.1)
    with pytest.raises(ModelError, match="unknown setting"):
        create_model("cnn6-tiny", drop=0.1)
    narrow = create_model("cnn6-tiny", channels=[4, 8, 16, 32], dropout=0.1)
    assert narrow.embedding_dim == 32 and narrow.conv_block1.conv1.out_channels == 4
    assert create_model(**narrow.spec).channels == (4, 8, 16, 32)
    model = create_model("efficientnet_b0-tiny", dropout_rate=0.3)
    assert model.head[0].p == 0.3 and model.spec["dropout_rate"] == 0.3


def test_bad_input_shapes_are_named():
    model = create_model("ast-tiny")
    with pytest.raises(ValueError, match=r"\(batch, 798, 128\)"):
        model(torch.zeros(1, 500, 128))
    with pytest.raises(ValueError, match="frames, bins"):
        create_model("cnn6-tiny")(torch.zeros(1, 1, 798, 128))
    bts = create_model("bts-tiny")
    with pytest.raises(ValueError, match="tokenize"):
        bts(torch.zeros(1, 1001, 64))
    with pytest.raises(TypeError, match="does not read text"):
        model.tokenize(["a prompt"])


# ---------------------------------------------------------------- CNN6 and PANNs weights

def test_cnn6_full_size_matches_the_architecture_and_the_published_count():
    model = create_model("cnn6")
    convs = sum(25 * cin * cout for cin, cout in [(1, 64), (64, 128), (128, 256), (256, 512)])
    bns = 2 * (64 + 128 + 256 + 512)
    assert count_params(model) == convs + bns + 512 * 4 + 4
    # The published 4.8 M is PANNs' Cnn6 as released: the same blocks plus bn0 (64 mel), fc1 and the
    # 527-class AudioSet head.
    panns = convs + bns + 2 * 64 + (512 * 512 + 512) + (512 * 527 + 527)
    assert abs(panns - 4.8e6) < 0.1e6
    assert model.embed(torch.randn(2, 64, 128)).shape == (2, 512)
    assert model.embedding_dim == 512


def panns_state(channels=(64, 128, 256, 512), seed=0):
    gen = torch.Generator().manual_seed(seed)
    state = {
        "spectrogram_extractor.stft.conv_real.weight": torch.randn(17, 1, 32, generator=gen),
        "logmel_extractor.melW": torch.randn(17, 64, generator=gen),
        "bn0.weight": torch.rand(64, generator=gen), "bn0.bias": torch.randn(64, generator=gen),
        "bn0.running_mean": torch.randn(64, generator=gen), "bn0.running_var": torch.rand(64, generator=gen),
        "bn0.num_batches_tracked": torch.tensor(7),
    }
    widths = (1, *channels)
    for i in range(4):
        c = widths[i + 1]
        state[f"conv_block{i + 1}.conv1.weight"] = torch.randn(c, widths[i], 5, 5, generator=gen)
        state[f"conv_block{i + 1}.bn1.weight"] = torch.rand(c, generator=gen)
        state[f"conv_block{i + 1}.bn1.bias"] = torch.randn(c, generator=gen)
        state[f"conv_block{i + 1}.bn1.running_mean"] = torch.randn(c, generator=gen)
        state[f"conv_block{i + 1}.bn1.running_var"] = torch.rand(c, generator=gen) + 0.5
        state[f"conv_block{i + 1}.bn1.num_batches_tracked"] = torch.tensor(1000 + i)
    state["fc1.weight"] = torch.randn(channels[-1], channels[-1], generator=gen)
    state["fc1.bias"] = torch.randn(channels[-1], generator=gen)
    state["fc_audioset.weight"] = torch.randn(527, channels[-1], generator=gen)
    state["fc_audioset.bias"] = torch.randn(527, generator=gen)
    return state


def test_panns_checkpoint_maps_the_conv_blocks_and_skips_the_rest(tmp_path):
    state = panns_state()
    path = tmp_path / "Cnn6_mAP=0.343.pth"
    torch.save({"model": state, "iteration": 520000}, path)
    model = create_model("cnn6", pretrained=str(path))
    report = model.pretrained_report
    ours = model.state_dict()
    assert len(report.loaded) == 4 * 6
    for key in report.loaded:
        assert torch.equal(ours[key], state[key]), key
    assert set(report.skipped) == {k for k in state if not k.startswith("conv_block")}
    assert "64 mel" in report.skipped["bn0.weight"]
    assert "AudioSet" in report.skipped["fc_audioset.weight"]
    assert report.missing == ["head.bias", "head.weight"]
    # The pretrained network is the one computing: its first block reproduces a hand-made conv+BN.
    model.eval()
    x = torch.randn(1, 32, 128)
    block = model.conv_block1
    expected = F.avg_pool2d(F.relu(F.batch_norm(
        F.conv2d(x.unsqueeze(1), state["conv_block1.conv1.weight"], padding=2),
        state["conv_block1.bn1.running_mean"], state["conv_block1.bn1.running_var"],
        state["conv_block1.bn1.weight"], state["conv_block1.bn1.bias"], eps=1e-5)), 2)
    assert torch.allclose(block(x.unsqueeze(1)), expected, atol=1e-5)


class Opaque:
    """An arbitrary pickled object: weights_only loading must refuse a file holding one."""


def test_panns_checkpoint_refusals(tmp_path):
    full = tmp_path / "full.pth"
    torch.save({"model": panns_state()}, full)
    with pytest.raises(ModelError, match="does not fit"):
        create_model("cnn6-tiny", pretrained=str(full))

    evil = tmp_path / "evil.pth"
    torch.save({"model": panns_state(), "extra": Opaque()}, evil)
    with pytest.raises(ModelError, match="refused.*convert it once"):
        create_model("cnn6", pretrained=str(evil))
    with pytest.raises(ModelError, match="no such file"):
        create_model("cnn6", pretrained=str(tmp_path / "missing.pth"))
    # A file converted to safetensors (the way out the refusal message gives) loads the same weights.
    converted = tmp_path / "cnn6_panns.safetensors"
    save_file({k: v.contiguous() for k, v in panns_state().items()}, str(converted))
    model = create_model("cnn6", pretrained=str(converted))
    assert torch.equal(model.conv_block4.conv1.weight, panns_state()["conv_block4.conv1.weight"])
    with pytest.raises(ModelError, match="not on the transformers Hub"):
        create_model("cnn6", pretrained="hub")


# ---------------------------------------------------------------- transformers checkpoints

def test_imagenet_first_conv_is_adapted_by_summing_rgb(tmp_path):
    import transformers as tf
    from trainer.models.hf_vision import EFFICIENTNET_TINY, RESNET18_TINY

    cases = [("resnet18-tiny", tf.ResNetForImageClassification(tf.ResNetConfig(num_labels=10, **RESNET18_TINY)),
              "resnet"),
             ("efficientnet_b0-tiny", tf.EfficientNetForImageClassification(
                 tf.EfficientNetConfig(num_labels=10, **EFFICIENTNET_TINY)), "efficientnet")]
    x = torch.randn(2, 64, 128)
    for name, source, attr in cases:
        folder = tmp_path / name
        source.save_pretrained(folder)
        model = create_model(name, pretrained=str(folder))
        assert len(model.pretrained_report.adapted) == 1
        assert set(model.pretrained_report.missing) <= {"head.weight", "head.bias", "head.1.weight", "head.1.bias"}
        model.eval()
        source.eval()
        with torch.no_grad():
            ours = model.embed(x)
            # A grey RGB image (the same plane three times) through the ImageNet network gives the same.
            theirs = getattr(source, attr)(pixel_values=x.unsqueeze(1).repeat(1, 3, 1, 1)).pooler_output.flatten(1)
        assert torch.allclose(ours, theirs, atol=1e-4), name
        with torch.no_grad():  # the pooled embedding is the mean over the whole (time, frequency) map
            hidden = model.backbone(pixel_values=x.unsqueeze(1)).last_hidden_state
        assert torch.allclose(ours, hidden.mean(dim=(2, 3)), atol=1e-5), name


def test_ast_position_embeddings_resampled_from_the_1024_frame_grid_keep_a_linear_field_linear(tmp_path):
    import transformers as tf
    from trainer.models.ast import AST_TINY

    source = tf.ASTForAudioClassification(tf.ASTConfig(**dict(AST_TINY, max_length=1024), num_labels=527))
    f0, t0 = 12, 101  # (128-16)//10+1, (1024-16)//10+1
    dim = AST_TINY["hidden_size"]
    slope_t, slope_f, offset = torch.randn(dim), torch.randn(dim), torch.randn(dim)
    f = torch.arange(f0, dtype=torch.float32).view(f0, 1, 1)
    t = torch.arange(t0, dtype=torch.float32).view(1, t0, 1)
    field = (t * slope_t + f * slope_f + offset).reshape(1, f0 * t0, dim)
    lead = torch.randn(1, 2, dim)
    with torch.no_grad():
        source.audio_spectrogram_transformer.embeddings.position_embeddings.copy_(torch.cat([lead, field], 1))
    folder = tmp_path / "ast1024"
    source.save_pretrained(folder)

    model = create_model("ast-tiny", pretrained=str(folder), pos_embed="resample")
    report = model.pretrained_report
    assert "12x101 to a 12x79" in report.adapted["backbone.embeddings.position_embeddings"]
    assert any("max_length" in note for note in report.notes)
    pos = model.backbone.embeddings.position_embeddings.detach()
    assert pos.shape == (1, 2 + 12 * 79, dim)
    assert torch.equal(pos[:, :2], lead)
    # Bilinear resampling with aligned corners keeps a linear field linear: position t' of 79 sits at
    # t = t' * 100 / 78 on the old grid.
    t1 = torch.arange(79, dtype=torch.float32).view(1, 79, 1) * (t0 - 1) / (79 - 1)
    expected = (t1 * slope_t + f * slope_f + offset).reshape(1, f0 * 79, dim)
    assert torch.allclose(pos[:, 2:], expected, atol=1e-4)

    # On the checkpoint's own grid nothing is resampled and the network computes what the source does.
    same = create_model("ast-tiny", pretrained=str(folder), max_length=1024)
    assert not same.pretrained_report.adapted
    x = torch.randn(2, 1024, 128)
    same.eval()
    source.eval()
    with torch.no_grad():
        assert torch.allclose(same.embed(x), source.audio_spectrogram_transformer(input_values=x).pooler_output,
                              atol=1e-5)
        # The checkpoint's head LayerNorm is kept; the 527-class layer is not.
        assert torch.equal(same.head[0].weight, source.classifier.layernorm.weight)
    assert "AudioSet" in same.pretrained_report.skipped["classifier.dense.weight"]


def _tiny_clap_checkpoint(folder):
    import transformers as tf
    from trainer.models.clap import AUDIO_TINY, PROJECTION_TINY, TEXT_TINY

    torch.manual_seed(1)
    source = tf.ClapModel(tf.ClapConfig(text_config=tf.ClapTextConfig(**TEXT_TINY).to_dict(),
                                        audio_config=tf.ClapAudioConfig(**AUDIO_TINY).to_dict(),
                                        projection_dim=PROJECTION_TINY))
    source.save_pretrained(folder)
    return source.eval()


def test_clap_checkpoint_loads_into_audio_clap_and_bts(tmp_path):
    folder = tmp_path / "clap"
    source = _tiny_clap_checkpoint(folder)
    x = torch.randn(2, 1001, 64)

    audio = create_model("audio_clap-tiny", pretrained=str(folder)).eval()
    assert audio.pretrained_report.missing == ["head.bias", "head.weight"]
    bts = create_model("bts-tiny", pretrained=str(folder), tokenizer="builtin").eval()
    assert bts.pretrained_report.missing == ["head.bias", "head.weight"]
    assert bts.spec["tokenizer"] == "builtin"
    text = bts.tokenize([bts_prompt({"chest_location": "Al", "device": "AKGC417L"}, {"age": 8, "sex": "F"}),
                         bts_prompt({"chest_location": "Tc", "device": "Meditron"}, {"age": 70, "sex": "M"})])
    with torch.no_grad():
        ref = source(input_ids=text["input_ids"], attention_mask=text["attention_mask"],
                     input_features=x.unsqueeze(1))
        audio_ref = source.audio_projection(source.audio_model(input_features=x.unsqueeze(1)).pooler_output)
        assert torch.allclose(audio.embed(x), audio_ref, atol=1e-5)
        assert torch.allclose(bts.embed(x, text), torch.cat([ref.text_embeds, ref.audio_embeds], -1), atol=1e-5)

    # Without tokenizer files in the folder, BTS says so instead of tokenising every word away.
    with pytest.raises(ModelError, match="tokenizer='builtin'"):
        create_model("bts-tiny", pretrained=str(folder))


def test_bts_uses_the_checkpoint_tokenizer_when_there_is_one(tmp_path):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    folder = tmp_path / "clap"
    _tiny_clap_checkpoint(folder)
    words = WordTokenizer().vocab
    vocab = {w: i for i, w in enumerate(reversed(words))}  # different ids from the built-in tokenizer
    core = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", pad_token="<pad>",
                                   bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(folder)
    bts = create_model("bts-tiny", pretrained=str(folder))
    assert bts.spec["tokenizer"] == str(folder)
    tokens = bts.tokenize(["this sound was recorded from the trachea", "a b"])
    assert tokens["input_ids"][0, 0].item() == vocab["this"]
    assert tokens["attention_mask"].sum(1).tolist() == [7, 2]

    # Weights trained on one tokenizer's ids refuse to load into a model that tokenises differently.
    builtin = create_model("bts-tiny")
    with pytest.raises(ModelError, match="different tokenizer"):
        bts.load_state_dict(builtin.state_dict())
    again = create_model(**bts.spec)
    again.load_state_dict(bts.state_dict())


# ---------------------------------------------------------------- prompts

@pytest.mark.parametrize("recording, patient, expected", [
    ({"chest_location": "Al", "device": "AKGC417L"}, {"age": 8, "sex": "F"},
     "This sound was recorded from the left anterior chest of a female pediatric patient, using an AKGC417L "
     "microphone."),
    ({"chest_location": "Tc", "device": "Meditron"}, {"age": 70.0, "sex": "M", "age_group": "adult"},
     "This sound was recorded from the trachea of an adult male patient, using a Meditron stethoscope."),
    ({"chest_location": "Pr", "device": "LittC2SE"}, {"age": None, "sex": "M", "age_group": None},
     "This sound was recorded from the right posterior chest of a male patient with unknown age, using a "
     "LittC2SE stethoscope."),
    ({"chest_location": "Lr", "device": "Litt3200"}, {"age": 19, "sex": None},
     "This sound was recorded from the right lateral chest of an adult patient with unknown sex, using a "
     "Litt3200 stethoscope."),
    ({"chest_location": "Pl", "device": "Litt3200"}, {"age": 18.9, "sex": "F"},
     "This sound was recorded from the left posterior chest of a female pediatric patient, using a Litt3200 "
     "stethoscope."),
    ({"chest_location": "Ll", "device": "Meditron"}, {"age": None, "sex": "F", "age_group": "adult"},
     "This sound was recorded from the left lateral chest of an adult female patient, using a Meditron "
     "stethoscope."),
    ({"chest_location": None, "device": None}, None,
     "This sound was recorded from an unknown region of a patient with unknown age and sex, using an unknown "
     "device."),
])
def test_bts_prompt_wording(recording, patient, expected):
    assert bts_prompt(recording, patient) == expected


def test_prompts_from_real_project_rows(synth_project):
    recordings = list(synth_project.recordings())
    assert recordings
    for rec in recordings:
        patient = synth_project.db["patients"].get(rec["patient_id"]) if rec.get("patient_id") else None
        prompt = bts_prompt(rec, patient)
        assert CHEST_LOCATIONS[rec["chest_location"]] in prompt
        device_word = "microphone" if rec["device"] == "AKGC417L" else "stethoscope"
        assert f"{rec['device']} {device_word}." in prompt


def test_word_tokenizer_covers_every_prompt_deterministically():
    tok = WordTokenizer()
    assert tok.vocab == WordTokenizer().vocab
    assert (tok.bos_id, tok.pad_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 3)
    out = tok(all_prompts())
    assert not (out["input_ids"] == tok.unk_id).any()
    assert int(out["input_ids"].max()) < len(tok) <= 64  # fits the bts-tiny text tower
    lengths = out["attention_mask"].sum(1)
    assert (out["input_ids"][out["attention_mask"] == 0] == tok.pad_id).all()
    assert int(lengths.min()) < int(lengths.max())  # prompts differ in length and are padded
    odd = tok(["using a Thinklabs stethoscope"])["input_ids"][0].tolist()
    assert odd.count(tok.unk_id) == 1


# ---------------------------------------------------------------- MACs and figures

def test_mac_counter_matches_hand_counts():
    assert count_macs(torch.nn.Linear(10, 7), torch.zeros(3, 5, 10)) == 3 * 5 * 10 * 7
    conv = torch.nn.Conv2d(3, 8, kernel_size=3, padding=1)
    assert count_macs(conv, torch.zeros(2, 3, 16, 20)) == (2 * 8 * 16 * 20) * (3 * 3 * 3)
    depthwise = torch.nn.Conv2d(4, 4, kernel_size=3, groups=4)
    assert count_macs(depthwise, torch.zeros(1, 4, 10, 10)) == (1 * 4 * 8 * 8) * 9
    with MacCounter() as counter:
        torch.zeros(2, 3, 4) @ torch.zeros(4, 5)
        F.scaled_dot_product_attention(torch.zeros(1, 2, 6, 8), torch.zeros(1, 2, 9, 8), torch.zeros(1, 2, 9, 4))
    assert counter.by_kind["matmul"] == 2 * 3 * 5 * 4
    assert counter.by_kind["attention"] == 2 * 6 * 9 * 8 + 2 * 6 * 9 * 4


def test_mac_counts_agree_with_torch_flop_counter_and_the_meta_device():
    from torch.utils.flop_counter import FlopCounterMode

    for name in TINY:
        model = create_model(name).eval()
        inputs = example_inputs(model)  # one cycle of the full contract shape, run for real
        # torch's counter works on aten ops below ours (function level): one pass feeds both.
        with torch.no_grad(), FlopCounterMode(display=False) as flops, MacCounter() as counter:
            logits = model(**inputs)
        assert logits.shape == (1, 4)
        # torch's counter misses the fused CPU attention kernel, so compare it without attention.
        assert 2 * (counter.total - counter.by_kind["attention"]) == flops.get_total_flops(), name
        assert (counter.by_kind["attention"] > 0) == name.startswith("ast"), name
        assert model_info(name)["macs_per_cycle"] == counter.total, name  # meta-device count == real run


def test_full_size_figures():
    cnn6 = model_info("cnn6")
    blocks = [(1, 64, 798, 128), (64, 128, 399, 64), (128, 256, 199, 32), (256, 512, 99, 16)]
    assert cnn6["macs_per_cycle"] == sum(25 * a * b * t * f for a, b, t, f in blocks) + 512 * 4
    assert abs(cnn6["macs_per_cycle"] - 15.8e9) < 0.1e9
    assert cnn6["input_shape"] == (798, 128) and cnn6["feature_set"] == "cnn"
    # model_info counts a meta-device build; a real build has the same parameters.
    for name in ["cnn6", "resnet18", "efficientnet_b0"]:
        assert model_info(name)["params"] == count_params(create_model(name)), name
    assert abs(model_info("resnet18")["params"] - 11.17e6) < 0.05e6  # 11.7 M with the ImageNet head
    assert abs(model_info("efficientnet_b0")["macs_per_cycle"] - 0.8e9) < 0.1e9
    ast = model_info("ast")
    assert 85e6 < ast["params"] < 88e6 and abs(ast["macs_per_cycle"] - 100e9) < 5e9
    assert ast["feature_set"] == "ast"
    assert 27e6 < model_info("audio_clap")["params"] < 29e6
    bts = model_info("bts")
    assert 150e6 < bts["params"] < 156e6 and bts["needs_text"] and bts["input_shape"] == (1001, 64)


def test_rsc_models_cli(capsys, tmp_path):
    from trainer.cli import main

    assert main(["models", "--json", "--no-tiny"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == FULL
    assert {r["name"]: r["hub_id"] for r in rows}["ast"] == "MIT/ast-finetuned-audioset-10-10-0.4593"
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    assert "bts-tiny" in table and "15.800" in table

    path = tmp_path / "Cnn6_mAP=0.343.pth"
    torch.save({"model": panns_state()}, path)
    assert main(["models", "--load", "cnn6", "--pretrained", str(path)]) == 0
    out = capsys.readouterr().out
    assert "24 tensors loaded" in out and "skipped  fc_audioset.weight" in out
    assert main(["models", "--load", "cnn6", "--pretrained", str(tmp_path / "nope.pth")]) == 2
    assert "no such file" in capsys.readouterr().err
