"""Training of the heads on cached encoder features: contrastive (audio, prompt) pairs plus SER.

Every epoch each clip is paired with one of its prompts, drawn afresh, so over the epochs all of a clip's
prompts become training pairs (Dhamyal et al.'s prompt augmentation); with ``prompt_augmentation`` off only the
class-label prompt is used, which is the paper's ablation. A share of the clips is read from a telephone
variant (8 kHz, G.711, packet loss) so the model does not learn the wideband channel.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import trange

from emoscribe.bundle import REFERENCES
from emoscribe.mappings import refuse_unknown_keys
from emoscribe.training.device import mixed_precision
from emoscribe.training.features import FeatureSet
from emoscribe.training.heads import EmotionHeads, HeadConfig, Reference
from emoscribe.training.objective import affect_loss, contrastive_loss, ser_loss
from emoscribe.training.records import EMOTIONS, Record
from emoscribe.training.references import PopulationSampler, ReferenceSampler, fit_priors, population_counts
from emoscribe.training.sampling import Targets, batch_targets, epoch_order

CPU = torch.device("cpu")


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Everything a run depends on besides the data; saved beside its checkpoint."""

    encoder: str = "tiny.en"
    epochs: int = 80
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    ser_weight: float = 1.0
    contrastive_weight: float = 1.0
    label_smoothing: float = 0.1
    prompt_augmentation: bool = True
    telephone_probability: float = 0.5
    d_joint: int = 256
    d_hidden: int = 512
    dropout: float = 0.3
    seed: int = 0
    mixed_precision: bool = True
    """bf16 autocast when training on CUDA; no effect on the CPU."""
    unfreeze_layers: int = 0
    """Top encoder blocks fine-tuned after the heads (see ``emoscribe.training.tuning``); 0: encoder frozen."""
    adapter_rank: int = 0
    """With ``unfreeze_layers``: train rank-``adapter_rank`` adapters (LoRA) on those blocks instead of their
    full weights (see ``emoscribe.training.adapters``); 0 tunes the full weights. Adapters usually want a larger
    ``encoder_learning_rate`` than full weights (e.g. 1e-3 against 5e-5)."""
    attention_pooling: bool = False
    """Pool the top layer's frames with trained attention instead of plain mean and standard deviation."""
    unfreeze_epochs: int = 3
    """Epochs of the fine-tuning stage (each runs the top blocks on every training clip's frames)."""
    encoder_learning_rate: float = 5e-5
    """Of the tuned encoder weights, or of their adapters."""
    head_learning_rate_scale: float = 0.1
    """Heads' learning rate in the fine-tuning stage, relative to ``learning_rate``: they have converged."""
    speaker_normalisation: bool = True
    """Standardise each clip's statistics by its speaker's earlier utterances (``emoscribe.training.references``);
    the daemon keeps those per stream."""
    reference: str = "speaker"
    """What a reference holds: ``speaker``, the stream's own earlier utterances (``[engine]
    speaker_normalisation``), or ``population``, every stream a node hears (``[population]``): in training, the
    row's corpus stands for a deployment's channel and callers (``emoscribe.training.references``)."""
    population_horizon: int = 5000
    """With ``reference = "population"``: the most utterances training assumes a node's moments hold (the
    daemon's default ``[population] horizon``)."""
    max_reference: int = 20
    """Most earlier utterances a reference holds: training draws 0 to this many, and the daemon's running
    moments forget at this horizon."""
    prior_clips: float = 8.0
    """Weight of the population priors in a reference, in utterances."""
    one_emotion_references: float = 0.3
    """Share of training references drawn from one emotion only, as a call's earlier utterances often are."""
    data: tuple[str, ...] = ()
    """Corpus folders trained on together (each with its ``manifest.csv``); ``--data`` adds to them."""
    balanced_sampling: bool = True
    """Draw each epoch's rows so that every corpus, and every speaker within it, weighs the same
    (``emoscribe.training.sampling``); off: each clip once per epoch."""
    affect: bool = True
    """Also train valence and arousal (circumplex targets, arousal-level corpora for arousal alone)."""
    affect_weight: float = 0.5
    """Weight of the arousal/valence likelihood in the objective."""

    def __post_init__(self) -> None:
        if self.adapter_rank < 0 or (self.adapter_rank and not self.unfreeze_layers):
            raise ValueError("adapter_rank must be 0, or positive with unfreeze_layers (the blocks it adapts)")
        if self.max_reference < 1 or self.prior_clips <= 0 or self.population_horizon < 1:
            raise ValueError("max_reference and population_horizon must be at least 1 and prior_clips positive")
        if self.reference not in REFERENCES:
            raise ValueError(f"reference must be one of {', '.join(REFERENCES)}, not {self.reference!r}")

    @property
    def tunes_encoder_top(self) -> bool:
        return self.unfreeze_layers > 0 or self.attention_pooling

    @classmethod
    def from_mapping(cls, data: dict) -> TrainConfig:
        refuse_unknown_keys(cls, data, "training setting(s)")
        if "data" in data:
            data = {**data, "data": tuple(str(d) for d in data["data"])}
        return replace(cls(), **data)


