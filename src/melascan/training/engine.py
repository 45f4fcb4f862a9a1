"""The training loop: one ``RunConfig`` in, one run folder out.

``train(cfg, out_dir)`` writes the run folder's training files (config.yaml, data.json,
history.csv, summary.json, train.log, checkpoints/; layout: ``melascan.runfolder``).

AdamW with a per-step schedule (linear warm-up for ``warmup_epochs``, cosine decay
to 0 at ``epochs``), early stopping on validation loss (``patience``), AMP on CUDA,
and DistributedDataParallel when started by ``torchrun`` (``WORLD_SIZE`` > 1);
the same command runs on one CPU. ``train(cfg, out_dir, resume=True)`` continues
from ``checkpoints/last.pt``.

Validation loss is plain cross-entropy whatever the training loss, so early
stopping and runs with different losses are comparable. With a multi-source
manifest it is **source-balanced**: the mean of each source's cross-entropy, so a
large source cannot outvote a small one in early stopping and model selection.
With ``ema_decay`` an exponential moving average of the weights is what is
evaluated, kept as ``best.pt`` and exported (the raw weights ride along for resume).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader

from melascan.data.manifest import read_manifest
from melascan.errors import DataError
from melascan.evaluation import metrics as M
from melascan.inference.classifier import calibrated_probability
from melascan.runfolder import RunFolder
from melascan.training.config import RunConfig
from melascan.training.data import (
    CachedImageDataset,
    load_split,
    make_eval_sampler,
    make_train_sampler,
    normalize_batch,
)
from melascan.training.distributed import Dist, rng_state, seed_everything, set_rng_state, setup_distributed
from melascan.training.losses import build_loss
from melascan.training.heads import AuxiliaryHeads, AuxiliaryTargets, adversary_strength
from melascan.training.models import build_model
from melascan.training.recipes import build_recipe

log = logging.getLogger("melascan.training")

HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "train_f1", "val_loss", "val_acc", "val_f1",
                   "val_auc", "lr", "seconds", "val_by_source")


# ---- schedule, metrics ---------------------------------------------------------------
def warmup_cosine(warmup_steps: int, total_steps: int):
    """LR factor per optimizer step: linear warm-up to 1, then cosine decay to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def classification_metrics(logits: np.ndarray, labels: np.ndarray, sources: np.ndarray | None = None) -> dict:
    """Cross-entropy, accuracy, F1 (malignant positive, argmax) and ROC-AUC (NaN with one class).

    With two or more ``sources``, ``loss`` is the mean of the per-source losses and ``by_source``
    holds each source's loss and AUC (the other keys stay pooled).
    """
    logits_t = torch.as_tensor(logits, dtype=torch.float32)
    labels_t = torch.as_tensor(labels, dtype=torch.long)
    prob = calibrated_probability(logits, 1.0)
    pred = logits.argmax(1)
    out = {
        "loss": float(F.cross_entropy(logits_t, labels_t)),
        "acc": M.accuracy(labels, pred),
        "f1": M.f1(labels, pred),
        "auc": M.roc_auc(labels, prob),
    }
    names = sorted(set(sources.tolist())) if sources is not None else []
    if len(names) > 1:
        by = {}
        for name in names:
            m = sources == name
            by[name] = {"loss": round(float(F.cross_entropy(logits_t[m], labels_t[m])), 5),
                        "auc": round(M.roc_auc(labels[m], prob[m]), 5)}
        out["loss"] = float(np.mean([v["loss"] for v in by.values()]))
        out["by_source"] = by
    return out


def gather(world_size: int, *arrays: np.ndarray) -> list[np.ndarray]:
    """Concatenate each array over all ranks (identity with one process)."""
    if world_size == 1:
        return list(arrays)
    parts: list = [None] * world_size
    dist.all_gather_object(parts, arrays)
    return [np.concatenate([p[i] for p in parts]) for i in range(len(arrays))]


# ---- one epoch -----------------------------------------------------------------------
def _autocast(cfg: RunConfig, device: torch.device):
    enabled = cfg.amp == "on" or (cfg.amp == "auto" and device.type == "cuda")
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=enabled)


def to_model_input(images: torch.Tensor, cfg: RunConfig, device: torch.device) -> torch.Tensor:
    """uint8 batch -> normalised float batch on ``device``, channels-last (faster convolutions)."""
    x = normalize_batch(images.to(device, non_blocking=True), cfg.mean, cfg.std)
    return x.contiguous(memory_format=torch.channels_last)


