"""The stacked optimiser and scheduler against torch's own, member by member."""

import pytest
import torch

from bnre.training.optim import StackedAdamW, StackedPlateau, fused_kernel_available


@pytest.mark.parametrize("fused", [True, False])
def test_stacked_adamw_equals_torch_adamw_per_member(fused):
    torch.manual_seed(0)
    stacked = torch.randn(3, 4, 5, requires_grad=True)
    singles = [stacked[k].detach().clone().requires_grad_() for k in range(3)]
    lrs = [1e-3, 1e-2, 5e-2]
    mine = StackedAdamW([stacked], torch.tensor(lrs, dtype=torch.float64), weight_decay=0.1, fused=fused)
    theirs = [torch.optim.AdamW([p], lr=lr, weight_decay=0.1) for p, lr in zip(singles, lrs)]
    target = torch.randn(4, 5)
    for _ in range(20):
        mine.zero_grad()
        ((stacked - target) ** 3).sum().backward()
        mine.step()
        for p, opt in zip(singles, theirs):
            opt.zero_grad()
            ((p - target) ** 3).sum().backward()
            opt.step()
    for k in range(3):
        assert torch.allclose(stacked[k], singles[k], atol=1e-6)


def test_stacked_plateau_equals_torch_scheduler():
    losses = [[1.0, 0.9, 0.9, 0.91, 0.95, 0.89, 0.89, 0.9, 0.9, 0.9], [1.0, 0.5, 0.4, 0.3, 0.3, 0.3, 0.3, 0.2, 0.2, 0.2]]
    mine = StackedPlateau(2, factor=0.5, patience=2)
    lr = torch.tensor([1e-3, 1e-3], dtype=torch.float64)
    refs = []
    for _ in range(2):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
        refs.append((opt, torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)))
    for epoch in range(10):
        lr = mine.step(torch.tensor([losses[0][epoch], losses[1][epoch]], dtype=torch.float64), lr)
        for k, (opt, sched) in enumerate(refs):
            sched.step(losses[k][epoch])
            assert lr[k].item() == pytest.approx(opt.param_groups[0]["lr"])


def test_fused_and_public_updates_agree_with_a_learning_rate_per_member():
    """The private fused kernel and the public-ops fallback are the same update."""
    assert fused_kernel_available(torch.device("cpu"))  # the tested torch has the CPU kernel
    torch.manual_seed(1)
    start = torch.randn(4, 6, 3)
    lrs = torch.tensor([1e-3, 1e-3, 3e-2, 1e-2], dtype=torch.float64)
    finals = []
    for fused in (True, False):
        p = start.clone().requires_grad_()
        opt = StackedAdamW([p], lrs.clone(), weight_decay=0.05, fused=fused)
        for step in range(30):
            opt.zero_grad()
            (torch.sin(p * (step + 1)) * p).sum().backward()
            opt.step()
        finals.append(p.detach())
    assert torch.allclose(finals[0], finals[1], rtol=1e-5, atol=1e-6)
    assert not torch.equal(finals[0], start)
