import torch

from foley_model.model import cat_conditions


def _frames(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (1, n, 48, 80, 3), dtype=torch.uint8, generator=g)


def test_shapes_through_every_stage(tiny_model):
    m, cfg = tiny_model, tiny_model.cfg
    frames = torch.cat([_frames(97, 0), _frames(97, 1)])
    with torch.no_grad():
        cond = m.prepare_conditions(frames, ["two balls bouncing", ""], [0.0, 2.0], [4.0, 3.0],
                                    frames_start_s=[0.0, 2.0])
        B, T, D, C = 2, 125, cfg.dit.width, cfg.vae.latent_channels
        assert cond.latent_mask.shape == (B, T) and cond.latent_mask.sum(1).tolist() == [125, 94]
        assert cond.sync.shape == (B, T, D) and cond.visual.shape == (B, 32, D)
        assert cond.visual_mask.sum(1).tolist() == [32, 24]
        assert cond.cues.shape == (B, 2 * cfg.stereo.cue_columns, 2 * T)
        x = torch.randn(B, T, C)
        v = m.velocity(x, torch.rand(B), cond)
        assert v.shape == (B, T, C)
        # each block keeps the stream shapes
        a, vis, txt = m.dit.x_in(x), cond.visual, cond.text
        c = cond.dit_args()[-1] + m.dit.t_embed(torch.zeros(B, 256))
        mask = torch.cat([cond.latent_mask, cond.visual_mask, cond.text_mask], 1)
        pos = torch.arange(T).float().expand(B, T)
        from foley_model.mmdit import rope_angles
        ra, rv = rope_angles(pos, cfg.dit.head_dim, 1e4), rope_angles(cond.visual_pos, cfg.dit.head_dim, 1e4)
        out = m.dit.joint[0]([a, vis, txt], [c[:, None] + cond.sync, c[:, None], c[:, None]], [ra, rv, None], mask)
        assert [o.shape for o in out] == [a.shape, vis.shape, txt.shape]
        (a2,) = m.dit.audio[0]([out[0]], [c[:, None] + cond.sync], [ra], cond.latent_mask)
        assert a2.shape == (B, T, D)
        lat = m.sample_latents(cond, torch.randn(B, T, C), steps=2)
        mel = m.decode_mel(lat)
        assert mel.shape == (B, cfg.audio.n_mels, 2 * T)
        st = m.to_stereo(mel, cond.cues)
        assert st.shape == (B, 2, cfg.audio.n_mels, 2 * T)
        wave = m.vocode(st, kind="neural")
        assert wave.shape == (B, 2, 2 * T * cfg.audio.hop)


def test_padding_never_changes_real_frames(tiny_model):
    m = tiny_model
    frames_long, frames_short = _frames(100, 3), _frames(100, 4)
    with torch.no_grad():
        alone = m.prepare_conditions(frames_short, ["a lamp blinking"], [1.6], [2.56], frames_start_s=[1.5])
        T_short = alone.latent_mask.shape[1]
        batch = m.prepare_conditions(torch.cat([frames_long, frames_short]), ["two balls", "a lamp blinking"],
                                     [0.0, 1.6], [4.0, 2.56], frames_start_s=[0.0, 1.5])
        assert T_short == 80 and batch.latent_mask.shape[1] == 125
        g = torch.Generator().manual_seed(5)
        x = torch.randn(2, 125, 8, generator=g)
        x[1, 80:] = 1e3  # garbage in the padding must not matter
        t = torch.tensor([0.3, 0.7])
        v_batch = m.velocity(x, t, batch)
        v_alone = m.velocity(x[1:, :80], t[1:], alone)
        assert torch.allclose(v_batch[1, :80], v_alone[0], atol=2e-5), (v_batch[1, :80] - v_alone[0]).abs().max()
        noise = torch.randn(2, 125, 8, generator=g)
        lat_b = m.sample_latents(batch, noise, steps=3, cfg_scale=3.0)
        lat_a = m.sample_latents(alone, noise[1:, :80], steps=3, cfg_scale=3.0)
        assert torch.allclose(lat_b[1, :80], lat_a[0], atol=1e-4), (lat_b[1, :80] - lat_a[0]).abs().max()
        assert float(lat_b[1, 80:].abs().max()) == 0.0