def train_one_epoch(model, loader, criterion, optimizer, scheduler, scaler, cfg, where: Dist, desc: str,
                    progress: bool = True, ema=None, aux: AuxiliaryTargets | None = None,
                    total_steps: int = 1) -> dict:
    """One pass over the training loader; returns train loss/acc/F1 over all ranks.

    With ``aux`` the model is an ``AuxiliaryHeads`` model and its heads' losses are added;
    the source adversary's reversed gradient ramps up over the run's ``total_steps``
    (``adversary_strength``). Shows a tqdm bar (batches, ETA, loss, lr) on rank 0 unless
    ``progress`` is False.
    """
    from tqdm import tqdm

    model.train()
    losses, logits_all, labels_all = [], [], []
    bar = tqdm(loader, desc=desc, unit="batch", leave=False, disable=not (where.main and progress),
               dynamic_ncols=True)
    for images, labels, index in bar:
        images = to_model_input(images, cfg, where.device)
        labels = labels.to(where.device, non_blocking=True)
        with _autocast(cfg, where.device):
            if aux is None:
                logits = model(images)
                loss = criterion(logits, labels)
            else:
                _unwrap(model).reversal = aux.adversary_weight * adversary_strength(scheduler.last_epoch / total_steps)
                logits, extra = model(images)
                loss = criterion(logits, labels) + aux.loss(extra, index.numpy(), where.device)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        if ema is not None:
            ema.update(_core(model))
        loss_value = loss.item()
        losses.append(loss_value * len(labels))
        logits_all.append(logits.detach().float().cpu().numpy())
        labels_all.append(labels.cpu().numpy())
        bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
    logits_np, labels_np = np.concatenate(logits_all), np.concatenate(labels_all)
    loss_sum, logits_np, labels_np = gather(where.world_size, np.array([sum(losses)]), logits_np, labels_np)
    pred = logits_np.argmax(1)
    return {
        "loss": float(loss_sum.sum() / len(labels_np)),
        "acc": M.accuracy(labels_np, pred),
        "f1": M.f1(labels_np, pred),
        "images": int(len(labels_np)),
    }


@torch.no_grad()
def evaluate(model, loader, cfg, where: Dist, sources: np.ndarray | None = None) -> dict:
    """Validation metrics over the whole split (shards gathered, padding repeats removed);
    ``sources`` (one per image of the split) makes the loss source-balanced."""
    model.eval()
    idx_all, logits_all, labels_all = [], [], []
    for images, labels, index in loader:
        images = to_model_input(images, cfg, where.device)
        with _autocast(cfg, where.device):
            logits = model(images)
        idx_all.append(index.numpy())
        logits_all.append(logits.float().cpu().numpy())
        labels_all.append(labels.numpy())
    idx, logits, labels = gather(where.world_size, *(np.concatenate(a) for a in (idx_all, logits_all, labels_all)))
    order, first = np.unique(idx, return_index=True)
    return classification_metrics(logits[first], labels[first], None if sources is None else sources[order])


# ---- checkpoints ---------------------------------------------------------------------
def _unwrap(model):
    return model.module if hasattr(model, "module") else model


def _core(model):
    """The classifier being trained, without DDP and without auxiliary heads."""
    model = _unwrap(model)
    return model.model if isinstance(model, AuxiliaryHeads) else model


def save_checkpoint(path: Path, **state) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint not found: {path}")
    return torch.load(path, map_location="cpu", weights_only=True)