@dataclass(slots=True)
class TextBank:
    """Every prompt text of the corpus with its frozen sentence embedding."""

    texts: list[str]
    embeddings: torch.Tensor
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {text: i for i, text in enumerate(self.texts)}


def train_heads(
    features: FeatureSet,
    bank: TextBank,
    records: Sequence[Record],
    train: Sequence[int],
    config: TrainConfig,
    run_dir: Path | None = None,
    device: torch.device = CPU,
) -> EmotionHeads:
    """Train the heads on the ``train`` rows on ``device``; with ``run_dir``, log to TensorBoard and checkpoint
    each epoch, resuming from the last checkpoint there if the config matches. The heads come back on the CPU."""
    _seed(config.seed)
    heads = EmotionHeads(
        HeadConfig(
            n_layers=features.n_layers,
            d_audio=features.d_audio,
            d_text=bank.embeddings.shape[1],
            n_classes=len(EMOTIONS),
            d_joint=config.d_joint,
            d_hidden=config.d_hidden,
            dropout=config.dropout,
            speaker_normalisation=config.speaker_normalisation,
            affect=config.affect,
        )
    )
    sampler: ReferenceSampler | PopulationSampler | None = None
    if heads.audio.reference is not None:
        trained_on = training_variants(features)
        fit_priors(
            heads.audio.reference,
            features,
            records,
            train,
            trained_on,
            config.prior_clips,
            "corpus" if config.reference == "population" else "speaker",
        )
        sampler = (
            PopulationSampler(records, train, features)
            if config.reference == "population"
            else (ReferenceSampler(records, train))
        )
    heads.to(device)
    optimiser = torch.optim.AdamW(heads.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    steps = max(1, config.epochs * math.ceil(len(train) / config.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.learning_rate, total_steps=steps)
    start = _resume(run_dir, config, heads, optimiser, schedule)
    writer = SummaryWriter(str(run_dir / "tensorboard")) if run_dir else None
    prompts = bank.embeddings.to(device)
    rng = np.random.default_rng([config.seed, start])
    for epoch in trange(start, config.epochs, desc="epochs", initial=start, total=config.epochs, leave=False):
        heads.train()
        order = epoch_order(records, train, config.balanced_sampling, rng)
        totals = np.zeros(3)
        for begin in range(0, len(order), config.batch_size):
            rows = order[begin : begin + config.batch_size]
            variants = batch_variants(features, len(rows), config.telephone_probability, rng)
            audio = torch.from_numpy(
                np.stack([features.stats[v][r] for v, r in zip(variants, rows, strict=True)]).astype(np.float32)
            ).to(device)
            reference = None
            if sampler is not None:
                drawn = sample_references(sampler, features, rows, variants, config, rng)
                reference = tuple(t.to(device) for t in drawn)
            columns, positives, valid = training_pairs(bank, records, rows, config, rng)
            targets = batch_targets(records, rows).to(device)
            with mixed_precision(device, config.mixed_precision):
                loss, clap, ser = batch_loss(
                    heads, audio, prompts[columns], positives, valid, targets, config, reference
                )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            totals += [loss.item() * len(rows), clap.item() * len(rows), ser.item() * len(rows)]
        if writer:
            for name, value in zip(("loss", "contrastive", "ser"), totals / len(order), strict=True):
                writer.add_scalar(f"train/{name}", value, epoch)
            _checkpoint(run_dir, config, heads, optimiser, schedule, epoch + 1)
    if writer:
        writer.close()
    return heads.cpu().eval()


def batch_loss(
    heads: EmotionHeads,
    audio: torch.Tensor,
    prompts: torch.Tensor,
    positives: torch.Tensor,
    valid: torch.Tensor,
    targets: Targets,
    config: TrainConfig,
    reference: Reference | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The training objective of one batch: weighted sum, contrastive part and SER part (plus, for heads with
    it, the arousal/valence likelihood)."""
    hidden = heads.audio.hidden(audio, reference)
    audio_joint, logits = heads.audio.read(hidden)
    similarity = heads.similarity(audio_joint, heads.text(prompts))
    clap = contrastive_loss(similarity, positives.to(similarity.device), valid.to(similarity.device))
    ser = ser_loss(logits, targets.labels, config.label_smoothing, targets.classes)
    loss = config.contrastive_weight * clap + config.ser_weight * ser
    if heads.audio.affect is not None:
        loss = loss + config.affect_weight * affect_loss(*heads.audio.affect_outputs(hidden), targets.affect)
    return loss, clap, ser


def sample_references(
    sampler: ReferenceSampler | PopulationSampler,
    features: FeatureSet,
    rows: np.ndarray,
    variants: Sequence[str],
    config: TrainConfig,
    rng: np.random.Generator,
) -> Reference:
    """Training references for a batch: what a node has heard of each row's corpus (population references), or
    0 to ``max_reference`` other clips of each row's speaker, all of one emotion for a share
    ``one_emotion_references`` of the rows."""
    if isinstance(sampler, PopulationSampler):
        return sampler.draw(
            features, rows, variants, population_counts(len(rows), config.population_horizon, rng), rng
        )
    counts = rng.integers(0, config.max_reference + 1, len(rows))
    alike = rng.random(len(rows)) < config.one_emotion_references
    return sampler.draw(features, rows, variants, counts, rng, alike)


def training_variants(features: FeatureSet) -> list[str]:
    """The channel variants training reads: clean and the random telephone augmentations (``augment-*``)."""
    return ["clean", *sorted(v for v in features.stats if v.startswith("augment-"))]


def batch_variants(features: FeatureSet, n: int, telephone: float, rng: np.random.Generator) -> list[str]:
    """The variant each of ``n`` training rows is read from: clean, or with probability ``telephone`` a random
    telephone augmentation (the ``augment-*`` variants; the plain mu-law variant is kept for evaluation)."""
    chosen = ["clean"] * n
    augmented = training_variants(features)[1:]
    if not augmented:
        return chosen
    for i in np.flatnonzero(rng.random(n) < telephone):
        chosen[i] = augmented[rng.integers(len(augmented))]
    return chosen


def training_pairs(
    bank: TextBank, records: Sequence[Record], rows: np.ndarray, config: TrainConfig, rng: np.random.Generator
) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """One prompt drawn per row (the class-label prompt without prompt augmentation; none for a row without
    prompts): the batch's distinct prompts as bank indices, which of them truly describe each row
    ``(rows, prompts)``, and which pairs count at all: a prompt naming an emotion the row's corpus never labels
    is no negative for it."""
    chosen = [
        bank.index[records[r].prompts[rng.integers(len(records[r].prompts)) if config.prompt_augmentation else 0]]
        for r in rows
        if records[r].prompts
    ]
    columns = sorted(set(chosen))
    prompt_sets = [{bank.index[p] for p in records[r].prompts} for r in rows]
    named = {bank.index[p]: records[r].label for r in rows for p in records[r].prompts if records[r].label >= 0}
    positives = torch.tensor([[c in prompts for c in columns] for prompts in prompt_sets], dtype=torch.bool)
    valid = torch.tensor(
        [[c not in named or named[c] in records[r].classes for c in columns] for r in rows], dtype=torch.bool
    )
    return columns, positives.view(len(rows), len(columns)), valid.view(len(rows), len(columns))


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _checkpoint(run_dir: Path, config: TrainConfig, heads, optimiser, schedule, epochs_done: int) -> None:
    state = {
        "config": asdict(config),
        "heads": heads.state_dict(),
        "optimiser": optimiser.state_dict(),
        "schedule": schedule.state_dict(),
        "epochs_done": epochs_done,
    }
    tmp = run_dir / "checkpoint.pt.tmp"
    torch.save(state, tmp)
    tmp.replace(run_dir / "checkpoint.pt")


def _resume(run_dir: Path | None, config: TrainConfig, heads, optimiser, schedule) -> int:
    """Epochs already done in ``run_dir`` (0 for a new run); refuses a checkpoint of a different config."""
    if run_dir is None:
        return 0
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(asdict(config), indent=2) + "\n", encoding="utf-8")
    path = run_dir / "checkpoint.pt"
    if not path.exists():
        return 0
    state = torch.load(path, weights_only=True, map_location=next(heads.parameters()).device)
    if state["config"] != asdict(config):
        raise ValueError(f"{path} was trained with another config; use a new run directory")
    heads.load_state_dict(state["heads"])
    optimiser.load_state_dict(state["optimiser"])
    schedule.load_state_dict(state["schedule"])
    return int(state["epochs_done"])
