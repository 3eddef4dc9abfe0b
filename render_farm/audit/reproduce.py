"""Re-render a recorded job and compare bytes with what was recorded: `foley audit reproduce`.

    report = reproduce(settings, job_id)              # the whole job: output and stems
    report = reproduce(settings, job_id, window=3)    # one window's latents
    print(report.text()); exit(0 if report.identical else 5)

The job is rendered again from its record alone: its params (the resolved RenderSpec), seed,
model checkpoint (whose SHA-256 must be the recorded one) and input (a local file or an object of
the configured store, whose SHA-256 must be the recorded one; otherwise one clear error). It runs
in-process, in a scratch directory with its own SQLite database and blob store, so the stored
history and outputs are never touched; the scratch directory is removed afterwards.

Whole job: the same steps `foley render` runs (ingest, batched windows, assembly) write the output
and stems into the scratch directory. Each is compared with its artifact row: the reproduction's
SHA-256 against the recorded one, and the stored copy (where it can still be read) against both,
naming the first byte offset where the stored copy and the reproduction differ. When the output
differs, the windows' latents are compared too, to say where the difference starts.

One window (`window=N`): the window's whole planned batch is rendered again (batch composition
changes floating-point sums, see render_farm.steps.render), from a proxy made again from the
input, and window N's latents are compared with its recorded result_sha256 and with the stored
latents blob: shape, max abs difference, and the first differing (frame, channel).
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from render_farm.config import Settings
from render_farm.context import open_database
from render_farm.hashing import sha256_bytes, sha256_file
from render_farm.inputs import local_path_of
from render_farm.models import model_for_spec
from render_farm.spec import RenderSpec
from storage.blobs import BlobStore, LocalBlobStore, open_store
from storage.db import unit_of_work
from storage.errors import IntegrityError, InvalidInput, NotFound
from storage.models import ArtifactKind, JobState, WindowState
from storage.repos import JobRepo
from storage.repos.lineage import LineageRepo

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
REPRODUCE_DEVICE = "cpu"  # the in-process render path (render_farm.context.StepContext.device)


@dataclass(frozen=True)
class Difference:
    """One thing the reproduction does not match."""

    subject: str  # "output out.mp4", "stem out.stem.wav", "window 3 latents"
    detail: str

    def line(self) -> str:
        return f"{self.subject}: differs: {self.detail}"


@dataclass
class ReproduceReport:
    job_id: str
    window: int | None
    lines: list[str] = field(default_factory=list)  # what was checked and matched, and notes
    differences: list[Difference] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def identical(self) -> bool:
        return not self.differences

    def text(self) -> str:
        """Everything checked, one line each, then `identical` or what differs."""
        out = list(self.lines) + [d.line() for d in self.differences]
        out.append("identical" if self.identical else
                   f"differs ({len(self.differences)} difference{'s' * (len(self.differences) != 1)})")
        return "\n".join(out) + "\n"


@dataclass(frozen=True)
class _Recorded:
    """What the record holds, read in one transaction (plain data)."""

    job_id: str
    state: JobState
    project: str
    submitted_by: str
    seed: int
    params: dict[str, Any]
    model_name: str
    model_sha256: str | None
    input_uri: str
    input_sha256: str | None
    windows: list[dict[str, Any]]
    delivered: list[dict[str, Any]]  # output and stem artifacts, oldest first


def _load(settings: Settings, job_id: str) -> _Recorded:
    sessions = open_database(settings)
    with unit_of_work(sessions) as s:
        job = JobRepo(s).find(job_id)
        if job is None:
            raise NotFound(f"no job {job_id}")
        lineage = LineageRepo(s)
        windows = [{"id": w.id, "index": w.index, "start": w.start_frame, "end": w.end_frame, "batch": w.batch_index,
                    "padded_frames": w.padded_frames, "shot": (w.shot_from, w.shot_to), "state": w.state,
                    "result_key": w.result_key, "result_sha256": w.result_sha256,
                    "device": w.device}
                   for w in lineage.windows_of_jobs([job_id]).get(job_id, [])]
        delivered = [{"kind": a.kind, "key": a.key, "uri": a.uri, "sha256": a.sha256.lower(),
                      "size_bytes": a.size_bytes}
                     for a in lineage.artifacts_of_jobs([job_id], kinds=(ArtifactKind.OUTPUT, ArtifactKind.STEM))
                     .get(job_id, [])]
        return _Recorded(job.id, job.state, job.project, job.submitted_by, int(job.seed), dict(job.params),
                         job.model_name, job.model_sha256, job.input_uri, job.input_sha256, windows, delivered)


def reproduce(settings: Settings, job_id: str, *, window: int | None = None, model: str | None = None,
              progress: bool = False) -> ReproduceReport:
    """Render `job_id` again (or only the batch of its window `window`) and compare (see module doc).

    `model`: a checkpoint to use instead of the recorded name or path (its SHA-256 must still be the
    recorded one). Raises NotFound/InvalidInput/IntegrityError, as one line, when the job cannot be
    reproduced at all (no such job or window, input or checkpoint gone or changed).
    """
    t0 = time.perf_counter()
    rec = _load(settings, job_id)
    if rec.input_sha256 is None:
        raise InvalidInput(f"job {job_id} has no recorded input sha256 (its ingest never finished): "
                           "nothing to reproduce")
    spec = RenderSpec.from_params(rec.params)
    if model is not None:
        spec = replace(spec, model=model)
    if spec.seed != rec.seed:
        raise IntegrityError(f"job {job_id}: its params say seed {spec.seed}, its row says {rec.seed}")
    handle = model_for_spec(spec)
    if rec.model_sha256 is not None and handle.sha256.lower() != rec.model_sha256.lower():
        raise IntegrityError(
            f"model {spec.model}: checkpoint sha256 {handle.sha256} is not the recorded {rec.model_sha256} "
            "(pass --model PATH to the checkpoint the job used)")
    store = open_store(settings.store_url, s3_endpoint_url=settings.s3_endpoint_url)
    report = ReproduceReport(job_id, window)
    scratch_root = settings.data_dir / "scratch"
    scratch_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"reproduce-{job_id[:12]}-", dir=scratch_root))
    try:
        input_path = _input(rec, store, scratch)
        report.lines.append(f"job {job_id}: input {rec.input_uri} has its recorded sha256 {rec.input_sha256}")
        report.lines.append(f"job {job_id}: model {handle.name} has its recorded checkpoint sha256 {handle.sha256}; "
                            f"seed {rec.seed}")
        devices = sorted({w["device"] for w in rec.windows if w["device"] and w["device"] != REPRODUCE_DEVICE})
        if devices:
            report.lines.append(f"note: its windows were rendered on {', '.join(devices)}, this reproduction runs on "
                                f"{REPRODUCE_DEVICE}: floating-point results may differ across devices")
        if window is None:
            _reproduce_job(rec, spec, store, input_path, scratch, report, progress)
        else:
            _reproduce_window(rec, spec, store, input_path, scratch, window, report)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report.wall_s = time.perf_counter() - t0
    log.info("job %s: reproduced %s in %.1fs: %s", job_id, "job" if window is None else f"window {window}",
             report.wall_s, "identical" if report.identical else f"{len(report.differences)} differences")
    return report


# -- the input ---------------------------------------------------------------------------------


def _input(rec: _Recorded, store: BlobStore, scratch: Path) -> Path:
    """A local path of the job's input, checked against its recorded SHA-256."""
    recorded = (rec.input_sha256 or "").lower()
    path = local_path_of(rec.input_uri)
    if path is not None:
        if not path.is_file():
            raise NotFound(f"job {rec.job_id}: input {path} no longer exists (recorded sha256 {recorded})")
        digest = sha256_file(path)
        if digest != recorded:
            raise IntegrityError(f"job {rec.job_id}: input {path} has sha256 {digest}, not the recorded {recorded}")
        return path
    root = store.uri("k")[:-1]
    if not rec.input_uri.startswith(root):
        raise InvalidInput(f"job {rec.job_id}: input {rec.input_uri} is neither a local file nor in the configured "
                           f"store ({store.uri('')})")
    key = rec.input_uri[len(root):]
    dest = scratch / ("input" + Path(key).suffix)
    try:
        info = store.get_file(key, dest)
    except NotFound:
        raise NotFound(f"job {rec.job_id}: input {rec.input_uri} is no longer in the store "
                       f"(recorded sha256 {recorded})") from None
    if info.sha256.lower() != recorded:
        raise IntegrityError(f"job {rec.job_id}: input {rec.input_uri} has sha256 {info.sha256}, "
                             f"not the recorded {recorded}")
    return dest