# ---- run folder ----------------------------------------------------------------------
def _setup_log_file(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    log.addHandler(handler)
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
    return handler


def resolve_config(cfg: RunConfig) -> RunConfig:
    """``cfg`` with mean/std filled in (eda.json or ImageNet) and validated."""
    mean, std, _ = cfg.resolved_mean_std()
    return dataclasses.replace(cfg, mean=mean, std=std).validate()


def train(cfg: RunConfig, out_dir: str | Path, *, resume: bool = False) -> dict:
    """Train ``cfg`` into ``out_dir`` (or continue it from ``checkpoints/last.pt``); return the summary."""
    if cfg.members:
        raise DataError("an ensemble (members) is not trained: `melascan ensemble` builds it from trained runs")
    run = RunFolder(out_dir)
    where = setup_distributed(cfg.device)
    try:
        return _train(cfg, run, where, resume)
    finally:
        if where.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg: RunConfig, run: RunFolder, where: Dist, resume: bool) -> dict:
    mean_source = cfg.resolved_mean_std()[2]
    cfg = resolve_config(cfg)
    seed_everything(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    last_path = run.checkpoints / "last.pt"
    if resume and not last_path.is_file():
        raise DataError(f"cannot resume: {last_path} not found")
    if not resume and last_path.is_file():
        raise DataError(f"{run.path} already holds a run; use --resume {run.path} or another --out")
    handler = None
    if where.main:
        run.checkpoints.mkdir(parents=True, exist_ok=True)
        handler = _setup_log_file(run.log_path)
        run.write_config(cfg)
    try:
        return _fit(cfg, run, where, resume, mean_source)
    finally:
        if handler is not None:
            log.removeHandler(handler)
            handler.close()


def _fit(cfg: RunConfig, run: RunFolder, where: Dist, resume: bool, mean_source: str) -> dict:
    started = time.time()
    ckpt_dir = run.checkpoints
    manifest = read_manifest(cfg.manifest)
    # data: the main process decodes and caches, the others then read the cache
    if where.main:
        splits = {s: load_split(manifest, s, cfg) for s in ("train", "val")}
    where.barrier()
    if not where.main:
        splits = {s: load_split(manifest, s, cfg, build=False) for s in ("train", "val")}
    train_data, val_data = splits["train"], splits["val"]
    if cfg.balance_diagnoses and not any(train_data.diagnoses):
        raise DataError(f"balance_diagnoses needs diagnoses: {cfg.manifest} has no diagnosis column "
                        "(re-run `melascan prepare --base ... --ham ...`)")
    aux = AuxiliaryTargets.for_run(cfg, train_data.diagnoses, train_data.sources)
    if where.main:
        run.write_data({
            "manifest": str(Path(cfg.manifest).resolve()),
            "manifest_sha256": manifest.sha256(),
            "source_root": str(manifest.source_root),
            "mean": cfg.mean, "std": cfg.std, "mean_std_source": mean_source,
            "image_size": cfg.image_size, "color_constancy": cfg.color_constancy, "limit": cfg.limit,
            "class_counts": {s: d.class_counts() for s, d in splits.items()},
            "cache": {s: str(d.cache_path) for s, d in splits.items()},
            **(aux.data_entries() if aux is not None else {}),
        })
    train_set = CachedImageDataset(train_data.pixels, train_data.labels, build_recipe(cfg.recipe))
    val_set = CachedImageDataset(val_data.pixels, val_data.labels)
    train_sampler = make_train_sampler(train_set, train_data.labels, weighted=cfg.weighted_sampling,
                                       seed=cfg.seed, rank=where.rank, world_size=where.world_size,
                                       sources=train_data.sources if cfg.balance_sources else None,
                                       num_samples=cfg.samples_per_epoch, diagnoses=train_data.diagnoses,
                                       diagnosis_balance=cfg.balance_diagnoses)
    per_rank = len(train_sampler)
    loader_args = {"num_workers": cfg.num_workers, "pin_memory": where.device.type == "cuda",
                   "persistent_workers": cfg.num_workers > 0}
    train_loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=train_sampler,
                              drop_last=per_rank > cfg.batch_size, **loader_args)
    val_loader = DataLoader(val_set, batch_size=cfg.batch_size * 2, **loader_args,
                            sampler=make_eval_sampler(val_set, rank=where.rank, world_size=where.world_size))

    model = build_model(cfg)
    if cfg.init_from:  # start from another run's weights (same architecture), e.g. at a larger image size
        try:
            model.load_state_dict(load_checkpoint(cfg.init_from)["model"])
        except (KeyError, RuntimeError) as exc:
            raise DataError(f"init_from {cfg.init_from}: weights do not fit {cfg.model} ({str(exc)[:200]})") from None
    model = model.to(where.device, memory_format=torch.channels_last)
    ema = None
    if cfg.ema_decay is not None:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(model, decay=cfg.ema_decay, use_warmup=True)
    if aux is not None:
        model = aux.build(model).to(where.device)
    if where.world_size > 1:
        device_ids = [where.device.index] if where.device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    criterion = build_loss(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(train_loader)
    warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(warmup_steps, cfg.epochs * steps_per_epoch))
    use_scaler = where.device.type == "cuda" and (cfg.amp == "on" or cfg.amp == "auto")
    scaler = torch.amp.GradScaler(where.device.type, enabled=use_scaler)

    start_epoch, best = 1, {"val_loss": math.inf, "epoch": 0, "bad_epochs": 0, "metrics": {}}
    history: list[dict] = []
    if resume:
        ckpt = load_checkpoint(ckpt_dir / "last.pt")
        try:
            _core(model).load_state_dict(ckpt.get("train_model", ckpt["model"]))
            if aux is not None:
                _unwrap(model).load_head_states(ckpt)
            if ema is not None:
                ema.module.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise DataError(f"{ckpt_dir / 'last.pt'} does not match the config (model changed?): "
                            f"{str(exc)[:200]}") from None
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        start_epoch, best = ckpt["epoch"] + 1, dict(ckpt["best"])
        history = run.read_history(up_to_epoch=ckpt["epoch"])
        started -= (run.read_summary() or {}).get("seconds") or 0.0  # the summary counts every segment
        log.info("resuming %s from epoch %d (best val loss %.4f at epoch %d)",
                 run.path, ckpt["epoch"], best["val_loss"], best["epoch"])
    if where.main:
        run.write_history(history, HISTORY_COLUMNS)
        n_params = sum(p.numel() for p in model.parameters())
        log.info("training %s (%s weights, %.1fM parameters) on %s x%d: %d train / %d val images at %d px, "
                 "%d steps/epoch, recipe %s, loss %s%s", cfg.model, cfg.pretrained, n_params / 1e6,
                 where.device, where.world_size, len(train_set), len(val_set), cfg.image_size, steps_per_epoch,
                 cfg.recipe, cfg.loss, (", class-weighted sampling" if cfg.weighted_sampling else "")
                 + (f", {aux.describe()}" if aux is not None else ""))

    early_stopped, epoch = False, start_epoch - 1
    train_seconds, train_images = 0.0, 0
    if cfg.patience is not None and best["bad_epochs"] >= cfg.patience:
        early_stopped, start_epoch = True, cfg.epochs + 1  # resumed a run that had already stopped
    for epoch in range(start_epoch, cfg.epochs + 1):
        t0 = time.time()
        train_sampler.set_epoch(epoch)
        tr = train_one_epoch(model, train_loader, criterion, optimizer, scheduler, scaler, cfg, where,
                             desc=f"epoch {epoch}/{cfg.epochs}", ema=ema, aux=aux,
                             total_steps=cfg.epochs * steps_per_epoch)
        epoch_train_seconds = time.time() - t0
        train_seconds += epoch_train_seconds
        train_images += tr["images"]
        va = evaluate(_core(model) if ema is None else ema.module, val_loader, cfg, where, val_data.sources)
        seconds = time.time() - t0
        improved = va["loss"] < best["val_loss"]
        if improved:
            best = {"val_loss": va["loss"], "epoch": epoch, "bad_epochs": 0,
                    "metrics": {f"val_{k}": v for k, v in va.items()}}
        else:
            best["bad_epochs"] += 1
        early_stopped = cfg.patience is not None and best["bad_epochs"] >= cfg.patience
        lr = scheduler.get_last_lr()[0]
        row = {"epoch": epoch, "train_loss": tr["loss"], "train_acc": tr["acc"], "train_f1": tr["f1"],
               "val_loss": va["loss"], "val_acc": va["acc"], "val_f1": va["f1"], "val_auc": va["auc"],
               "lr": lr, "seconds": round(seconds, 1),
               "val_by_source": json.dumps(va["by_source"], sort_keys=True) if "by_source" in va else ""}
        history.append(row)
        if where.main:
            log.info("epoch %d/%d  train loss %.4f acc %.3f f1 %.3f | val loss %.4f acc %.3f f1 %.3f auc %.3f"
                     " | lr %.2e | %.0f s (train %.1f img/s)%s", epoch, cfg.epochs, tr["loss"], tr["acc"], tr["f1"],
                     va["loss"], va["acc"], va["f1"], va["auc"], lr, seconds,
                     tr["images"] / max(epoch_train_seconds, 1e-9), "  *best" if improved else "")
            run.write_history(history, HISTORY_COLUMNS)
            state = {"model": (_core(model) if ema is None else ema.module).state_dict(),
                     **({} if ema is None else {"train_model": _core(model).state_dict()}),
                     **(_unwrap(model).head_states() if aux is not None else {}),
                     "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch,
                     "rng": rng_state(), "best": best, "config": cfg.to_dict(), "metrics": row}
            save_checkpoint(ckpt_dir / "last.pt", **state)
            if improved:
                save_checkpoint(ckpt_dir / "best.pt", **state)
            if cfg.checkpoint_every and epoch % cfg.checkpoint_every == 0:
                save_checkpoint(ckpt_dir / f"epoch_{epoch:03d}.pt", **state)
            run.write_summary(_summary(cfg, best, epoch, early_stopped, False,
                                                           time.time() - started, train_images, train_seconds))
        where.barrier()
        if early_stopped:
            if where.main:
                log.info("early stopping: val loss has not improved for %d epochs (best %.4f at epoch %d)",
                         cfg.patience, best["val_loss"], best["epoch"])
            break
    summary = _summary(cfg, best, epoch, early_stopped, True, time.time() - started, train_images, train_seconds)
    if where.main:
        run.write_summary(summary)
        log.info("done: best epoch %d, val loss %.4f, val auc %s -> %s", best["epoch"], best["val_loss"],
                 f"{best['metrics'].get('val_auc', float('nan')):.3f}", run.path)
    return summary


def _summary(cfg, best, epoch, early_stopped, finished, seconds, train_images, train_seconds) -> dict:
    return {
        "model": cfg.model,
        "best_epoch": best["epoch"],
        "stopped_epoch": epoch,
        "early_stopped": bool(early_stopped),
        "finished": finished,
        "best": {"val_loss": best["val_loss"], **best["metrics"]},
        "seconds": round(seconds, 1),
        "train_images_per_second": round(train_images / train_seconds, 2) if train_seconds else None,
    }
