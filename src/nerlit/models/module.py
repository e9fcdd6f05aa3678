"""NerModule: trains and evaluates a :class:`~nerlit.models.network.NerNetwork` with Lightning."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from torchmetrics import MaxMetric
from transformers import AutoConfig

from nerlit.errors import DataError, ModelLoadError
from nerlit.models.checkpoint import DATA_KEY, TOKENIZER_KEY
from nerlit.models.decoding import DECODERS, words_from_windows
from nerlit.models.network import NerNetwork, state_differences
from nerlit.models.optim import parameter_groups

log = logging.getLogger(__name__)

#: encoder settings a resumed run must share with its checkpoint (BERT-like and DistilBERT names)
ARCHITECTURE_KEYS = (
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
    "type_vocab_size",
    "embedding_size",
    "dim",
    "n_layers",
    "n_heads",
    "hidden_dim",
)


#: ``model.compile``: null (eager), or a ``torch.compile`` mode for the network
COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class NerModule(L.LightningModule):
    """The network, its loss, and entity scores over whole splits; reads no config itself.

    Built from ``conf/model/`` (``_target_``) with runtime values passed in: the labels, the
    encoder's location (``pretrained``: weights are loaded from it when no ``encoder_config`` is
    given), and the optimizer, scheduler and scorer factories. ``eval_mode`` and
    ``reference_types`` are recorded for inference; the scorer applies them. The checkpoint holds
    the encoder's config and the label list, so ``load_from_checkpoint`` rebuilds the network
    with no access to the original weights. ``context``, ``max_length`` and ``stride`` (the
    data's document context and windows) are recorded so that inference builds the same inputs
    as training did. ``data_record`` (the data config and the fingerprints of each split's
    sentences) goes into the checkpoint beside the hyperparameters, not into them (loggers copy
    those): ``nerlit evaluate`` reads it to score the run's own held-out split and to refuse
    sentences the model trained on.
    """

    def __init__(
        self,
        labels: list[str],
        encoder_config: dict | None = None,
        name: str | None = None,
        pretrained: str | None = None,
        from_scratch: bool = False,
        config_overrides: dict | None = None,
        dropout: float = 0.1,
        head: str = "linear",
        decode: str = "constrained",
        case_features: bool = False,
        attention: str = "auto",
        compile: str | None = None,
        optimizer: Callable | None = None,
        scheduler: Callable | None = None,
        scorer: Callable[[list[list[str]], list[list[str]]], dict] | None = None,
        eval_mode: str = "strict",
        reference_types: list[str] | None = None,
        tokenizer_dir: str | None = None,
        context: int = 0,
        max_length: int | None = None,
        stride: int = 64,
        data_record: dict | None = None,
    ) -> None:
        super().__init__()
        if decode not in DECODERS:
            raise DataError(f"model.decode={decode!r} is not one of {DECODERS}")
        weights = None
        if encoder_config is None:  # a new run: the encoder's config, and its weights unless
            if not pretrained:  # from_scratch
                raise DataError("NerModule needs an encoder_config or a pretrained location")
            encoder_config = AutoConfig.from_pretrained(pretrained, **(config_overrides or {}))
            encoder_config = encoder_config.to_dict()
            weights = None if from_scratch else pretrained
        self.network = NerNetwork.build(
            encoder_config, labels, head, case_features, dropout, weights, attention
        )
        if compile not in COMPILE_MODES:
            raise DataError(f"model.compile={compile!r} is not one of {COMPILE_MODES}")
        self.save_hyperparameters(ignore=["optimizer", "scheduler", "scorer", "data_record"])
        self.hparams.encoder_config = self.network.config.to_dict()
        self.data_record = data_record
        self.labels = list(labels)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        # entity scores of (gold, predicted) IOB2 tags: nerlit.evaluation.metrics.entity_scores
        # with the run's eval_mode and reference types, passed in by the entry point (evaluation
        # is a layer above models)
        self.scorer = scorer
        self._eval_outputs: list[tuple[torch.Tensor, ...]] = []
        self._eval_windows = 0
        self.test_scores: dict | None = None
        self.test_predictions: list[list[str]] = []  # one IOB2 tag per word of each test sentence
        #: split -> (sentences scored, sentences in the split): fewer under limit_*_batches
        self.scored: dict[str, tuple[int, int]] = {}
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
        return self.network(input_ids, attention_mask, casing_ids)

    def _batch_logits(self, batch: dict) -> torch.Tensor:
        return self(batch["input_ids"], batch["attention_mask"], batch.get("casing_ids"))

    def setup(self, stage: str) -> None:
        """Compile the network's forward in place (``model.compile``), keeping its state-dict
        keys, so checkpoints and exports read the same either way."""
        mode = self.hparams.get("compile")
        if mode and not getattr(self, "_compiled", False):
            # padded lengths are bounded (data.pad_to_multiple_of), so are the graphs: one per
            # length at most, before automatic dynamic shapes take over
            torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
            self.network.compile(mode=mode)
            self._compiled = True

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        logits = self._batch_logits(batch)
        loss = self.network.loss(logits, batch["labels"])
        # a progress-bar metric is read back (.item()) at every step: free on a CPU, a host
        # sync per step on a GPU, where the loss reaches the loggers every log_every_n_steps
        self.log(
            "train/loss",
            loss,
            prog_bar=loss.device.type == "cpu",
            batch_size=batch["input_ids"].size(0),
        )
        return loss

    # -- evaluation: predictions of the whole split are kept and scored once at epoch end --

    def _eval_step(self, batch: dict, split: str) -> None:
        logits = self._batch_logits(batch)
        loss = self.network.loss(logits, batch["labels"])
        size = batch["input_ids"].size(0)
        self.log(f"{split}/loss", loss, batch_size=size, sync_dist=True)
        # kept whole on the device: selecting each word's first subword here (a boolean mask)
        # would wait for the device at every batch; it is done once the split is complete
        self._eval_outputs.append((batch["sentence_index"], batch["word_index"], logits))
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
            rows = []
            for sentence_index, word_index, logits in self._eval_outputs:
                owned = word_index >= 0
                sentence = sentence_index.unsqueeze(1).expand_as(owned)
                rows.append((sentence[owned], word_index[owned], logits[owned].float()))
            flat = [torch.cat(parts).cpu() for parts in zip(*rows)]
        else:  # a rank may get no window of a tiny split
            flat = [torch.empty(0, dtype=torch.long)] * 2 + [torch.empty(0, len(self.labels))]
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
        self.scored[split] = (len(seen), len(sentences))
        # a sanity check or limit_*_batches evaluates part of the split: score what was seen
        limited = windows < len(self.trainer.datamodule.windows[split])
        missing = sum(int((~written[i]).sum()) for i in seen)
        if missing and not limited:
            raise RuntimeError(f"{missing} {split} words got no prediction: an encoding bug")
        pred, _ = self.network.decode([values[i] for i in seen], self.hparams.decode)
        gold = [list(sentences[i].tags) for i in seen]
        self.test_predictions = pred if split == "test" else self.test_predictions
        if split == "test":
            self.test_gold = gold  # what test_predictions are scored against
        if self.scorer is None:
            raise ValueError("NerModule needs a scorer to evaluate (nerlit.train passes one)")
        return self.scorer(gold, pred)

    def on_validation_epoch_end(self) -> None:
        scores = self._score("val")
        micro = scores["micro"]
        for key in ("f1", "precision", "recall"):
            self.log(f"val/{key}", micro[key], prog_bar=key == "f1")
        # one curve per entity type: a micro F1 that stalls may hide one type still learning
        for entity_type, type_scores in scores.get("per_type", {}).items():
            self.log(f"val/f1/{entity_type}", type_scores["f1"])
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

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Log ``train/grad_norm``, the total L2 norm of the gradients before clipping.

        Exploding or vanishing gradients show here before they show in the loss, and the value
        tells what ``trainer.gradient_clip_val`` actually cuts. Lightning calls this hook after
        unscaling (fp16) and before ``configure_gradient_clipping``. The norm costs a pass over
        every gradient, so it is taken only on the steps whose logs reach the loggers (every
        ``trainer.log_every_n_steps``, as Lightning flushes step metrics).
        """
        every = self.trainer.log_every_n_steps
        if not every or (self.trainer.global_step + 1) % every:
            return
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
        grads = [g.detach() for g in grads if g is not None]
        if grads:
            norms = torch.stack(torch._foreach_norm(grads))  # a few kernels, not one per tensor
            self.log("train/grad_norm", torch.linalg.vector_norm(norms.float()), on_step=True)

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
            checkpoint[TOKENIZER_KEY] = self._tokenizer_files
        if self.data_record:
            checkpoint[DATA_KEY] = self.data_record

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Check that the checkpoint fits this module, keep the data record, and load checkpoints
        saved before ``val/f1_best`` was a metric.

        Lightning calls this before ``load_state_dict``, so a resumed run (``ckpt_path=``) on
        other data or another model stops here with one line naming what differs (labels,
        encoder size, head), rather than with a page of tensor shape mismatches; labels in
        another order would even load, silently swapping what each output means.
        Checkpoints saved before ``val/f1_best`` was a metric lack its state, which a strict
        ``load_state_dict`` would reject: they get a fresh one (no best yet). A module built with
        its own record (a resumed run) keeps it.
        """
        differences = self._checkpoint_differences(checkpoint)
        if differences:
            raise ModelLoadError(
                f"the checkpoint (ckpt_path) does not fit this run's model: "
                f"{'; '.join(differences)}. Resume with the data and model settings it was "
                f"trained with, or start a new run without ckpt_path"
            )
        if self.data_record is None:
            self.data_record = checkpoint.get(DATA_KEY)
        state = checkpoint.get("state_dict")
        if state is not None:
            for name, value in self.val_f1_best.state_dict(prefix="val_f1_best.").items():
                state.setdefault(name, value.clone())

    def _checkpoint_differences(self, checkpoint: dict) -> list[str]:
        hparams = checkpoint.get("hyper_parameters") or {}
        if "labels" not in hparams or "state_dict" not in checkpoint:
            return ["it is not a nerlit checkpoint (no labels in its hyper_parameters)"]
        found = []
        theirs, ours = list(hparams["labels"]), list(self.labels)
        if theirs != ours:
            shown = "the same labels in another order" if sorted(theirs) == sorted(ours) else ""
            found.append(
                f"the checkpoint has {len(theirs)} labels {theirs}, this run {len(ours)} {ours}"
                + (f" ({shown})" if shown else "")
            )
        saved = hparams.get("encoder_config") or {}
        current = self.hparams.get("encoder_config") or {}
        for key in ARCHITECTURE_KEYS:
            if key in saved and key in current and saved[key] != current[key]:
                found.append(f"{key} {saved[key]}, this run {current[key]}")
        for key, default in (("head", "linear"), ("case_features", False)):
            if hparams.get(key, default) != self.hparams.get(key, default):
                found.append(f"{key} {hparams.get(key, default)!r}, this run {self.hparams[key]!r}")
        if not found:  # whatever else makes the weights another shape
            state = checkpoint["state_dict"]
            found = state_differences(
                self.network.state_dict(prefix="network."),
                {k: v for k, v in state.items() if k.startswith("network.")},
            )
        return found
