"""Inference engines: how the velocity network (the MMDiT forward, conditions prepared once per
window) runs on a device. The CPU path is plain torch; the engines differ only in this wrapper.

    engine = select_engine("deepspeed", model.dit, torch.device("cuda"), torch.bfloat16)
    latents = model.sample_latents(cond, noise, bind=engine.bind)

- eager: the module, called directly.
- deepspeed: `deepspeed.init_inference` around the module (dtype conversion, placement); on CUDA
  one inference engine per input shape with `enable_cuda_graph=True`, so each (batch size, length
  bucket) shape is captured once and replayed at every sampler step. On the CPU it is the
  wrapper without graphs (which gains nothing; it is there so the path is tested without a GPU).
- compile: `torch.compile(module, dynamic=False)`; it compiles at the first call of each shape.

`select_engine` returns the requested engine when it is possible here and otherwise eager, with
ONE warning that says why (deepspeed not installed or failing, a compile that fails at its first
call). `resolve_inference` does the same for a worker's placement (a CUDA device with no GPU).
An engine owns the module it is given: it converts it to its dtype and device in place.

Every engine takes and returns float32 tensors (the network casts to its weight dtype inside),
so the sampler integrates in fp32 whatever the network runs in.
"""
from __future__ import annotations

import importlib.util
import logging
from collections import OrderedDict
from typing import Callable, Sequence

import torch
import torch.nn as nn

from render_farm.config import InferenceConfig

log = logging.getLogger(__name__)

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
MAX_CUDA_GRAPHS = 16  # captured shapes kept per engine (least recently used dropped): memory stays bounded

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


