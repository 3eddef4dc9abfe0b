"""Mel front-end, VAE, Mono2Stereo, vocoders: chunked processing equals whole processing."""
import torch

from foley_model.configs import get_config
from foley_model.mel import MelSpectrogram, mel_filterbank
from foley_model.vocoder import GriffinLim, NeuralVocoder, synthesize_chunked

from .conftest import randomize_


def test_mel_filterbank_and_spectrogram():
    cfg = get_config("tiny").audio
    fb = mel_filterbank(cfg.sample_rate_hz, cfg.n_fft, cfg.n_mels, cfg.f_min_hz, cfg.f_max_hz)
    assert fb.shape == (64, 513) and (fb >= 0).all()
    mel = MelSpectrogram(cfg)
    t = torch.arange(16000) / 16000
    tone = torch.sin(2 * torch.pi * 1000 * t)[None]
    m = mel(tone)
    assert m.shape == (1, 64, 62)
    peak_bin = int(m[0, :, 30].argmax())
    centre = torch.tensor(fb).argmax(1)[peak_bin] * 16000 / 1024
    assert abs(float(centre) - 1000) < 150, float(centre)


def test_vae_chunked_decode_equals_whole(tiny_model):
    vae = tiny_model.vae
    z = torch.randn(1, 157, vae.cfg.latent_channels, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        whole = vae.decode(z)
        assert whole.shape == (1, 64, 314)
        for chunk in (20, 33, 64):
            assert torch.allclose(vae.decode_chunked(z, chunk), whole, atol=1e-5), chunk
        mean, logvar = vae.encode(whole)
        assert mean.shape == (1, 157, 8) and logvar.shape == mean.shape
    # the receptive field is not larger than declared: a change far away leaves a frame alone
    z2 = z.clone()
    z2[0, 100 + vae.receptive_field + 1:] += 5
    with torch.no_grad():
        assert torch.equal(vae.decode(z2)[..., :200], whole[..., :200])


def test_stereo_chunked_equals_whole(tiny_model):
    st = tiny_model.stereo
    g = torch.Generator().manual_seed(1)
    mono, cues = torch.randn(2, 64, 300, generator=g), torch.rand(2, 32, 300, generator=g)
    with torch.no_grad():
        whole = st(mono, cues)
        assert whole.shape == (2, 2, 64, 300)
        assert torch.allclose(st.to_stereo_chunked(mono, cues, 70), whole, atol=1e-5)
        p = st.pan(mono, cues)
        assert float(p.min()) > 0 and float(p.max()) < 1


def test_griffin_lim_chunked_equals_whole():
    cfg = get_config("tiny").audio
    gl = GriffinLim(cfg, iters=4)
    mel = MelSpectrogram(cfg)
    g = torch.Generator().manual_seed(2)
    wave = torch.randn(1, 200 * 256, generator=g) * torch.linspace(0, 1, 200 * 256) * 0.3
    m = mel(wave)
    whole = gl(m)
    assert whole.shape == (1, 200 * 256)
    chunked = synthesize_chunked(gl, m, 60)
    assert torch.allclose(chunked, whole, atol=1e-4 * float(whole.abs().max())), (chunked - whole).abs().max()


def test_griffin_lim_reconstructs_the_spectrogram():
    cfg = get_config("tiny").audio
    mel = MelSpectrogram(cfg)
    t = torch.arange(32000) / 16000
    wave = (0.3 * torch.sin(2 * torch.pi * 440 * t) * (t > 0.5))[None]
    m = mel(wave)
    rec = GriffinLim(cfg, iters=32)(m)
    err = (mel(rec) - m).abs().mean()
    assert float(err) < 0.3, float(err)


def test_neural_vocoder_chunked_equals_whole():
    cfg = get_config("tiny")
    voc = randomize_(NeuralVocoder(cfg.audio, cfg.vocoder)).eval()
    m = torch.randn(2, 64, 150, generator=torch.Generator().manual_seed(3)) * 0.3
    with torch.no_grad():
        whole = voc(m)
        assert whole.shape == (2, 150 * 256)
        chunked = synthesize_chunked(voc, m, 40)
    assert torch.allclose(chunked, whole, atol=1e-4 * float(whole.abs().max())), (chunked - whole).abs().max()


def test_vae_adversarial_loss_trains_both_sides():
    """The optional adversarial loss: the discriminator's hinge step moves it, and the VAE's loss then
    carries the adversarial and feature-matching terms with gradients into the VAE."""
    import dataclasses

    from foley_model.vae import MelDiscriminator, MelVAE, discriminator_loss

    cfg = get_config("tiny")
    vcfg = dataclasses.replace(cfg.vae, hidden=32, adversarial=True)
    torch.manual_seed(0)
    vae, disc = MelVAE(cfg.audio, vcfg), MelDiscriminator(cfg.audio.n_mels, channels=(8, 16))
    mel = torch.randn(2, cfg.audio.n_mels, 32)
    with torch.no_grad():
        fake = vae.decode(vae.encode(mel)[0])
    d_opt = torch.optim.SGD(disc.parameters(), lr=0.1)
    d0 = discriminator_loss(disc, mel, fake)
    d_opt.zero_grad(), d0.backward(), d_opt.step()
    with torch.no_grad():
        assert float(discriminator_loss(disc, mel, fake)) < float(d0)  # it learned to tell them apart
    plain, _ = vae.loss(mel)
    loss, parts = vae.loss(mel, disc)
    assert {"adv", "fm", "flux", "reconstruction"} <= set(parts) and torch.isfinite(loss)
    assert parts["reconstruction"].shape == mel.shape
    vae.zero_grad()
    loss.backward()
    assert vae.dec_out.weight.grad is not None and vae.dec_out.weight.grad.abs().sum() > 0


def test_spectral_convergence_weighs_a_tones_loud_bin_over_the_quiet_bins():
    """With sc_weight the reconstruction loss measures the linear mel magnitude, relative to the target's: a tone's peak
    bin decoded 30 dB too soft costs far more than the same log-domain error spread over quiet bins."""
    from foley_model.vae import MelVAE

    cfg = get_config("tiny")
    vae = MelVAE(cfg.audio, cfg.vae)
    target = torch.full((1, cfg.audio.n_mels, 16), -1.0)  # a quiet bed
    target[:, 11] = 2.6  # one loud tone bin (normalised log-mel)
    soft_tone = target.clone()
    soft_tone[:, 11] -= 1.4  # the tone's magnitude 1.4 x 2.5 nats (30 dB) too soft
    noisy_bed = target.clone()
    noisy_bed[:, 20:21] -= 1.4  # the same log-domain error on a quiet bin
    plain = [vae.reconstruction_loss(x, target)[0] for x in (soft_tone, noisy_bed)]
    assert torch.allclose(plain[0], plain[1])  # the log-domain terms cannot tell them apart
    (soft, parts), (bed, _) = (vae.reconstruction_loss(x, target, sc_weight=1.0) for x in (soft_tone, noisy_bed))
    assert parts["sc"] > 0.9 and float(soft - plain[0]) > 100 * float(bed - plain[1])
    same, parts = vae.reconstruction_loss(target, target, sc_weight=1.0)
    assert float(same) == 0.0 and parts["sc"] == 0.0
    # and it trains the decoder: the gradient reaches its output layer
    loss, _ = vae.loss(target.repeat(2, 1, 8)[..., :32], sc_weight=1.0)
    loss.backward()
    assert vae.dec_out.weight.grad.abs().sum() > 0
