"""Scenario files: pydantic models (extra="forbid"), the YAML loader and sweep expansion.

A scenario names a workload, a cluster, a collective and the compressors compared side by
side. Quantities with units stay strings here ("1 Gbit/s") and are checked on load; the
engine converts them to SI with `simnet.units`. Any error becomes a `ScenarioError` whose
one-line message names the file, the dotted field path and the bad value.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .units import UnitError, parse_bandwidth, parse_time

__all__ = ["Scenario", "ScenarioError", "load", "loads", "expand_sweep", "Variant", "dump"]

Quantity = Union[str, float, int]


class ScenarioError(ValueError):
    """Bad scenario input; `str(err)` is the one line shown to the user."""


def _check_unit(parse, value):
    """Run a units parser for validation only; the message loses its field prefix because
    pydantic adds the full dotted path."""
    if value is None:
        return value
    try:
        parse(value, "")
    except UnitError as err:
        raise ValueError(str(err).removeprefix(": ")) from None
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Optimizer(_Strict):
    name: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.1, gt=0, description="learning rate")
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)


class Workload(_Strict):
    model: str = Field("mlp", description="model from the zoo: mlp, cnn, resnet_small, char_lstm, "
                                           "alexnet, vgg19, resnet50, resnet152")
    dataset: str = Field("digits", description="offline dataset: digits, fashion-mnist, fortunes, synthetic")
    dataset_path: Optional[str] = Field(None, description="where the dataset's files are (optional)")
    dataset_options: dict[str, Any] = Field(default_factory=dict,
                                            description="e.g. synthetic: {image_size: 224, samples: 64}")
    batch_size: int = Field(32, ge=1, description="samples per worker per iteration")
    hidden: Optional[list[int]] = Field(None, description="mlp: hidden layer widths (default [256, 256])")
    arch: dict[str, Any] = Field(default_factory=dict, description="the model's architecture parameters")
    batched: Optional[bool] = Field(None, description="K workers' gradients in one vmap call "
                                                      "(default: where the model allows; on CPU not for convolutions)")
    optimizer: Optimizer = Optimizer()
    device: Optional[str] = Field(None, description="torch device; default CUDA when present")

    @model_validator(mode="after")
    def _known_model_and_dataset(self):
        from .workload import datasets, models  # torch: imported only when validating

        if self.model not in models.names():
            raise ValueError(f"workload.model: unknown model {self.model!r}; known: "
                             f"{', '.join(models.names())}")
        if self.dataset not in datasets.names():
            raise ValueError(f"workload.dataset: unknown dataset {self.dataset!r}; known: "
                             f"{', '.join(datasets.names())}")
        accepted = models.arch_params(self.model)
        for key in self.arch_params():
            if key not in accepted:
                raise ValueError(f"workload.arch.{key}: model {self.model!r} takes "
                                 f"{', '.join(accepted) or 'no parameters'}")
        if self.hidden is not None and self.model != "mlp":
            raise ValueError("workload.hidden: only the mlp has hidden widths (use workload.arch)")
        return self

    def arch_params(self) -> dict[str, Any]:
        """Architecture parameters for build_model (`hidden` is the mlp's shorthand)."""
        params = dict(self.arch)
        if self.model == "mlp":
            params.setdefault("hidden", self.hidden if self.hidden is not None else [256, 256])
        return params


TOPOLOGY_KINDS = ("star", "ring", "torus2d", "leaf_spine", "fat_tree", "hierarchical",
                  "graphml", "json")
# Kinds whose size is the cluster's worker count; the others define their workers themselves.
_SIZED_BY_WORKERS = {"star", "ring", "torus2d", "leaf_spine", "fat_tree"}


class Topology(_Strict):
    """The network: one of TOPOLOGY_KINDS and the keys that kind reads (see the README)."""

    kind: Literal[TOPOLOGY_KINDS] = "star"
    bandwidth: Quantity = Field("10 Gbit/s", description="per link and direction, e.g. '10 Gbit/s'")
    latency: Quantity = Field("5 us", description="per link, e.g. '5 us'")
    servers: Optional[int] = Field(None, ge=0, description="parameter-server shards (collective: ps)")
    server_bandwidth: Optional[Quantity] = Field(None, description="server links; default bandwidth")
    oversubscription: Optional[float] = Field(None, ge=1, description="leaf_spine/fat_tree: down:up ratio")
    uplink_bandwidth: Optional[Quantity] = Field(None, description="leaf_spine/fat_tree: switch uplinks")
    uplink_latency: Optional[Quantity] = Field(None, description="leaf_spine/fat_tree: switch uplinks")
    workers_per_leaf: Optional[int] = Field(None, ge=1, description="leaf_spine: hosts per leaf")
    spines: Optional[int] = Field(None, ge=1, description="leaf_spine: spine switches")
    k: Optional[int] = Field(None, ge=2, description="fat_tree: switch radix (even)")
    rows: Optional[int] = Field(None, ge=1, description="torus2d: rows")
    cols: Optional[int] = Field(None, ge=1, description="torus2d: columns")
    hosts: Optional[int] = Field(None, ge=1, description="hierarchical: hosts")
    gpus_per_host: Optional[int] = Field(None, ge=1, description="hierarchical: GPUs per host")
    intra_bandwidth: Optional[Quantity] = Field(None, description="hierarchical: NVLink/PCIe per GPU")
    intra_latency: Optional[Quantity] = Field(None, description="hierarchical: intra-host latency")
    nics_per_host: Optional[int] = Field(None, ge=1, description="hierarchical: NICs the GPUs share")
    pcie_bandwidth: Optional[Quantity] = Field(None, description="hierarchical: GPU-to-NIC PCIe")
    path: Optional[str] = Field(None, description="graphml/json: file with the graph")

    @field_validator("bandwidth", "server_bandwidth", "uplink_bandwidth", "intra_bandwidth",
                     "pcie_bandwidth")
    @classmethod
    def _bandwidth(cls, v):
        return _check_unit(parse_bandwidth, v)

    @field_validator("latency", "uplink_latency", "intra_latency")
    @classmethod
    def _latency(cls, v):
        return _check_unit(parse_time, v)

    def network_spec(self, workers: int) -> dict:
        """The dict simnet.network.build_topology takes (unit strings are parsed there)."""
        spec = self.model_dump(exclude_none=True)
        if self.kind in _SIZED_BY_WORKERS:
            spec["workers"] = workers
        return spec


class Compute(_Strict):
    """One worker's forward + backward time per iteration.

    measured: timed on this machine's device (pinned as `fixed` in scenario.resolved.yaml);
    fixed: `seconds`; throughput: batch_size / `samples_per_s`; flops: the model's FLOPs per
    sample (counted by torch) x batch_size / (peak FLOP/s of `gpu` in `precision` x
    `efficiency`), the result pinned in `seconds`.
    """

    kind: Literal["measured", "fixed", "throughput", "flops"] = "measured"
    seconds: Optional[float] = Field(None, gt=0, description="fixed (or pinned flops): seconds")
    samples_per_s: Optional[float] = Field(None, gt=0, description="throughput: samples/s")
    gpu: Optional[str] = Field(None, description="flops: K80, V100, A100 or H100")
    precision: Literal["fp32", "tf32", "fp16"] = Field("fp32", description="flops: math precision")
    efficiency: float = Field(0.4, gt=0, le=1, description="flops: achieved / peak FLOP/s")

    @model_validator(mode="after")
    def _needs_figure(self):
        if self.kind == "fixed" and self.seconds is None:
            raise ValueError("compute kind 'fixed' needs 'seconds'")
        if self.kind == "throughput" and self.samples_per_s is None:
            raise ValueError("compute kind 'throughput' needs 'samples_per_s'")
        if self.kind == "flops":
            from .workload import gpus

            if self.gpu is None:
                raise ValueError("compute kind 'flops' needs 'gpu'")
            if self.gpu.strip().upper() not in gpus.names():
                raise ValueError(f"unknown gpu {self.gpu!r}; known: {', '.join(gpus.names())}")
        return self


class Stragglers(_Strict):
    kind: Literal["none", "persistent", "lognormal", "exponential", "pareto"] = "none"
    sigma: Optional[float] = Field(None, gt=0, description="lognormal: sigma of log slowdown")
    mean: Optional[float] = Field(None, gt=0, description="exponential: mean extra slowdown")
    alpha: Optional[float] = Field(None, gt=0, description="pareto: tail index")
    workers: Optional[list[int]] = Field(None, description="persistent: slow worker ranks")
    slowdown: Optional[float] = Field(None, ge=1, description="persistent: factor >= 1")


class Cluster(_Strict):
    workers: int = Field(8, ge=1, le=4096)
    topology: Topology = Topology()
    compute: Compute = Compute()
    stragglers: Stragglers = Stragglers()

    @model_validator(mode="after")
    def _topology_builds(self):
        from . import network  # torch-free; builds are cached

        try:
            graph = network.build_topology(self.topology.network_spec(self.workers))
        except ValueError as err:
            raise ValueError(f"cluster.{str(err).removeprefix('topology.').join(['topology.', ''])}") from None
        try:
            spec = None if self.stragglers.kind == "none" else self.stragglers.model_dump(exclude_none=True)
            network.straggler_factors(spec, self.workers, 1, 0)
        except ValueError as err:
            raise ValueError(f"cluster.{err}") from None
        found = len(network.workers(graph))
        if found != self.workers:
            raise ValueError(f"cluster.workers: the {self.topology.kind} topology has {found} "
                             f"workers, the scenario says {self.workers}")
        return self


COLLECTIVES = ("auto", "allgather", "ring-allgather", "ps", "ring-allreduce", "tree-allreduce",
               "hierarchical-allreduce")
SUMMING_COLLECTIVES = ("ring-allreduce", "tree-allreduce", "hierarchical-allreduce")


class Communication(_Strict):
    collective: Literal[COLLECTIVES] = Field(
        "auto", description="auto: ring-allreduce for summable payloads, else allgather")
    fidelity: Literal["fluid", "analytic"] = Field(
        "fluid", description="fluid: max-min fair flows; analytic: contention-free closed forms")
    overlap: bool = Field(False, description="send gradient buckets while backward still runs")
    bucket_size_mb: float = Field(25.0, gt=0, description="overlap: DDP bucket size (MB of fp32)")
    backup_workers: int = Field(0, ge=0, description="aggregate only the first K-b gradients")


class Calibration(_Strict):
    """Fitted by `simnet calibrate`: corrections that make predictions match a real cluster."""

    alpha_s: float = Field(0.0, ge=0, description="extra per-message latency (s), half per link")
    bandwidth_factor: float = Field(1.0, gt=0, le=1, description="effective / nominal link rate")
    efficiency: dict[str, float] = Field(default_factory=dict, description="per collective, <= 1")
    overhead_s: dict[str, float] = Field(default_factory=dict, description="per collective call (s)")


class CompressorSpec(BaseModel):
    """`name` plus the method's own parameters (checked by compression.get on load)."""

    model_config = ConfigDict(extra="allow")
    name: str
    label: Optional[str] = Field(None, description="name shown in results; default derived")
    encode_s: Optional[float] = Field(None, ge=0, description="pinned encode time per worker (s)")
    decode_s: Optional[float] = Field(None, ge=0, description="pinned decode time per payload (s)")

    def params(self) -> dict[str, Any]:
        """The method parameters passed to compression.get."""
        return dict(self.model_extra or {})

    def display_name(self) -> str:
        if self.label:
            return self.label
        extras = ",".join(f"{k}={v}" for k, v in self.params().items())
        return f"{self.name}({extras})" if extras else self.name


class Run(_Strict):
    iterations: int = Field(300, ge=1)
    eval_every: int = Field(25, ge=1)
    target_accuracy: Optional[float] = Field(None, gt=0, le=1)


class Scenario(_Strict):
    name: str = "scenario"
    seed: int = Field(0, ge=0)
    workload: Workload = Workload()
    cluster: Cluster = Cluster()
    communication: Communication = Communication()
    compressors: list[CompressorSpec] = Field(default_factory=lambda: [CompressorSpec(name="none")])
    run: Run = Run()
    calibration: Optional[Calibration] = None
    sweep: Optional[dict[str, list[Any]]] = None

    @model_validator(mode="after")
    def _backup_fits(self):
        b = self.communication.backup_workers
        if b >= self.cluster.workers:
            raise ValueError(f"communication.backup_workers: {b} leaves no worker of "
                             f"{self.cluster.workers} to aggregate")
        return self

    @field_validator("compressors")
    @classmethod
    def _known_compressors(cls, specs):
        from . import compression  # imported here: scenario parsing must stay light

        if not specs:
            raise ValueError("list at least one compressor")
        for i, spec in enumerate(specs):
            try:
                compression.get(spec.name, **spec.params())
            except (ValueError, TypeError) as err:
                raise ValueError(f"compressors.{i}: {err}") from None
        labels = [s.display_name() for s in specs]
        if len(set(labels)) != len(labels):
            raise ValueError(f"two compressors share a name {labels}; give them a 'label'")
        return specs


def _format_error(source: str, err: ValidationError) -> str:
    first = err.errors()[0]
    path = ".".join(str(p) for p in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    value = first.get("input")
    if first["type"] == "extra_forbidden":
        return f"{source}: {path}: unknown key (value {value!r})"
    head = msg.split(":", 1)[0]
    if "." in head and " " not in head:  # a validator that names its own dotted path
        return f"{source}: {msg}"
    shown = "" if isinstance(value, dict) or repr(value) in msg else f" (got {value!r})"
    return f"{source}: {path}: {msg}{shown}"


def loads(data: dict, source: str = "<scenario>") -> Scenario:
    """Validate a parsed YAML mapping; errors become ScenarioError naming the field."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise ScenarioError(_format_error(source, err)) from None
    except UnitError as err:
        raise ScenarioError(f"{source}: {err}") from None


def load(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ScenarioError(f"{path}: cannot read scenario file ({err.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ScenarioError(f"{path}:{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    return loads(data, str(path))


def dump(scenario: Scenario) -> str:
    """YAML text of a scenario with every default filled in."""
    data = scenario.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False)


class Variant(BaseModel):
    """One point of a sweep: its label and the fully resolved scenario."""

    name: str
    scenario: Scenario


def _set_path(data: dict, dotted: str, value: Any, source: str) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ScenarioError(f"{source}: sweep.{dotted}: {key!r} is not a section")
    node[keys[-1]] = value


def expand_sweep(scenario: Scenario, source: str = "<scenario>") -> list[Variant]:
    """The Cartesian product of the sweep axes, each point validated; no sweep -> one 'base'."""
    if not scenario.sweep:
        return [Variant(name="base", scenario=scenario)]
    base = scenario.model_dump(mode="json", exclude_none=True)
    base.pop("sweep")
    axes = list(scenario.sweep.items())
    for axis, values in axes:
        if not values:
            raise ScenarioError(f"{source}: sweep.{axis}: needs at least one value")
    variants = []
    for combo in itertools.product(*(values for _, values in axes)):
        data = copy.deepcopy(base)
        for (axis, _), value in zip(axes, combo):
            _set_path(data, axis, value, source)
        name = ", ".join(f"{axis.split('.')[-1]}={value}" for (axis, _), value in zip(axes, combo))
        variants.append(Variant(name=name, scenario=loads(data, f"{source} (sweep {name})")))
    return variants
