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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_nearest_distance_on_cuda_matches_cdist_on_cpu():
    from oltr_nb.models import nearest_distance
    torch.manual_seed(1)
    x, keys = 3 * torch.randn(128, 512), 3 * torch.randn(1000, 512)
    exact = torch.cdist(x, keys, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1).values
    xc = x.cuda().requires_grad_()
    fast = nearest_distance(xc, keys.cuda())
    torch.testing.assert_close(fast.detach().cpu(), exact, atol=1e-3, rtol=1e-4)
    fast.sum().backward()
    torch.testing.assert_close(xc.grad.norm(dim=1).cpu(), torch.ones(128), atol=1e-4, rtol=0)  # d|x - c|/dx is a unit vector


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.timeout(300)
def test_cuda_graphs_training_steps_match_eager():
    "Three stage-2 training steps with the model replayed as CUDA graphs (float32) give eager's losses and weights."
    def run(graphs):
        model = small_stage2_model().cuda()
        loss_fn = DiscCentroidsLoss(10, 512).cuda().set_centroids(model.centroids)
        opt = torch.optim.SGD(list(model.parameters()) + list(loss_fn.parameters()), lr=0.01, momentum=0.9)
        net = torch.compile(model, mode="reduce-overhead") if graphs else model
        torch.manual_seed(2)
        losses = []
        for _ in range(3):
            images, labels = torch.randn(8, 1, 8, 8, device="cuda"), torch.randint(0, 10, (8,), device="cuda")
            if graphs: torch.compiler.cudagraph_mark_step_begin()
            out = net(images)
            loss = torch.nn.functional.cross_entropy(out["logits"], labels) + 0.01 * loss_fn(out["features"], labels)
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
            losses.append(loss.item())
        return losses, model.classifier.fc_selector.weight.detach().cpu()
    (eager_losses, eager_w), (graph_losses, graph_w) = run(False), run(True)
    torch.testing.assert_close(graph_losses, eager_losses, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(graph_w, eager_w, atol=1e-4, rtol=1e-3)