# -- the whole job -----------------------------------------------------------------------------


def _reproduce_job(rec: _Recorded, spec: RenderSpec, store: BlobStore, input_path: Path, scratch: Path,
                   report: ReproduceReport, progress: bool) -> None:
    from render_farm.local_render import RenderRequest, render_files

    if rec.state is not JobState.DONE or not rec.delivered:
        raise InvalidInput(f"job {rec.job_id} is {rec.state.value} and has no recorded output to compare with "
                           "(use --window N for a rendered window)")
    main = next((a for a in rec.delivered if a["kind"] is ArtifactKind.OUTPUT), rec.delivered[0])
    suffix = Path(main["key"]).suffix or ".mp4"
    out = scratch / "out" / f"reproduction{suffix}"
    out.parent.mkdir()
    farm = Settings(data_dir=scratch / "farm")
    (result,) = render_files(farm, [RenderRequest(input_path, out)], spec, quiet=not progress,
                             project=rec.project, user=rec.submitted_by)
    made = [{"kind": ArtifactKind.OUTPUT, **result["output"]}] + [
        {"kind": ArtifactKind.STEM, **s} for s in result["stems"]]
    for kind in (ArtifactKind.OUTPUT, ArtifactKind.STEM):
        recorded = [a for a in rec.delivered if a["kind"] is kind]
        produced = [m for m in made if m["kind"] is kind]
        if len(recorded) != len(produced):
            report.differences.append(Difference(
                f"{kind.value}s", f"the record has {len(recorded)}, the reproduction made {len(produced)}"))
        for a, m in zip(recorded, produced):
            _compare_file(a, Path(local_path_of(m["uri"]) or ""), m["sha256"].lower(), store, scratch, report)
    if not report.identical:
        _compare_windows(rec, farm, report)