def test_windows_place_visual_features_by_true_time(tiny_model):
    """A window starting at any absolute latent frame sees the same sync features as a longer window."""
    m, rate = tiny_model, tiny_model.cfg.latent_rate_hz
    frames = _frames(130, 7)  # 0 .. 5.4 s at 24 fps
    with torch.no_grad():
        whole = m.prepare_conditions(frames, [""], [0.0], [5.0], frames_start_s=[0.0])
        s0, n = 37, 60  # latent frames: starts between video frames
        # frames from frame_context frames before the window (differences and temporal convs need them)
        k0 = 28 - m.frame_encoder.frame_context
        sub = m.prepare_conditions(frames[:, k0:], [""], [s0 / rate], [n / rate], frames_start_s=[k0 / 24])
        assert torch.allclose(sub.sync[0], whole.sync[0, s0:s0 + n], atol=1e-5)
        assert torch.allclose(sub.cues[0], whole.cues[0, :, 2 * s0:2 * (s0 + n)], atol=1e-5)


def test_cfg_scale_one_equals_conditional_sampling(tiny_model):
    m = tiny_model
    with torch.no_grad():
        cond = m.prepare_conditions(_frames(50), ["a ball"], [0.0], [2.0])
        noise = torch.randn(1, cond.latent_mask.shape[1], 8, generator=torch.Generator().manual_seed(2))
        from foley_model.flow_matching import FlowMatching
        ref = FlowMatching(4).run_t0_to_t1(lambda x, t: m.velocity(x, t, cond), noise)
        assert torch.allclose(m.sample_latents(cond, noise, steps=4, cfg_scale=1.0), ref, atol=1e-6)
        # batched CFG (one forward) equals two separate forwards
        unc = m.unconditional(cond, ["loud noise"])
        pair = cat_conditions(cond, unc)
        x, t = noise, torch.tensor([0.4])
        vb = FlowMatching.cfg_velocity_batched(lambda xx, tt: m.velocity(xx, tt, pair), x, t, 3.0)
        vs = FlowMatching.cfg_velocity(lambda xx, tt: m.velocity(xx, tt, cond),
                                       lambda xx, tt: m.velocity(xx, tt, unc), x, t, 3.0)
        assert torch.allclose(vb, vs, atol=2e-5)
        # the negative prompt changes the unconditional branch
        assert not torch.allclose(m.velocity(x, t, unc), m.velocity(x, t, m.unconditional(cond)))


def test_one_training_step_lowers_the_loss_on_a_fixed_batch():
    from foley_model.configs import get_config
    from foley_model.flow_matching import interpolate, masked_mse
    from foley_model.model import FoleyModel
    torch.manual_seed(0)
    m = FoleyModel(get_config("tiny")).train()
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (4, 50, 32, 32, 3), dtype=torch.uint8, generator=g)
    x1, x0 = torch.randn(4, 62, 8, generator=g), torch.randn(4, 62, 8, generator=g)
    t = torch.rand(4, generator=g)
    params = [p for n, p in m.named_parameters() if not n.startswith(("vae.", "stereo.", "neural_vocoder."))]
    opt = torch.optim.AdamW(params, lr=1e-3)

    def loss_fn():
        cond = m.prepare_conditions(frames, ["a ball", "", "a lamp", "boxes"], [0.0] * 4, [62 / 31.25] * 4)
        return masked_mse(m.velocity(interpolate(x0, x1, t), t, cond), x1 - x0, cond.latent_mask)

    before = loss_fn()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss_fn()
    assert float(after) < float(before), (float(before), float(after))
