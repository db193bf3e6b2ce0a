"""The generator and critic: the paper's sizes, any input size, iBN, hub round trips."""

import json

import pytest
import torch

from dpe_hf import DPEDiscriminator, DPEGenerator
from dpe_hf.errors import ModelLoadError
from dpe_hf.models.blocks import SELU, IndividualBatchNorm2d


def _count(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class TestDPEGenerator:
    def test_parameter_count_is_the_papers(self):
        assert _count(DPEGenerator()) == 3_335_395

    def test_individual_bn_doubles_only_the_bn_part(self):
        assert _count(DPEGenerator(individual_bn=True)) == 3_335_395 + 2_720

    @pytest.mark.parametrize("shape", [(512, 512), (341, 512)])
    def test_paper_sizes_keep_their_shape(self, shape):
        g = DPEGenerator(width=0.25).eval()
        x = torch.rand(1, 3, *shape)
        with torch.no_grad():
            assert g(x).shape == x.shape

    @pytest.mark.parametrize("shape", [(1, 1), (1, 37), (17, 5), (100, 70), (64, 64)])
    def test_any_size(self, shape):
        g = DPEGenerator(width=0.25).eval()
        x = torch.rand(2, 3, *shape)
        with torch.no_grad():
            y = g(x)
        assert y.shape == x.shape and torch.isfinite(y).all()

    def test_global_path_sees_8x8_at_512(self):
        g = DPEGenerator(width=0.25).eval()
        seen = {}
        g.g3.register_forward_hook(lambda m, i, o: seen.update(shape=i[0].shape))
        with torch.no_grad():
            g(torch.rand(1, 3, 512, 512))
        assert seen["shape"][-2:] == (8, 8)

    def test_global_feature_decides_the_look(self):
        # The feature computed from the image reproduces the plain forward; another feature
        # changes the output of the same pixels.
        torch.manual_seed(0)
        g = DPEGenerator(width=0.25, init_scale=None).eval()
        x = torch.rand(1, 3, 96, 96)
        with torch.no_grad():
            own = g.encode_global(x)
            assert own.shape == (1, 32, 1, 1)
            torch.testing.assert_close(g(x, global_feature=own), g(x))
            assert (g(x, global_feature=own + 1.0) - g(x)).abs().max() > 1e-3

    def test_starts_near_identity(self):
        torch.manual_seed(0)
        g = DPEGenerator(width=0.5)
        x = torch.rand(2, 3, 64, 64)
        assert (g(x) - x).abs().mean() < 0.05

    def test_width_scales_channels(self):
        assert _count(DPEGenerator(width=0.5)) < _count(DPEGenerator()) / 3

    def test_gradients_flow_to_every_parameter(self):
        g = DPEGenerator(width=0.25)
        g(torch.rand(2, 3, 64, 64)).mean().backward()
        assert all(p.grad is not None for p in g.parameters())

    def test_bad_input(self):
        with pytest.raises(ValueError, match="B,3,H,W"):
            DPEGenerator(width=0.25)(torch.rand(3, 64, 64))

    def test_bn_set_selects_statistics(self):
        g = DPEGenerator(width=0.25, individual_bn=True).train()
        g(torch.rand(2, 3, 64, 64), bn_set=0)
        g(torch.rand(2, 3, 64, 64) * 0.1, bn_set=1)
        bn = g.e1.bn
        assert isinstance(bn, IndividualBatchNorm2d)
        assert not torch.allclose(bn.bns[0].running_mean, bn.bns[1].running_mean)
        with pytest.raises(ValueError):
            DPEGenerator(width=0.25)(torch.rand(1, 3, 64, 64), bn_set=1)

    def test_single_bn_weights_go_to_both_sets(self):
        single = DPEGenerator(width=0.25).train()
        single(torch.rand(2, 3, 64, 64))  # non-trivial running statistics
        single.eval()
        double = DPEGenerator(width=0.25, individual_bn=True)
        double.load_single_bn_weights(single.state_dict())
        double.eval()
        x = torch.rand(1, 3, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(double(x, bn_set=0), single(x))
            torch.testing.assert_close(double(x, bn_set=1), single(x))


class TestSELU:
    def test_pytorch_constants_match_torch(self):
        x = torch.linspace(-4, 4, 101)
        torch.testing.assert_close(SELU("pytorch")(x), torch.nn.functional.selu(x))

    def test_released_constants(self):
        x = torch.tensor([-1.0, 2.0])
        expected = torch.tensor([1.0026539 * 1.0198755 * (torch.e ** -1 - 1), 1.0026539 * 2.0])
        torch.testing.assert_close(SELU("released")(x), expected)


class TestDPEDiscriminator:
    def test_parameter_count_is_the_papers(self):
        assert _count(DPEDiscriminator()) == 1_122_689

    @pytest.mark.parametrize("shape", [(512, 512), (341, 512), (64, 64), (100, 37)])
    def test_one_score_per_image(self, shape):
        d = DPEDiscriminator(width=0.25)
        assert d(torch.rand(3, 3, *shape)).shape == (3,)

    def test_scores_are_per_sample(self):
        # No batch statistics: a sample's score does not depend on the rest of the batch.
        d = DPEDiscriminator(width=0.25)
        x = torch.rand(3, 3, 64, 64)
        torch.testing.assert_close(d(x)[:1], d(x[:1]))


class TestHubRoundTrip:
    def test_folder_round_trip(self, tmp_path):
        torch.manual_seed(0)
        g = DPEGenerator(width=0.25, individual_bn=True).train()
        g(torch.rand(2, 3, 64, 64))
        g.eval()
        g.save_pretrained(tmp_path, model_card_kwargs={"training_data": "unit-test photos"})
        assert {p.name for p in tmp_path.iterdir()} == {"config.json", "model.safetensors", "README.md"}
        assert json.loads((tmp_path / "config.json").read_text())["individual_bn"] is True
        card = (tmp_path / "README.md").read_text()
        assert "pipeline_tag: image-to-image" in card and "license: mit" in card
        assert "unit-test photos" in card
        loaded = DPEGenerator.from_pretrained(tmp_path)
        x = torch.rand(1, 3, 80, 48)
        with torch.no_grad():
            assert torch.equal(loaded(x, bn_set=1), g(x, bn_set=1))

    def test_critic_round_trip(self, tmp_path):
        d = DPEDiscriminator(width=0.25)
        d.save_pretrained(tmp_path)
        x = torch.rand(2, 3, 64, 64)
        assert torch.equal(DPEDiscriminator.from_pretrained(tmp_path)(x), d(x))

    def test_wrong_shape_names_the_layer(self, tmp_path):
        DPEGenerator(width=0.25).save_pretrained(tmp_path)
        config = json.loads((tmp_path / "config.json").read_text())
        config["width"] = 0.5
        (tmp_path / "config.json").write_text(json.dumps(config))
        with pytest.raises(ModelLoadError, match="layer e1.conv.weight"):
            DPEGenerator.from_pretrained(tmp_path)

    def test_malformed_weights(self, tmp_path):
        DPEGenerator(width=0.25).save_pretrained(tmp_path)
        (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
        with pytest.raises(ModelLoadError, match="not a valid safetensors file"):
            DPEGenerator.from_pretrained(tmp_path)