def _compare_file(recorded: dict[str, Any], produced: Path, produced_sha: str, store: BlobStore, scratch: Path,
                  report: ReproduceReport) -> None:
    subject = f"{recorded['kind'].value} {recorded['key']}"
    stored = _stored_copy(recorded["uri"], store, scratch)
    stored_sha = sha256_file(stored) if isinstance(stored, Path) else None
    offset = _first_difference(produced, stored) if isinstance(stored, Path) else None
    where = (f"; the stored copy and the reproduction first differ at byte offset {offset} "
             f"(reproduction {produced.stat().st_size} B, stored {stored.stat().st_size} B)"  # type: ignore[union-attr]
             if offset is not None else "")
    if produced_sha != recorded["sha256"]:
        report.differences.append(Difference(
            subject, f"the reproduction has sha256 {produced_sha}, the record {recorded['sha256']}{where}"))
    elif isinstance(stored, _Corrupt):
        report.differences.append(Difference(
            subject, f"the reproduction matches the record (sha256 {produced_sha}) but the stored copy does not: "
                     f"{stored}"))
    elif stored_sha is not None and stored_sha != recorded["sha256"]:
        report.differences.append(Difference(
            subject, f"the stored copy {recorded['uri']} has sha256 {stored_sha}, not the recorded "
                     f"{recorded['sha256']} the reproduction has{where}"))
    else:
        note = "" if isinstance(stored, Path) else f" (stored copy not compared: {stored})"
        report.lines.append(f"{subject}: identical (sha256 {produced_sha}){note}")


