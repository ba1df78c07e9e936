"""Distributed collection on Ray: (model, prompt shard) tasks written to a sharded atlas folder.

    from motif_widgets import Atlas, distributed
    distributed.collect_atlas(["smollm2-135m", "gemma-3-270m"], prompts, "out/two", workers=2)
    atlas = Atlas.load("out/two")          # the shards of every model, merged

A sharded atlas folder holds ``plan.json`` (the prompts, the settings and, per model, which
prompts each shard holds) and ``shards/<model>/<k>/``, each an ordinary saved atlas
(:mod:`motif_widgets.store`: atomic, checksummed) of one model on one shard of prompts.

How the work runs:

- **Plan.** One Ray task per model loads it once, tokenizes every prompt and returns the
  lengths; a model no worker can load fails here, before any shard is computed. Shards are
  consecutive slices of the prompts sorted longest first (the order of
  :func:`~motif_widgets.collect.collect_from_model`), each a whole number of batches, so
  every forward pass sees exactly the batch a single-process run would: merged shards are
  bit-identical to ``Atlas.from_model`` on the same prompts and batch size.
- **Run.** Each worker is a Ray actor that loads its model once (a GPU actor when the
  cluster has GPUs) and streams its shards through the same collector as a single-process
  run, writing each finished shard into the folder (so workers need the folder on a shared
  file system). Ray restarts a worker that dies and reruns its shard (``max_retries``).
- **Resume.** A rerun on the same folder skips every shard already written (and verified by
  its checksums); a folder planned for other prompts or settings is refused before any work.

Models are named by :func:`~motif_widgets.models.load_model` name or given as picklable
factories (a module-level function returning a model, or ``(model, tokenizer)``); model
objects are never shipped. Requires ``pip install ray``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import time
import uuid
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

from ._checks import check_choice, check_float, check_int
from .atlas_data import AtlasData, take_columns
from .collect import DEFAULT_THUMBNAIL_TOKENS, DEFAULT_THUMBNAILS, pick_thumbnail_prompts
from .prompts import Prompt, as_prompts

PLAN = "plan.json"
SHARDS = "shards"
FORMAT = "motif-widgets-sharded-atlas"
FORMAT_VERSION = 1
DTYPES = ("float64", "float32")


# ---------------------------------------------------------------------------- models
@dataclass(frozen=True)
class ModelSpec:
    """How a worker obtains one model: a load_model name or a picklable factory."""

    name: str  # the head-id prefix
    loader: str | Callable
    backend: str = "bridge"

    @property
    def loader_label(self) -> str:
        """The loader as recorded in plan.json: a rerun must name the same one."""
        return self.loader if isinstance(self.loader, str) else f"factory {_callable_label(self.loader)}"


def _callable_label(f) -> str:
    if isinstance(f, functools.partial):
        arguments = [repr(a) for a in f.args] + [f"{k}={v!r}" for k, v in sorted(f.keywords.items())]
        return f"{_callable_label(f.func)}({', '.join(arguments)})"
    return f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', type(f).__qualname__)}"


def _model_specs(models, backend: str) -> list[ModelSpec]:
    """models as ModelSpecs, checked in the driver (ValueError / TypeError naming the model)."""
    import torch

    from .models import PRETRAINED, TOY_MODELS

    if isinstance(models, (str, ModelSpec)) or callable(models):
        models = [models]
    items = list(models.items()) if isinstance(models, Mapping) else [(None, m) for m in models]
    if not items:
        raise ValueError("models: give at least one model name or factory")
    specs = []
    for name, m in items:
        if isinstance(m, ModelSpec):
            specs.append(m)
            continue
        if isinstance(m, torch.nn.Module):
            raise TypeError(
                f"models: got a {type(m).__name__} object; workers load their own model: give its load_model "
                "name (e.g. 'smollm2-135m') or a picklable factory function that returns it"
            )
        if isinstance(m, str):
            if m not in PRETRAINED and m not in TOY_MODELS:
                raise ValueError(f"models: unknown model {m!r}; available: {sorted(PRETRAINED) + sorted(TOY_MODELS)}")
            if m in PRETRAINED and importlib.util.find_spec(PRETRAINED[m].package) is None:
                raise ValueError(f"models: {m!r} needs the package {PRETRAINED[m].package!r}: {PRETRAINED[m].install}")
            specs.append(ModelSpec(name or m, m, backend))
        elif callable(m):
            if name is None:
                raise ValueError("models: give factories as {name: factory} so their heads have a model name")
            from ray import cloudpickle

            try:
                cloudpickle.dumps(m)
            except Exception as e:  # noqa: BLE001 - any pickling failure means the same to the user
                raise TypeError(f"models: the factory of {name!r} cannot be pickled for the workers: {e}") from None
            specs.append(ModelSpec(name, m, backend))
        else:
            raise TypeError(f"models: expected load_model names or factories, got {type(m).__name__}")
    names = [s.name for s in specs]
    bad = [n for n in names if not isinstance(n, str) or not n or ":" in n or "/" in n]
    if bad:
        raise ValueError(f"models: model names must be non-empty, without ':' or '/', got {bad}")
    if len(set(names)) != len(names):
        raise ValueError(f"models: a model name occurs twice ({names})")
    return specs


def _load(spec: ModelSpec, device: str):
    """(model, tokenizer or None) on `device`, in a worker."""
    if isinstance(spec.loader, str):
        from .models import load_model

        return load_model(spec.loader, backend=spec.backend, device=device), None
    made = spec.loader()
    model, tokenizer = made if isinstance(made, tuple) else (made, None)
    if device != "cpu" and hasattr(model, "to"):
        model = model.to(device)
    return model, tokenizer


def _worker_device() -> str:
    import ray

    return "cuda" if ray.get_gpu_ids() else "cpu"


# ---------------------------------------------------------------------------- plan
@dataclass
class Plan:
    """The contents of plan.json: what a sharded folder was (and is to be) computed on."""

    prompts: list[Prompt]
    settings: dict
    config: dict
    models: dict[str, dict] = field(default_factory=dict)  # name -> {"loader", "n_layers", "n_heads", "shards"}

    def doc(self) -> dict:
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "prompts": [asdict(p) for p in self.prompts],
            "settings": self.settings, "config": self.config, "models": self.models,
            "model_order": list(self.models),  # JSON objects are stored with sorted keys
        }

    @classmethod
    def from_doc(cls, doc: dict) -> "Plan":
        prompts = [
            Prompt(**{**p, "token_ids": tuple(p["token_ids"]) if p.get("token_ids") is not None else None})
            for p in doc["prompts"]
        ]
        models = {name: doc["models"][name] for name in doc["model_order"]}
        return cls(prompts, doc["settings"], doc["config"], models)


def _write_plan(folder: Path, plan: Plan) -> None:
    """plan.json with a checksum of itself, replaced atomically."""
    from .store import _canonical, _fsync_dir, _write_bytes

    doc = plan.doc()
    doc["checksum"] = hashlib.sha256(_canonical(doc)).hexdigest()
    tmp = folder / f"{PLAN}.tmp-{uuid.uuid4().hex[:8]}"
    _write_bytes(tmp, _canonical(doc))
    os.replace(tmp, folder / PLAN)
    _fsync_dir(folder)


def read_plan(folder: str | Path) -> Plan:
    """The plan of a sharded atlas folder (AtlasFileError when missing or damaged)."""
    from .store import AtlasFileError, _canonical

    path = Path(folder) / PLAN
    try:
        doc = json.loads(path.read_bytes())
        stated = doc.pop("checksum")
        ok = hashlib.sha256(_canonical(doc)).hexdigest() == stated
    except FileNotFoundError:
        raise AtlasFileError(f"{folder} is not a sharded atlas (no {PLAN})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise AtlasFileError(f"sharded atlas {folder} is damaged: {PLAN} cannot be read ({type(e).__name__})") from None
    if not ok:
        raise AtlasFileError(f"sharded atlas {folder} is damaged: {PLAN} fails its checksum")
    if doc.get("format") != FORMAT or doc.get("format_version") != FORMAT_VERSION:
        raise AtlasFileError(f"{folder}: {doc.get('format')!r} v{doc.get('format_version')} is not {FORMAT!r} v{FORMAT_VERSION}")
    return Plan.from_doc(doc)


def _check_same_work(folder: Path, old: Plan, new: Plan) -> None:
    """ValueError naming what differs when a folder was planned for other prompts or settings."""
    if old.prompts != new.prompts:
        old_ids, new_ids = [p.id for p in old.prompts], [p.id for p in new.prompts]
        missing, extra = sorted(set(old_ids) - set(new_ids)), sorted(set(new_ids) - set(old_ids))
        raise ValueError(
            f"folder {folder} holds shards of a different prompt set ({len(old_ids)} prompts there, {len(new_ids)} "
            f"here; missing {missing[:3]}, new {extra[:3]}, or the same ids with other content); "
            "choose a new folder"
        )
    for key in sorted(set(old.settings) | set(new.settings)):
        if old.settings.get(key) != new.settings.get(key):
            raise ValueError(
                f"folder {folder} was computed with {key}={old.settings.get(key)!r}, this run asks for "
                f"{new.settings.get(key)!r}; choose a new folder or the same settings"
            )
    if old.config != new.config:
        raise ValueError(f"folder {folder} was planned with atlas config {old.config}, this run gives {new.config}")


def _shards_of(lengths: Sequence[int], batch_size: int, shard_size: int) -> list[list[int]]:
    """Prompt indices of each shard: consecutive slices of the longest-first order."""
    order = sorted(range(len(lengths)), key=lambda k: -lengths[k])  # stable, as collect_from_model
    return [order[s : s + shard_size] for s in range(0, len(order), shard_size)]


def shard_folder(folder: str | Path, model: str, shard: int) -> Path:
    return Path(folder) / SHARDS / model / f"{shard:05d}"


def _finished(path: Path, prompt_ids: list[str], revisions: dict) -> bool:
    """Whether `path` holds a complete, undamaged shard of these prompts."""
    from .store import AtlasFileError, load_atlas

    if not (path / "manifest.json").exists():
        return False
    try:
        data, _ = load_atlas(path, lazy=True)  # checksums verified; the tables stay on disk
    except AtlasFileError as e:
        warnings.warn(f"recomputing shard {path}: {e}", stacklevel=3)
        return False
    return data.prompt_ids == prompt_ids and data.feature_revisions == revisions


# ---------------------------------------------------------------------------- workers
def _plan_model(spec: ModelSpec, prompts: list[Prompt], max_tokens, prepend_bos: bool) -> dict:
    """(In a Ray task) load the model once and return its geometry and prompt lengths."""
    from .sources import source_for

    model, tokenizer = _load(spec, _worker_device())
    source = source_for(model, tokenizer=tokenizer, name=spec.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # truncation is reported by the shard runs
        tokenized = source.tokenize(prompts, prepend_bos=prepend_bos, max_tokens=max_tokens)
    return {"n_layers": source.n_layers, "n_heads": source.n_heads, "lengths": [len(t.ids) for t in tokenized]}


class ShardWorker:
    """A Ray actor: loads one model once, then collects shards of prompts into the folder."""

    def __init__(self, spec: ModelSpec, settings: dict, folder: str):
        import torch

        from .sources import source_for

        self.settings, self.folder, self.name = settings, folder, spec.name
        model, tokenizer = _load(spec, _worker_device())
        self.source = source_for(model, tokenizer=tokenizer, name=spec.name)
        self.dtype = getattr(torch, settings["dtype"])

    def run_shard(self, shard: int, prompts: list[Prompt], thumbnail_ids: list[str]) -> dict:
        """Collect one shard and save it atomically; returns {"shard", "seconds", "pid"}."""
        from .collect import collect_from_model

        t0 = time.perf_counter()
        s = self.settings
        data = collect_from_model(
            self.source, prompts, s["feature_sets"], batch_size=s["batch_size"], max_tokens=s["max_tokens"],
            prepend_bos=s["prepend_bos"], thumbnails=thumbnail_ids, thumbnail_tokens=s["thumbnail_tokens"],
            dtype=self.dtype, progress=False,
        )
        path = shard_folder(self.folder, self.name, shard)
        if path.exists() and not (path / "manifest.json").exists():
            shutil.rmtree(path)  # the partial files of a write that died before its first manifest
        data.save(path, overwrite=True)
        return {"shard": shard, "seconds": time.perf_counter() - t0, "pid": os.getpid()}


# ---------------------------------------------------------------------------- driver
@dataclass
class CollectReport:
    """What a collect_atlas run did.

    Attributes:
        seconds: the whole call; connect_seconds: starting / joining the cluster;
        plan_seconds: loading each new model once and tokenizing (first run only);
        shard_seconds: {model: [seconds each shard computed here took in its worker]}.
    """

    folder: Path
    shards_total: int
    shards_run: int
    shards_skipped: int
    seconds: float
    connect_seconds: float
    plan_seconds: float
    shard_seconds: dict[str, list[float]]

    def __str__(self) -> str:
        return (
            f"{self.shards_run} of {self.shards_total} shards computed ({self.shards_skipped} already finished) "
            f"in {self.seconds:.1f} s (cluster {self.connect_seconds:.1f} s, planning {self.plan_seconds:.1f} s); "
            f"folder {self.folder}"
        )


def check_address(address: str, timeout: float = 5.0) -> None:
    """ConnectionError unless something answers at a cluster address "host:port" or
    "ray://host:port" within `timeout` seconds ("auto" and "local" are left to Ray)."""
    import socket

    if not isinstance(address, str) or not address:
        raise ValueError(f"address must be a Ray cluster address such as 'auto' or 'host:6379', got {address!r}")
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"address must look like host:port or ray://host:port, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(f"no Ray cluster answers at {address!r} ({e.strerror or e})") from None


def _connect(address: str | None, workers: int | None):
    """ray.init on a local cluster (address None) or an existing one; clear errors."""
    try:
        import ray
    except ImportError:
        raise ImportError("distributed collection needs Ray: pip install ray") from None
    if ray.is_initialized():
        return ray
    if address is not None:
        check_address(address)
    try:
        if address is None:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, TimeoutError, ValueError) as e:
        where = "could not start a local Ray cluster" if address is None else f"no Ray cluster answers at {address!r}"
        raise ConnectionError(f"address: {where} ({type(e).__name__}: {e})") from None
    return ray


def collect_atlas(
    models,
    prompts=None,
    folder: str | Path = "out/sharded",
    *,
    feature_sets: Sequence[str] = ("motifs",),
    batch_size: int = 8,
    max_tokens: int | None = 128,
    prepend_bos: bool = True,
    thumbnails: int | str | Sequence[str] = DEFAULT_THUMBNAILS,
    thumbnail_tokens: int = DEFAULT_THUMBNAIL_TOKENS,
    dtype: str = "float64",
    shard_size: int | None = None,
    workers: int | None = None,
    address: str | None = None,
    num_gpus: float | None = None,
    cpus_per_worker: float = 1,
    backend: str = "bridge",
    max_retries: int = 3,
    progress: bool = True,
    **config,
) -> CollectReport:
    """Collect the atlases of several models on a Ray cluster into a sharded folder.

    Args:
        models: load_model names, or {name: name or picklable factory}; a factory returns a
            model or (model, tokenizer). Names become head-id prefixes.
        prompts: as for Atlas.from_model (None = the default set); the same for every model.
        folder: the sharded atlas folder: new, or one this function wrote for the same
            prompts and settings (then finished shards are skipped: resume).
        shard_size: prompts per shard, a multiple of batch_size (default 4 batches).
        workers: actors per model at once (default: the cluster's CPUs / cpus_per_worker,
            or its GPUs / num_gpus when GPUs are used).
        address: an existing Ray cluster ("auto", "ray://host:10001", ...); None starts a
            local one (or reuses ray.init() already called in this process).
        num_gpus: GPUs per actor (default 1 when the cluster has GPUs, else 0).
        max_retries: restarts of a dead worker and reruns of its shard.
        **config: AtlasConfig fields stored for Atlas.load (n_components, metric, ...).
    Other arguments as for Atlas.from_model. Returns a CollectReport; read the result with
    ``Atlas.load(folder)``. Everything is checked before the cluster is contacted.
    """
    from .atlas import AtlasConfig
    from .features.registry import get_feature_set
    from .store import AtlasFileError

    specs = _model_specs(models, check_choice("backend", backend, ("bridge", "hooked")))
    prompts = as_prompts(prompts)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    shard_size = check_int("shard_size", shard_size if shard_size is not None else 4 * batch_size, minimum=1)
    if shard_size % batch_size:
        raise ValueError(f"shard_size must be a multiple of batch_size ({batch_size}) so shards match a single run, got {shard_size}")
    if max_tokens is not None:
        check_int("max_tokens", max_tokens, minimum=1)
    if workers is not None:
        check_int("workers", workers, minimum=1)
    max_retries = check_int("max_retries", max_retries, minimum=0)
    cpus_per_worker = check_float("cpus_per_worker", cpus_per_worker, minimum=0.0)
    dtype = check_choice("dtype", str(dtype).replace("torch.", ""), DTYPES)
    sets = list(dict.fromkeys(get_feature_set(s).name for s in ([feature_sets] if isinstance(feature_sets, str) else feature_sets)))
    if not sets:
        raise ValueError("feature_sets: give at least one feature set")
    atlas_config = asdict(AtlasConfig(feature_set=sets[0], **config))
    thumb_ids = [prompts[k].id for k in pick_thumbnail_prompts(prompts, thumbnails)]
    settings = {
        "feature_sets": sets, "feature_revisions": {s: get_feature_set(s).revision for s in sets},
        "batch_size": batch_size, "shard_size": shard_size, "max_tokens": max_tokens, "prepend_bos": bool(prepend_bos),
        "dtype": dtype, "thumbnail_ids": thumb_ids,
        "thumbnail_tokens": check_int("thumbnail_tokens", thumbnail_tokens, minimum=1),
    }
    folder = Path(folder)
    plan = Plan(prompts, settings, atlas_config)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"folder {folder} is a file; expected a folder")
    if (folder / PLAN).exists():
        old = read_plan(folder)
        _check_same_work(folder, old, plan)
        for spec in specs:
            known = old.models.get(spec.name)
            if known is not None and known["loader"] != spec.loader_label:
                raise ValueError(
                    f"folder {folder} holds model {spec.name!r} loaded by {known['loader']}, this run gives "
                    f"{spec.loader_label}; use another model name or folder"
                )
        plan.models = old.models
    elif folder.exists() and any(not e.name.startswith(f"{PLAN}.tmp-") for e in folder.iterdir()):
        raise ValueError(f"folder {folder} holds files but no {PLAN}; choose a new or empty folder")

    t_start = time.perf_counter()
    ray = _connect(address, workers)
    t_connected = time.perf_counter()
    gpus = ray.cluster_resources().get("GPU", 0)
    num_gpus = (1 if gpus else 0) if num_gpus is None else num_gpus
    cpus = ray.cluster_resources().get("CPU", 1)
    fit = max(1, min(int(gpus // num_gpus) if num_gpus else 1 << 30, int(cpus // cpus_per_worker) if cpus_per_worker else 1 << 30))
    if workers is not None and workers > fit:  # actors beyond the cluster's resources would wait forever
        warnings.warn(f"workers={workers}: the cluster holds {fit} workers of {cpus_per_worker} CPU / {num_gpus} GPU; using {fit}",
                      stacklevel=2)
    workers = min(workers or fit, fit)
    folder.mkdir(parents=True, exist_ok=True)

    # plan every new model first: a model no worker can load fails before any shard runs
    new = [s for s in specs if s.name not in plan.models]
    plan_task = ray.remote(_plan_model).options(num_cpus=cpus_per_worker, num_gpus=num_gpus, max_retries=max_retries)
    refs = [plan_task.remote(s, prompts, max_tokens, bool(prepend_bos)) for s in new]
    for spec, ref in zip(new, refs):
        try:
            facts = ray.get(ref)
        except Exception as e:  # noqa: BLE001 - a worker's failure arrives wrapped by Ray
            raise RuntimeError(f"model {spec.name!r} ({spec.loader_label}) could not be loaded by a worker: {_cause(e)}") from None
        plan.models[spec.name] = {
            "loader": spec.loader_label, "n_layers": facts["n_layers"], "n_heads": facts["n_heads"],
            "shards": _shards_of(facts["lengths"], batch_size, shard_size),
        }
    _write_plan(folder, plan)
    plan_seconds = time.perf_counter() - t_connected

    actor_class = ray.remote(ShardWorker).options(
        num_cpus=cpus_per_worker, num_gpus=num_gpus, max_restarts=max_retries, max_task_retries=max_retries
    )
    total = run = 0
    shard_seconds: dict[str, list[float]] = {}
    for spec in specs:
        shards = plan.models[spec.name]["shards"]
        total += len(shards)
        todo = [
            k for k, idx in enumerate(shards)
            if not _finished(shard_folder(folder, spec.name, k), [prompts[i].id for i in idx], settings["feature_revisions"])
        ]
        shard_seconds[spec.name] = []
        if not todo:
            continue
        actors = [actor_class.remote(spec, settings, str(folder.resolve())) for _ in range(min(workers, len(todo)))]
        pool = ray.util.ActorPool(actors)
        jobs = []
        for k in todo:
            shard_prompts = [prompts[i] for i in shards[k]]
            ids = [p.id for p in shard_prompts]
            jobs.append((k, shard_prompts, [t for t in thumb_ids if t in ids]))
        try:
            done = pool.map_unordered(lambda a, job: a.run_shard.remote(*job), jobs)
            for result in _progress(done, len(jobs), f"{spec.name} shards", progress):
                shard_seconds[spec.name].append(result["seconds"])
                run += 1
        except Exception as e:  # noqa: BLE001
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            raise RuntimeError(
                f"model {spec.name!r}: a shard failed after {max_retries} retries ({_cause(e)}); "
                f"finished shards are kept in {folder}, rerun to resume"
            ) from None
        finally:
            for a in actors:
                ray.kill(a)
    try:
        _checked_shards(folder, plan, lazy=True)  # proves the folder complete and consistent
    except AtlasFileError as e:
        raise RuntimeError(f"the run finished but {folder} does not load: {e}") from e
    return CollectReport(
        folder, total, run, total - run, time.perf_counter() - t_start, t_connected - t_start, plan_seconds, shard_seconds
    )


def _cause(error: BaseException) -> str:
    """The worker's own exception of a Ray error, in one line."""
    cause = getattr(error, "cause", None) or error
    return f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1] if str(cause).strip() else ''}"


