"""NerModule: a transformers encoder, dropout and a linear token-classification head."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from torch import nn
from torchmetrics import MaxMetric
from transformers import AutoConfig, AutoModel

from nerlit.data.casing import NUM_CASINGS
from nerlit.data.encoding import IGNORE_INDEX
from nerlit.data.schemes import bioes_to_iob2
from nerlit.errors import DataError
from nerlit.evaluation.metrics import entity_scores
from nerlit.models.decoding import DECODERS, constrained_decode, words_from_windows
from nerlit.models.heads import CRF, HEADS, compact
from nerlit.models.optim import parameter_groups

log = logging.getLogger(__name__)

#: where ``on_save_checkpoint`` puts the run's data record (``NerDataModule.data_record``)
DATA_KEY = "nerlit_data"


def encoder_from_config(encoder_config: dict) -> nn.Module:
    """Rebuild the encoder's architecture (random weights) from a saved ``config.to_dict()``."""
    config = dict(encoder_config)
    return AutoModel.from_config(AutoConfig.for_model(config.pop("model_type"), **config))


class NerModule(L.LightningModule):
    """Encoder + head; optimizer and scheduler arrive as factories and the module reads no config.

    The checkpoint holds the encoder's config and the label list, so ``load_from_checkpoint``
    rebuilds the model with no network and no access to the original weights. ``context`` (the
    data's document-context size) is not used here: it is recorded in the hyperparameters so
    that inference builds the same inputs as training did. ``data_record`` (the data config and
    the fingerprints of each split's sentences) goes into the checkpoint beside them, not into
    the hyperparameters, which loggers copy: ``nerlit.evaluate`` reads it to score the run's own
    held-out split and to refuse sentences the model trained on.
    """

    def __init__(
        self,
        encoder_config: dict,
        labels: list[str],
        optimizer: Callable | None = None,
        scheduler: Callable | None = None,
        dropout: float = 0.1,
        eval_mode: str = "strict",
        reference_types: list[str] | None = None,
        head: str = "linear",
        decode: str = "constrained",
        tokenizer_dir: str | None = None,
        case_features: bool = False,
        encoder: nn.Module | None = None,
        context: int = 0,
        data_record: dict | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["encoder", "optimizer", "scheduler", "data_record"])
        self.data_record = data_record
        self.encoder = encoder if encoder is not None else encoder_from_config(encoder_config)
        # transformers' from_pretrained returns eval mode and Lightning keeps each submodule's
        # mode, so without this the encoder's dropout would silently stay off during training.
        self.encoder.train()
        if getattr(self.encoder, "pooler", None) is not None:
            self.encoder.pooler = None  # unused for tagging; would get no gradient under DDP
        self.labels = list(labels)
        # evaluation is always on IOB2 entities, whatever scheme the model was trained on
        self.trained_on_bioes = any(label[:2] in ("E-", "S-") for label in self.labels)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.encoder.config.hidden_size, len(self.labels))
        std = getattr(self.encoder.config, "initializer_range", 0.02)
        nn.init.normal_(self.classifier.weight, std=std)
        nn.init.zeros_(self.classifier.bias)
        if head not in HEADS or decode not in DECODERS:
            raise DataError(f"model.head must be one of {HEADS} and model.decode of {DECODERS}")
        # linear head: decode="constrained" runs Viterbi over the softmax scores so that outputs
        # are always valid spans; "argmax" labels each word on its own (as HF pipelines do)
        self.crf = CRF(self.labels) if head == "crf" else None
        # casing classes for uncased encoders (nerlit.data.casing): added to the input embeddings,
        # zero-initialised so that training starts from the pretrained encoder unchanged
        self.casing = None
        if case_features:
            self.casing = nn.Embedding(NUM_CASINGS, self.encoder.config.hidden_size)
            nn.init.zeros_(self.casing.weight)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
        self._eval_outputs: list[tuple[torch.Tensor, ...]] = []
        self._eval_windows = 0
        self.test_scores: dict | None = None
        self.test_predictions: list[list[str]] = []  # one IOB2 tag per word of each test sentence
        # the best val/f1 so far; a metric state is kept out of state_dict unless persistent,
        # and a resumed run must go on from the maximum it had, not from scratch
        self.val_f1_best = MaxMetric()
        self.val_f1_best.persistent(True)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        casing_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.casing is None:
            inputs = {"input_ids": input_ids}
        else:
            if casing_ids is None:
                raise ValueError("a model trained with case_features needs casing_ids")
            embeds = self.encoder.get_input_embeddings()(input_ids) + self.casing(casing_ids)
            inputs = {"inputs_embeds": embeds}
        hidden = self.encoder(**inputs, attention_mask=attention_mask).last_hidden_state
        return self.classifier(self.dropout(hidden))

    def _batch_logits(self, batch: dict) -> torch.Tensor:
        return self(batch["input_ids"], batch["attention_mask"], batch.get("casing_ids"))

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.crf is not None:
            emissions, mask = compact(logits, labels != IGNORE_INDEX)
            tags, _ = compact(labels, labels != IGNORE_INDEX)
            return self.crf.nll(emissions, tags, mask)
        return self.loss_fn(logits.float().view(-1, logits.size(-1)), labels.view(-1))

    def _word_values(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-token values that evaluation keeps: label ids, or log-probs for Viterbi later."""
        if self.crf is not None:
            labelled = labels != IGNORE_INDEX
            emissions, mask = compact(logits, labelled)
            ids = torch.zeros_like(labels)
            ids[labelled] = self.crf.decode(emissions, mask)[mask]
            return ids
        if self.hparams.decode == "constrained":
            return torch.log_softmax(logits.float(), dim=-1)
        return logits.argmax(-1)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        logits = self._batch_logits(batch)
        loss = self._loss(logits, batch["labels"])
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["input_ids"].size(0))
        return loss

    # -- evaluation: predictions of the whole split are kept and scored once at epoch end --

    def _eval_step(self, batch: dict, split: str) -> None:
        logits = self._batch_logits(batch)
        loss = self._loss(logits, batch["labels"])
        size = batch["input_ids"].size(0)
        self.log(f"{split}/loss", loss, batch_size=size, sync_dist=True)
        owned = batch["word_index"] >= 0
        sentence = batch["sentence_index"].unsqueeze(1).expand_as(owned)
        values = self._word_values(logits, batch["labels"])
        self._eval_outputs.append((sentence[owned], batch["word_index"][owned], values[owned]))
        self._eval_windows += batch["input_ids"].size(0)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_validation_epoch_start(self) -> None:
        self._eval_outputs, self._eval_windows = [], 0

    def on_test_epoch_start(self) -> None:
        self._eval_outputs, self._eval_windows = [], 0

    def _gather_eval_outputs(self) -> tuple[list[torch.Tensor], int]:
        """(sentence, word, value) rows and the window count of the whole split, from all ranks.

        Under DDP each rank evaluated a disjoint share of the windows (the batch sampler shards
        them), so scoring its own share would give a per-rank F1. ``all_gather_object`` takes
        shares of different sizes, which tensor ``all_gather`` does not.
        """
        if self._eval_outputs:
            flat = [torch.cat(parts).cpu() for parts in zip(*self._eval_outputs)]
        else:  # a rank may get no window of a tiny split
            flat = [torch.empty(0, dtype=torch.long) for _ in range(3)]
        windows, self._eval_outputs = self._eval_windows, []
        world = self.trainer.world_size if self._trainer is not None else 1
        if world > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            shares: list = [None] * world
            torch.distributed.all_gather_object(shares, (flat, windows))
            rows = [share[0] for share in shares if share[1]] or [flat]
            flat = [torch.cat(parts) for parts in zip(*rows)]
            windows = sum(share[1] for share in shares)
        return flat, windows

    def _score(self, split: str) -> dict:
        sentences = self.trainer.datamodule.sentences(split)
        flat, windows = self._gather_eval_outputs()
        values, written = words_from_windows(*flat, [len(s) for s in sentences], fill=0)
        seen = [i for i, w in enumerate(written) if bool(w.any())]
        # a sanity check or limit_*_batches evaluates part of the split: score what was seen
        limited = windows < len(self.trainer.datamodule.windows[split])
        missing = sum(int((~written[i]).sum()) for i in seen)
        if missing and not limited:
            raise RuntimeError(f"{missing} {split} words got no prediction: an encoding bug")
        if values and values[0].dim() == 2:  # log-probs: constrained Viterbi per sentence
            ids = constrained_decode([values[i] for i in seen], self.labels)
        else:
            ids = [values[i].tolist() for i in seen]
        gold = [list(sentences[i].tags) for i in seen]
        pred = [[self.labels[y] for y in row] for row in ids]
        if self.trained_on_bioes:
            pred = [bioes_to_iob2(tags) for tags in pred]
        self.test_predictions = pred if split == "test" else self.test_predictions
        if split == "test":
            self.test_gold = gold  # what test_predictions are scored against
        return entity_scores(gold, pred, self.hparams.eval_mode, self.hparams.reference_types or ())

    def on_validation_epoch_end(self) -> None:
        scores = self._score("val")
        micro = scores["micro"]
        for key in ("f1", "precision", "recall"):
            self.log(f"val/{key}", micro[key], prog_bar=key == "f1")
        # the sanity check scores an untrained model on a few batches: no epoch's result
        if not self.trainer.sanity_checking:
            self.val_f1_best.update(micro["f1"])
            self.log("val/f1_best", self.val_f1_best.compute())

    def on_test_epoch_end(self) -> None:
        self.test_scores = self._score("test")
        micro = self.test_scores["micro"]
        for key in ("f1", "precision", "recall"):
            self.log(f"test/{key}", micro[key])
        if "reference" in self.test_scores:
            self.log("test/f1_reference_types", self.test_scores["reference"]["f1"])

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip directly when no loss scaling is in use (bf16 or fp32).

        Lightning's mixed-precision plugin refuses to clip for any fused optimizer, a check meant
        for fp16, whose GradScaler leaves gradients scaled until the fused step. With bf16 there is
        no scaler and the gradients are exact, so clipping them is correct; with fp16 Lightning's
        own check still applies.
        """
        if gradient_clip_val and getattr(self.trainer.precision_plugin, "scaler", None) is None:
            params = [p for group in optimizer.param_groups for p in group["params"]]
            if gradient_clip_algorithm == "value":
                torch.nn.utils.clip_grad_value_(params, gradient_clip_val)
            else:
                torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)
            return
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self):
        if self.optimizer_factory is None:
            raise ValueError("NerModule needs an optimizer factory to train (conf/optimizer/)")
        optimizer = self.optimizer_factory(parameter_groups(self))
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(
            optimizer, total_steps=int(self.trainer.estimated_stepping_batches)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Embed the tokenizer's files: a checkpoint alone is then enough to tag text.

        ``hparams.tokenizer_dir`` points into the run directory, which may not travel with the
        checkpoint; ``nerlit.Tagger`` reads these bytes back (key ``nerlit_tokenizer_files``).
        """
        if not hasattr(self, "_tokenizer_files"):
            saved = self.hparams.get("tokenizer_dir")
            files = sorted(Path(saved).iterdir()) if saved and Path(saved).is_dir() else []
            self._tokenizer_files = {p.name: p.read_bytes() for p in files if p.is_file()}
        if self._tokenizer_files:
            checkpoint["nerlit_tokenizer_files"] = self._tokenizer_files
        if self.data_record:
            checkpoint[DATA_KEY] = self.data_record

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Keep the data record, and load checkpoints saved before ``val/f1_best`` was a metric.

        Those lack its state, which a strict ``load_state_dict`` would reject: they get a fresh
        one (no best yet). A module built with its own record (a resumed run) keeps it.
        """
        if self.data_record is None:
            self.data_record = checkpoint.get(DATA_KEY)
        state = checkpoint.get("state_dict")
        if state is not None:
            for name, value in self.val_f1_best.state_dict(prefix="val_f1_best.").items():
                state.setdefault(name, value.clone())
