"""Slow model checks: torch.compile of the OLTR model and the centroid loss (CPU; CUDA when present)."""
import pytest
import torch

from oltr_nb.losses import DiscCentroidsLoss
from oltr_nb.models import build_model


def small_stage2_model():
    "A digits-sized stage-2 model with random centroids."
    torch.manual_seed(0)
    model = build_model("resnet10_small", num_classes=10, classifier="meta", attention=True, fc_add=True,
                        in_size=8, in_channels=1)
    model.set_centroids(torch.randn(10, 512))
    return model


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_compile_matches_eager_forward_and_backward():
    model = small_stage2_model().eval()
    images, labels = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    loss_fn = DiscCentroidsLoss(10, 512).set_centroids(model.centroids)
    compiled = torch.compile(model)
    with torch.no_grad():
        torch.testing.assert_close(compiled(images)["logits"], model(images)["logits"], atol=1e-4, rtol=1e-4)

    def grads(net):
        model.zero_grad(); loss_fn.zero_grad()
        out = net(images)
        loss = torch.nn.functional.cross_entropy(out["logits"], labels) + 0.01 * loss_fn(out["features"], labels)
        loss.backward()
        return model.classifier.fc_selector.weight.grad.clone(), loss_fn.centroids.grad.clone()

    eager_sel, eager_cent = grads(model)
    compiled_sel, compiled_cent = grads(compiled)
    torch.testing.assert_close(compiled_sel, eager_sel, atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(compiled_cent, eager_cent, atol=1e-5, rtol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_channels_last_matches_cpu():
    model = small_stage2_model().eval()
    images = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        reference = model(images)["logits"]
        gpu = model.to("cuda").to(memory_format=torch.channels_last)
        gpu_images = images.cuda().to(memory_format=torch.channels_last)
        torch.testing.assert_close(gpu(gpu_images)["logits"].cpu(), reference, atol=0.05, rtol=0.01)  # cuDNN may use TF32
        with torch.autocast("cuda", dtype=torch.bfloat16):
            bf16 = gpu(gpu_images)["logits"].float().cpu()
    assert (bf16 - reference).abs().max().item() < 0.05
