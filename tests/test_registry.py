"""Model registry: names, metadata, the paper head, timm / entry-point / module / file factories."""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap

import pytest
import torch
from torch import nn

from thyroid_bench.models import ModelError, create_model, describe_model, list_models
from thyroid_bench.models import registry, resolve
from thyroid_bench.models.paper import HEAD_WIDTHS, PAPER_DROPOUT, Classifier


def test_paper_models_registered_in_order():
    assert list_models()[:4] == ["resnet50", "densenet169", "inception_v3", "inception_resnet_v2"]


@pytest.mark.parametrize("name,size,features,tag", [
    ("resnet50", 224, 2048, "timm/resnet50.a1_in1k"),
    ("densenet169", 224, 1664, "timm/densenet169.tv_in1k"),
    ("inception_v3", 299, 2048, "timm/inception_v3.tv_in1k"),
    ("inception_resnet_v2", 299, 1536, "timm/inception_resnet_v2.tf_in1k"),
])
def test_paper_metadata(name, size, features, tag):
    import timm

    meta = describe_model(name, num_classes=4)
    assert (meta.input_size, meta.in_chans, meta.channel_policy) == (size, 3, "replicate")
    assert meta.pretrained_tag == tag and meta.licence == "apache-2.0"
    # Parameter count = timm backbone (counted by timm, independently) + the three FC layers.
    with torch.device("meta"):
        backbone = timm.create_model(name, num_classes=0)
    assert backbone.num_features == features
    w1, w2 = HEAD_WIDTHS
    head = features * w1 + w1 + w1 * w2 + w2 + w2 * 4 + 4
    assert meta.parameters == sum(p.numel() for p in backbone.parameters()) + head


def test_paper_head_layers_and_dropout():
    model, meta = create_model("resnet50", num_classes=4)
    assert isinstance(model, Classifier)
    layers = list(model.head)
    linears = [m for m in layers if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2048, 1024), (1024, 256), (256, 4)]
    drops = [i for i, m in enumerate(layers) if isinstance(m, nn.Dropout)]
    assert len(drops) == 1 and layers[drops[0]].p == PAPER_DROPOUT == 0.8
    assert layers[drops[0] + 1] is linears[-1]  # dropout sits right before the last layer
    model.eval()
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 4)


def test_dropout_is_a_parameter():
    model, _ = create_model("densenet169", dropout=0.3, num_classes=4)
    assert [m.p for m in model.head if isinstance(m, nn.Dropout)] == [0.3]


def test_timm_name():
    model, meta = create_model("timm:test_resnet", num_classes=4)
    assert meta.source == "timm" and meta.architecture == "test_resnet"
    assert (meta.in_chans, meta.channel_policy) == (1, "single")
    assert meta.parameters == sum(p.numel() for p in model.parameters())
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 4)


def test_unknown_names_list_close_matches():
    with pytest.raises(ModelError, match="did you mean densenet169"):
        create_model("densenet196", num_classes=4)
    with pytest.raises(ModelError, match="timm:resnet18"):
        create_model("timm:resnet81", num_classes=4)


PLUGIN = textwrap.dedent("""
    from torch import nn
    def build(num_classes=4, pretrained=False):
        net = nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, num_classes))
        net.input_size = 16
        net.in_chans = 1
        return net
""")


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """An importable module ``tb_test_plugin`` with a factory ``build``."""
    (tmp_path / "tb_test_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "tb_test_plugin"
    sys.modules.pop("tb_test_plugin", None)


def test_entry_point(monkeypatch, plugin_module):
    ep = importlib.metadata.EntryPoint(name="tiny-plugin", value=f"{plugin_module}:build",
                                       group=registry.ENTRY_POINT_GROUP)
    real = importlib.metadata.entry_points

    def fake(**kw):
        return [ep] if kw.get("group") == registry.ENTRY_POINT_GROUP else real(**kw)

    monkeypatch.setattr(resolve.importlib.metadata, "entry_points", fake)
    assert "tiny-plugin" in list_models()
    model, meta = create_model("tiny-plugin", num_classes=4)
    assert meta.source.startswith("entry-point") and meta.input_size == 16
    assert meta.parameters == 16 * 16 * 4 + 4


def test_module_function_factory(plugin_module):
    model, meta = create_model(f"{plugin_module}:build", num_classes=4)
    assert meta.source == f"module:{plugin_module}:build"
    assert (meta.input_size, meta.in_chans, meta.channel_policy) == (16, 1, "single")
    assert model(torch.zeros(3, 1, 16, 16)).shape == (3, 4)
    with pytest.raises(ModelError, match="has no function 'biuld'.*build"):
        create_model(f"{plugin_module}:biuld", num_classes=4)
    with pytest.raises(ModelError, match="cannot import module"):
        create_model("no_such_pkg_xyz.models:build", num_classes=4)


def test_file_factory(tmp_path):
    f = tmp_path / "my_net.py"
    f.write_text(textwrap.dedent("""
        from torch import nn
        def build(num_classes=4, dropout=0.0):
            return nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, num_classes))
    """))
    model, meta = create_model(f"{f}:build", num_classes=4)
    assert meta.source == f"file:{f}:build" and meta.in_chans == 3 and meta.input_size == 224
    with pytest.raises(ModelError, match="does not exist"):
        create_model(f"{tmp_path / 'missing.py'}:build", num_classes=4)


def test_factory_must_return_a_module(tmp_path):
    f = tmp_path / "bad.py"
    f.write_text("def build(num_classes=4):\n    return 'not a model'\n")
    with pytest.raises(ModelError, match="not a torch.nn.Module"):
        create_model(f"{f}:build", num_classes=4)


def test_meta_forbids_extra_fields():
    meta = describe_model("timm:test_resnet", num_classes=4)
    data = meta.model_dump()
    data["surprise"] = 1
    with pytest.raises(Exception, match="surprise"):
        type(meta).model_validate(data)


@pytest.mark.parametrize("name,minimum", [("inception_v3", 75), ("inception_resnet_v2", 75),
                                          ("densenet169", 32)])
def test_minimum_input_size_is_accepted(name, minimum):
    meta = describe_model(name, num_classes=4)
    assert meta.min_input_size == minimum
    model, _ = create_model(name, num_classes=4)
    model.eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, minimum, minimum)).shape == (1, 4)
    if minimum > 32:  # the quick protocol's 64x64 is too small for the inception stems
        with pytest.raises(RuntimeError):
            with torch.no_grad():
                model(torch.zeros(1, 3, 64, 64))