class EagerEngine:
    """The module, called directly (plain torch)."""

    name = "eager"

    def __init__(self, module: nn.Module, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        self.module = module.to(device=device, dtype=dtype).eval()
        self.device, self.dtype = device, dtype

    def describe(self) -> str:
        return f"{self.name} {DTYPE_NAMES[self.dtype]}"

    def bind(self, args: Sequence[torch.Tensor]) -> Velocity:
        """The velocity function (x, t) -> v of one batch: its condition tensors are fixed here, once."""
        args = tuple(args)
        return lambda x, t: self(x, t, args)

    def __call__(self, x: torch.Tensor, t: torch.Tensor, args: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return self.module(x, t, *args)


class DeepSpeedEngine(EagerEngine):
    """`deepspeed.init_inference` around the module; on CUDA one engine + CUDA graph per input shape."""

    name = "deepspeed"

    def __init__(self, module: nn.Module, device: torch.device, dtype: torch.dtype, cuda_graphs: bool = True,
                 max_graphs: int = MAX_CUDA_GRAPHS) -> None:
        import deepspeed  # an ImportError (or any failure of its import) makes select_engine fall back

        logging.getLogger("DeepSpeed").setLevel(logging.WARNING)  # its logger prints an INFO line per engine
        self._ds = deepspeed
        self.device, self.dtype = device, dtype
        self.cuda_graphs = cuda_graphs and device.type == "cuda"
        self.max_graphs = max_graphs
        self.module = module.to(device).eval()  # placed here: DeepSpeed would pick its accelerator's device
        # One plain engine up front: it converts the module to dtype, and any failure surfaces now.
        self._plain = self._init(enable_cuda_graph=False)
        self._graphs: OrderedDict[tuple, nn.Module] = OrderedDict()

    def _init(self, enable_cuda_graph: bool) -> nn.Module:
        return self._ds.init_inference(self.module, dtype=self.dtype, enable_cuda_graph=enable_cuda_graph,
                                       keep_module_on_host=True)

    def describe(self) -> str:
        return super().describe() + (" cuda-graphs" if self.cuda_graphs else "")

    @property
    def captured_shapes(self) -> int:
        return len(self._graphs)

    def __call__(self, x: torch.Tensor, t: torch.Tensor, args: tuple[torch.Tensor, ...]) -> torch.Tensor:
        with torch.inference_mode():
            if not self.cuda_graphs:
                return self._plain(x, t, *args)
            inputs = (x, t, *args)
            key = tuple((tuple(a.shape), a.dtype) for a in inputs)
            engine = self._graphs.get(key)
            if engine is None:
                engine = self._init(enable_cuda_graph=True)
                # Captured on private copies: DeepSpeed keeps the first call's tensors as the graph's
                # static inputs and copies every later call's inputs into them.
                out = engine(*(a.clone() for a in inputs))
                self._graphs[key] = engine
                while len(self._graphs) > self.max_graphs:
                    self._graphs.popitem(last=False)
            else:
                self._graphs.move_to_end(key)
                out = engine(*inputs)
            return out.clone()  # the graph's static output is overwritten by the next replay


class CompileEngine(EagerEngine):
    """`torch.compile` of the module; a compile that fails falls back to eager for good (one warning)."""

    name = "compile"

    def __init__(self, module: nn.Module, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(module, device, dtype)
        self._compiled: Callable | None = torch.compile(self.module, dynamic=False)

    def __call__(self, x: torch.Tensor, t: torch.Tensor, args: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if self._compiled is not None:
            try:
                return self._compiled(x, t, *args)
            except Exception as exc:  # noqa: BLE001 - inductor/triton/compiler failures take many forms
                log.warning("engine compile is not possible here (%s): using eager", _why(exc))
                self._compiled = None
                self.name = "eager"
        return self.module(x, t, *args)


def select_engine(requested: str, module: nn.Module, device: torch.device | str, dtype: torch.dtype = torch.float32,
                  *, cuda_graphs: bool = True) -> EagerEngine:
    """The requested engine ("auto": deepspeed on CUDA, eager on the CPU) around `module`, or eager
    with one warning saying why the request is not possible here."""
    device = torch.device(device)
    if requested == "auto":
        requested = "deepspeed" if device.type == "cuda" else "eager"
    if requested == "eager":
        return EagerEngine(module, device, dtype)
    try:
        if requested == "deepspeed":
            return DeepSpeedEngine(module, device, dtype, cuda_graphs=cuda_graphs)
        if requested == "compile":
            return CompileEngine(module, device, dtype)
        raise ValueError(f"unknown engine {requested!r}")
    except ImportError as exc:
        reason = f"{exc.name or 'a module'} is not installed (pip install '.[gpu]')" if requested == "deepspeed" \
            else _why(exc)
    except Exception as exc:  # noqa: BLE001 - DeepSpeed's import and init fail in many ways without a GPU
        reason = _why(exc)
    log.warning("engine %s is not possible here (%s): using eager", requested, reason)
    return EagerEngine(module, device, dtype)


def resolve_inference(requested: InferenceConfig) -> InferenceConfig:
    """The placement this process can honour. CUDA without a usable GPU becomes the CPU path, and
    the CPU path is always eager fp32; either change is logged in one line. On CUDA "auto" is
    DeepSpeed where it is installed (else eager) in bf16. Call it in the process that renders
    (never in a prefork parent: it may touch CUDA)."""
    cpu = InferenceConfig(device="cpu", engine="eager", dtype="fp32", label="cpu", cuda_graphs=False)
    if requested.on_cuda:
        if torch.cuda.is_available():
            dtype = "bf16" if requested.dtype == "auto" else requested.dtype
            engine = requested.engine
            if engine == "auto":
                engine = "deepspeed" if importlib.util.find_spec("deepspeed") is not None else "eager"
                if engine == "eager":
                    log.info("engine auto: deepspeed is not installed (pip install '.[gpu]'): using eager")
            return InferenceConfig(device=requested.device, engine=engine, dtype=dtype,
                                   label=requested.label or requested.device, cuda_graphs=requested.cuda_graphs)
        log.warning("%s: no usable CUDA device here: rendering on the CPU (plain torch, fp32)",
                    requested.label or requested.device)
        return cpu
    if requested.engine not in ("auto", "eager") or requested.dtype not in ("auto", "fp32"):
        log.warning("the CPU path runs plain torch in fp32: engine %s, dtype %s are for CUDA devices",
                    requested.engine, requested.dtype)
    return cpu