class _Corrupt(str):
    """Why the stored copy could not be compared: its bytes no longer match the store's own checksum."""


def _stored_copy(uri: str, store: BlobStore, scratch: Path) -> Path | str:
    """A local path holding the stored bytes at `uri` as they are now (unverified), or why none
    (a `_Corrupt` reason when the store holds bytes that fail its own checksum)."""
    path = local_path_of(uri)
    if path is not None:
        return path if path.is_file() else f"{path} no longer exists"
    root = store.uri("k")[:-1]
    if not uri.startswith(root):
        return f"{uri} is outside the configured store"
    key = uri[len(root):]
    if isinstance(store, LocalBlobStore):  # the raw bytes, even if they no longer match the store's record
        raw = store.object_path(key)
        return raw if raw.is_file() else f"{uri} is no longer in the store"
    dest = scratch / "stored" / Path(key).name
    dest.parent.mkdir(exist_ok=True)
    try:
        store.get_file(key, dest)
    except NotFound:
        return f"{uri} is no longer in the store"
    except IntegrityError as exc:
        return _Corrupt(f"{uri} is corrupt in the store ({exc})")
    return dest


def _first_difference(a: Path, b: Path) -> int | None:
    """Offset of the first byte where two files differ (the shorter length if one is a prefix)."""
    offset = 0
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca, cb = fa.read(_CHUNK), fb.read(_CHUNK)
            if ca != cb:
                n = min(len(ca), len(cb))
                diff = next((i for i in range(n) if ca[i] != cb[i]), n)
                return offset + diff
            if not ca:
                return None
            offset += len(ca)


def _compare_windows(rec: _Recorded, farm: Settings, report: ReproduceReport) -> None:
    """After an output differs: which windows' latents (or plan) differ from the record."""
    sessions = open_database(farm)
    with unit_of_work(sessions) as s:
        lineage = LineageRepo(s)
        (job,) = JobRepo(s).list(limit=1)  # the scratch database holds the reproduction only
        again = [(w.index, w.start_frame, w.end_frame, (w.shot_from, w.shot_to), (w.result_sha256 or "").lower())
                 for w in lineage.windows_of_jobs([job.id]).get(job.id, [])]
    before = [(w["index"], w["start"], w["end"], w["shot"], (w["result_sha256"] or "").lower()) for w in rec.windows]
    if [w[:3] for w in again] != [w[:3] for w in before]:
        report.differences.append(Difference(
            "window plan", f"the record has windows {[list(w[1:3]) for w in before]}, "
                           f"the reproduction planned {[list(w[1:3]) for w in again]}"))
        return
    if [w[3] for w in again] != [w[3] for w in before]:
        report.differences.append(Difference(
            "window shots", f"the record's windows see pictures {[list(w[3]) for w in before]}, "
                            f"the reproduction's {[list(w[3]) for w in again]} (shot cuts found differently)"))
        return
    for (index, _, _, _, sha_before), (_, _, _, _, sha_again) in zip(before, again):
        if sha_before != sha_again:
            report.differences.append(Difference(
                f"window {index} latents", f"the reproduction has sha256 {sha_again}, the record {sha_before or '-'} "
                                           f"(foley audit reproduce {rec.job_id} --window {index} compares values)"))


# -- one window --------------------------------------------------------------------------------


