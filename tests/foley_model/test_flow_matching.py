import torch

from foley_model.flow_matching import FlowMatching, interpolate, masked_mse, predict_x1, sample_t_logit_normal


def test_euler_integrates_a_linear_flow_exactly():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(2, 7, 3, generator=g), torch.randn(2, 7, 3, generator=g)
    # the straight-line flow through x1: v(x, t) = (x1 - x) / (1 - t); Euler follows the line exactly
    fn = lambda x, t: (x1 - x) / (1 - t[:, None, None])  # noqa: E731
    for steps in (1, 3, 10):
        out = FlowMatching(steps).run_t0_to_t1(fn, x0)
        assert torch.allclose(out, x1, atol=1e-5), (steps, (out - x1).abs().max())
    out = FlowMatching(4, "heun").run_t0_to_t1(fn, x0)
    assert torch.allclose(out, x1, atol=1e-5)
    # a constant velocity field: x0 + v
    v = torch.randn(2, 7, 3, generator=g)
    assert torch.allclose(FlowMatching(5).run_t0_to_t1(lambda x, t: v, x0), x0 + v, atol=1e-5)


def test_interpolation_and_target():
    x0, x1 = torch.zeros(1, 2, 1), torch.ones(1, 2, 1)
    assert torch.allclose(interpolate(x0, x1, torch.tensor([0.25])), torch.full((1, 2, 1), 0.25))
    t = sample_t_logit_normal(1000, torch.Generator().manual_seed(0))
    assert 0 < float(t.min()) and float(t.max()) < 1 and abs(float(t.mean()) - 0.5) < 0.05


def test_cfg_scale_one_is_conditional_and_batched_matches():
    g = torch.Generator().manual_seed(1)
    x, t = torch.randn(3, 5, 2, generator=g), torch.rand(3, generator=g)
    fc = lambda x, t: 2 * x + t[:, None, None]  # noqa: E731
    fu = lambda x, t: -x  # noqa: E731
    assert torch.equal(FlowMatching.cfg_velocity(fc, fu, x, t, 1.0), fc(x, t))
    pair = lambda xx, tt: torch.cat([fc(xx[:3], tt[:3]), fu(xx[3:], tt[3:])])  # noqa: E731
    for s in (1.0, 3.0):
        assert torch.allclose(FlowMatching.cfg_velocity_batched(pair, x, t, s),
                              fu(x, t) + s * (fc(x, t) - fu(x, t)), atol=1e-6)


def test_masked_mse_ignores_padding():
    pred, target = torch.zeros(1, 4, 2), torch.zeros(1, 4, 2)
    target[0, 3] = 100.0
    mask = torch.tensor([[True, True, True, False]])
    assert float(masked_mse(pred, target, mask)) == 0.0
    mask[0, 3] = True
    assert float(masked_mse(pred, target, mask)) == 100.0 ** 2 / 4


def test_from_step_runs_only_the_last_steps_of_the_same_grid():
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(2, 6, 3, generator=g)
    fn = lambda x, t: torch.sin(3 * x) + t[:, None, None]  # noqa: E731  (nonlinear: the grid matters)
    sampler = FlowMatching(10)
    # the state after 4 Euler steps, continued from step 4, ends where the whole run ends
    x = x0
    for i in range(4):
        x = x + 0.1 * fn(x, torch.full((2,), i / 10))
    assert torch.allclose(sampler.run_t0_to_t1(fn, x, from_step=4), sampler.run_t0_to_t1(fn, x0), atol=1e-5)
    # from the last grid point only one step runs: x + dt v(x, 0.9)
    assert torch.allclose(sampler.run_t0_to_t1(fn, x0, from_step=9), x0 + 0.1 * fn(x0, torch.full((2,), 0.9)),
                          atol=1e-6)


def test_observe_sees_every_step_and_its_clean_data_estimate():
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(2, 6, 3, generator=g)
    fn = lambda x, t: torch.sin(3 * x) + t[:, None, None]  # noqa: E731
    seen = []
    out = FlowMatching(5).run_t0_to_t1(fn, x0, observe=lambda i, x, v, t: seen.append((i, predict_x1(x, v, t))))
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4]
    assert torch.allclose(seen[-1][1], out, atol=1e-6)  # at the last Euler step the estimate is the output
    assert torch.allclose(seen[0][1], x0 + fn(x0, torch.zeros(2)), atol=1e-6)  # one straight step from noise
    assert not torch.allclose(seen[1][1], out, atol=1e-3)  # earlier it is only an estimate