def _progress(items, total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(items, total=total, desc=desc, unit="shard", disable=not enabled)


# ---------------------------------------------------------------------------- load
def is_sharded(folder: str | Path) -> bool:
    return (Path(folder) / PLAN).exists()


def load_sharded(folder: str | Path, plan: Plan | None = None, lazy: bool | None = False) -> tuple[AtlasData, dict]:
    """(data, config) of a sharded folder: each model's shards joined along the prompts,
    in the plan's prompt order, then the models concatenated. AtlasFileError when a shard
    is missing, damaged, or holds other prompts / feature revisions than the plan.

    lazy: leave the shards' features and thumbnails on disk, joined without reading
    (atlas_data.JoinedArray; True), read them (False) or decide by the whole atlas's size
    (None: lazy above LARGE_ATLAS_HEADS heads).
    """
    from .atlas_data import LARGE_ATLAS_HEADS

    folder = Path(folder)
    plan = plan or read_plan(folder)
    if lazy is None:
        lazy = sum(m["n_layers"] * m["n_heads"] for m in plan.models.values()) > LARGE_ATLAS_HEADS
    ids = [p.id for p in plan.prompts]
    per_model = [AtlasData.concat_prompts(parts).take_prompts(ids) for parts in _checked_shards(folder, plan, lazy).values()]
    data = per_model[0] if len(per_model) == 1 else AtlasData.concat(per_model)
    # thumbnails in the order a single run picks them
    slot = {data.prompt_ids[k]: s for s, k in enumerate(data.thumbnail_prompts)}
    order = [slot[t] for t in plan.settings["thumbnail_ids"] if t in slot]
    meta = {**(per_model[0].meta if len(per_model) == 1 else data.meta), "sharded": {"folder_plan": PLAN}}
    data = replace(
        data, thumbnails=take_columns(data.thumbnails, order), thumbnail_prompts=data.thumbnail_prompts[order], meta=meta
    )
    return data, dict(plan.config)


def _checked_shards(folder: Path, plan: Plan, lazy: bool = False) -> dict[str, list[AtlasData]]:
    """Each model's shards, loaded and checked against the plan (lazy: the checksums and
    metadata are read, the tables stay on disk; how a finished run verifies its folder). AtlasFileError when a shard is missing, damaged, or holds other
    prompts / feature revisions than the plan."""
    from .store import AtlasFileError, load_atlas

    ids = [p.id for p in plan.prompts]
    revisions = plan.settings["feature_revisions"]
    if not plan.models:
        raise AtlasFileError(f"sharded atlas {folder} has no model planned yet; run collect_atlas on it")
    per_model = {}
    for name, entry in plan.models.items():
        parts = []
        for k, idx in enumerate(entry["shards"]):
            path = shard_folder(folder, name, k)
            if not (path / "manifest.json").exists():
                done = sum((shard_folder(folder, name, j) / "manifest.json").exists() for j in range(len(entry["shards"])))
                raise AtlasFileError(
                    f"sharded atlas {folder} is incomplete: model {name!r} has {done} of {len(entry['shards'])} shards "
                    f"(shard {k} missing); rerun distributed.collect_atlas on it to resume"
                )
            data, _ = load_atlas(path, lazy=lazy)
            want = [ids[i] for i in idx]
            if data.prompt_ids != want or list(data.models) != [name]:
                raise AtlasFileError(f"shard {path} holds other prompts or another model than its plan says")
            if data.feature_revisions != revisions:
                raise AtlasFileError(
                    f"shard {path} was computed under feature revisions {data.feature_revisions}, the plan says {revisions}"
                )
            parts.append(data)
        per_model[name] = parts
    return per_model