def _reproduce_window(rec: _Recorded, spec: RenderSpec, store: BlobStore, input_path: Path, scratch: Path,
                      index: int, report: ReproduceReport) -> None:
    from render_farm.context import build_context
    from render_farm.media.proxy import make_proxy_as
    from render_farm.steps.render import PlannedWindow, render_window_batch, latents_to_bytes
    from schedulers.inprocess import InProcessExecutor

    target = next((w for w in rec.windows if w["index"] == index), None)
    if target is None:
        raise NotFound(f"job {rec.job_id} has no window {index} (it has {len(rec.windows)})")
    if target["state"] is not WindowState.DONE or not target["result_sha256"] or not target["result_key"]:
        raise InvalidInput(f"job {rec.job_id}: window {index} is {target['state'].value} and has no recorded latents")
    batch = [w for w in rec.windows if w["batch"] == target["batch"]]
    plan = [PlannedWindow(w["id"], w["index"], w["start"], w["end"], *w["shot"]) for w in batch]
    ctx = build_context(Settings(data_dir=scratch / "farm"), InProcessExecutor(lambda: None),
                        scratch_dir=scratch / "work")
    proxy = ctx.scratch_dir / "proxies" / f"{rec.input_sha256}-{spec.proxy}.mp4"
    proxy.parent.mkdir(parents=True)
    make_proxy_as(input_path, proxy, spec.proxy)  # the format the job was planned on
    latents = render_window_batch(ctx, rec.job_id, spec, rec.seed, rec.input_sha256, plan,
                                  padded_frames=target["padded_frames"])
    mine = latents[[w["index"] for w in batch].index(index)]
    produced_sha = sha256_bytes(latents_to_bytes(mine))
    subject = f"window {index} latents"
    recorded_sha = target["result_sha256"].lower()
    stored, why = _stored_latents(target["result_key"], store)
    detail = _array_difference(mine, stored) if stored is not None else None
    frames = f"frames [{target['start']}, {target['end']}), batch {target['batch']} of {len(batch)} windows"
    if produced_sha != recorded_sha:
        report.differences.append(Difference(
            subject, f"the reproduction has sha256 {produced_sha}, the record {recorded_sha}"
                     + (f"; against the stored blob: {detail}" if detail else f"; {why}" if why else "")))
    elif stored is not None and detail is not None:
        report.differences.append(Difference(
            subject, f"the stored blob {target['result_key']} no longer matches its record: {detail}"))
    elif why:
        report.differences.append(Difference(subject, f"the stored blob cannot be compared: {why}"))
    else:
        report.lines.append(f"{subject}: identical ({frames}; sha256 {produced_sha})")


def _stored_latents(key: str, store: BlobStore) -> tuple[np.ndarray | None, str | None]:
    """The stored latents as they are now (raw bytes for a local store), or why not."""
    from render_farm.steps.render import latents_from_bytes

    try:
        if isinstance(store, LocalBlobStore):
            path = store.object_path(key)
            if not path.is_file():
                return None, f"{store.uri(key)} is no longer in the store"
            data = path.read_bytes()
        else:
            data = store.get(key)
    except NotFound:
        return None, f"{store.uri(key)} is no longer in the store"
    except IntegrityError as exc:
        return None, f"{store.uri(key)} is corrupt in the store ({exc})"
    try:
        return latents_from_bytes(data), None
    except (ValueError, OSError, EOFError) as exc:
        return None, f"{store.uri(key)} is not a latents array ({exc})"


def _array_difference(produced: np.ndarray, stored: np.ndarray) -> str | None:
    """None if bit-identical, else shape or max abs difference and first differing (frame, channel)."""
    if produced.shape != stored.shape or produced.dtype != stored.dtype:
        return f"shape {produced.shape} {produced.dtype} reproduced, {stored.shape} {stored.dtype} stored"
    same = (produced == stored) | (np.isnan(produced) & np.isnan(stored))
    if same.all() and produced.tobytes() == stored.tobytes():
        return None
    bad = np.argwhere(~same)
    first = tuple(int(i) for i in bad[0]) if len(bad) else None
    delta = np.abs(produced.astype(np.float64) - stored.astype(np.float64))
    finite = delta[np.isfinite(delta)]
    max_abs = float(finite.max()) if finite.size else float("nan")
    return (f"max abs difference {max_abs:.6g} over {int((~same).sum())} of {same.size} values, "
            f"first at (frame, channel) {first}")


__all__ = ["Difference", "ReproduceReport", "reproduce"]
