"""Fine-tune a BERT on a GLUE task and learn EdgeBert's token gates, on one process or many under torchrun
(DistributedDataParallel: gloo on CPU, nccl on GPU). The options, stages, losses, optimizer and schedule are
those of `edgebert train` (EdgeBert.Training.FineTuner); the written model directory is what EdgeBert loads.

  torchrun --nproc_per_node 2 -m edgebert_torch.train --task SST-2 --data DIR --init MODEL_DIR --out DIR \\
      [--vocab FILE] [--epochs 3] [--lr 5e-5] [--batch-size 32] [--max-len 128] [--warmup 0.1] [--seed 42]
      [--init-seed SEED] [--threads N] [--resume] [--max-train N] [--save-every STEPS]
      [--gates one-stage|two-stage --lambda X [--mu X] [--gate-lr 1e-2] [--gate-positions N]
              [--gate-threshold T] [--distill A] [--freeze-gates]]

--batch-size is the global batch: each step splits it over the processes and averages their gradients, so
the loss and the schedule are those of one process with that batch. Data order and dropout come from torch's
generators, not EdgeBert's, so runs agree with `edgebert train` in method, not bit for bit.
"""
import argparse
import math
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from . import checkpoint, glue, wordpiece
from .model import SHAPES, GatedBert, from_pretrained, gate_bimodal, gate_l1, init_weights, pad_batch

RESUME_FOLDER, STATE_FILE = "resume", "trainer_state.pt"
MAX_GRAD_NORM, DROPOUT, WEIGHT_DECAY = 1.0, 0.1, 0.01
# The options that decide what a run computes; a resume with other values is refused.
SETTINGS = ("task", "init", "vocab", "epochs", "lr", "batch_size", "max_len", "warmup", "seed", "init_seed",
            "max_train", "gates", "lam", "mu", "gate_lr", "gate_positions", "gate_threshold", "distill",
            "freeze_gates")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True)
    p.add_argument("--data", required=True, help="directory with train.tsv and the dev file")
    p.add_argument("--init", required=True, help="model directory, or random:tiny|mini|small|base with --vocab")
    p.add_argument("--out", required=True)
    p.add_argument("--vocab")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--warmup", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--init-seed", type=int)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--max-train", type=int)
    p.add_argument("--save-every", type=int, default=0)
    p.add_argument("--gates", choices=["one-stage", "two-stage"])
    p.add_argument("--lambda", dest="lam", type=float, default=0.0)
    p.add_argument("--mu", type=float, help="bi-modal weight (default: lambda)")
    p.add_argument("--gate-lr", type=float, default=1e-2)
    p.add_argument("--gate-positions", type=int)
    p.add_argument("--gate-threshold", type=float)
    p.add_argument("--distill", type=float, default=0.0)
    p.add_argument("--freeze-gates", action="store_true")
    a = p.parse_args(argv)
    if a.epochs < 1 or a.batch_size < 1 or a.max_len < 2:
        p.error("--epochs and --batch-size must be at least 1, --max-len at least 2")
    if a.gates is None and (a.lam or a.mu is not None or a.distill or a.freeze_gates):
        p.error("--lambda, --mu, --distill and --freeze-gates need --gates one-stage|two-stage")
    if a.freeze_gates and a.gates != "two-stage":
        p.error("--freeze-gates trains a gated --init model further: give --gates two-stage")
    if not 0 <= a.distill <= 1 or a.lam < 0:
        p.error("--distill must be in [0, 1] and --lambda >= 0")
    return a


class Run:
    """One process of the run; rank 0 evaluates, logs and writes files."""

    def __init__(self, args):
        self.a = args
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        cuda = torch.cuda.is_available()
        self.device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if cuda else "cpu")
        if self.world > 1:
            dist.init_process_group("nccl" if cuda else "gloo")
        self.task = glue.get_task(args.task)

    def log(self, message):
        if self.rank == 0:
            print(message, flush=True)

    def barrier(self):
        if self.world > 1:
            dist.barrier()

    # --- model ---

    def load_init(self, source):
        """The --init model (or the resume folder's) and the files to copy beside a saved checkpoint."""
        a = self.a
        if not source.startswith("random:"):
            vocab = os.path.join(source, checkpoint.VOCAB_FILE)
            files = [vocab, os.path.join(source, checkpoint.TOKENIZER_CONFIG_FILE)]
            return from_pretrained(source), vocab, files
        shape = source[len("random:"):]
        if a.vocab is None:
            sys.exit("error: --init random:SHAPE needs --vocab FILE")
        config = dict(SHAPES[shape], vocab_size=len(wordpiece.read_vocab(a.vocab)), hidden_act="gelu",
                      max_position_embeddings=max(a.max_len, 128), type_vocab_size=2, layer_norm_eps=1e-12,
                      model_type="bert", pad_token_id=0)
        self.apply_task(config)
        model = GatedBert(config, num_labels=self.task.num_labels)
        seed = a.init_seed if a.init_seed is not None else a.seed
        init_weights(model, generator=torch.Generator().manual_seed(seed))
        return model, a.vocab, [a.vocab]

    def apply_task(self, config):
        names = self.task.label_names
        config["id2label"] = {str(i): n for i, n in enumerate(names)}
        config["label2id"] = {n: i for i, n in enumerate(names)}
        config["problem_type"] = "regression" if self.task.is_regression else "single_label_classification"

    def classifies(self, model):
        return model.classifier is not None and checkpoint.labels_of(model.config) == self.task.label_names

    def prepare_head(self, model):
        """A new classifier (and pooler, if missing) for the task unless the model already classifies it."""
        if self.classifies(model):
            return model
        self.apply_task(model.config)
        fresh = GatedBert(model.config, gated=model.has_gates, num_labels=self.task.num_labels)
        seed = (self.a.init_seed if self.a.init_seed is not None else self.a.seed) + 1
        init_weights(fresh, generator=torch.Generator().manual_seed(seed))
        keep = {n: t for n, t in model.named_tensors().items() if not n.startswith("classifier.")}
        if "bert.pooler.dense.weight" not in keep:
            keep = {n: t for n, t in keep.items() if not n.startswith("bert.pooler.")}
        fresh.load_state_dict(keep, strict=False)
        self.log(f"new classifier for {self.task.name}: labels {', '.join(self.task.label_names)}")
        return fresh

    # --- data ---

    def encode(self, examples, vocab, max_length):
        encoded = []
        for text_a, text_b, label, score in examples:
            e = wordpiece.encode(text_a, text_b, max_length, vocab)
            encoded.append((e["input_ids"], e["token_type_ids"], label, score))
        return encoded

    def batch(self, examples, indices):
        ids, types, lengths = pad_batch([(examples[i][0], examples[i][1]) for i in indices], self.device)
        labels = torch.tensor([examples[i][2] for i in indices], device=self.device)
        scores = torch.tensor([examples[i][3] for i in indices], dtype=torch.float32, device=self.device)
        return ids, types, lengths, labels, scores

    # --- evaluation (rank 0) ---

    def evaluate(self, model, dev, soft):
        model.eval()
        predictions, kept_tokens, tokens = [], 0, 0
        with torch.no_grad():
            for start in range(0, len(dev), 64):
                ids, types, lengths, _, _ = self.batch(dev, range(start, min(len(dev), start + 64)))
                if soft:
                    logits, _ = model(ids, types, lengths)
                else:
                    logits, kept = model.hard_forward(ids, types, lengths)
                    kept_tokens += int(kept.sum())
                    tokens += int(lengths.sum()) * kept.shape[1]
                predictions += logits[:, 0].tolist() if self.task.is_regression else logits.argmax(1).tolist()
        golds = [e[3] if self.task.is_regression else e[2] for e in dev]
        return glue.metrics(self.task, predictions, golds), (kept_tokens / tokens if tokens else 1.0)

    # --- files ---

    def save(self, model, directory, files):
        counts = model.kept_counts() if model.has_gates else None
        checkpoint.save_directory(directory, model.config, model.named_tensors(), counts, files)

    def save_resume(self, model, files, state, optimizer):
        if self.rank == 0:
            directory = os.path.join(self.a.out, RESUME_FOLDER)
            self.save(model, directory, files)
            state = dict(state, optimizer=optimizer.state_dict(), settings={k: getattr(self.a, k) for k in SETTINGS})
            torch.save(state, os.path.join(directory, STATE_FILE + ".tmp"))
            os.replace(os.path.join(directory, STATE_FILE + ".tmp"), os.path.join(directory, STATE_FILE))
        self.barrier()

    # --- training ---

    def param_groups(self, model, learn_gates):
        """No weight decay on biases, LayerNorm parameters (BERT practice) nor gates (METHOD.md)."""
        decay, no_decay = [], []
        for name, p in model.named_parameters():
            if not name.endswith(".gate"):
                (no_decay if name.endswith(".bias") or "LayerNorm" in name else decay).append(p)
        groups = [dict(params=decay, lr=self.a.lr, weight_decay=WEIGHT_DECAY, base_lr=self.a.lr),
                  dict(params=no_decay, lr=self.a.lr, weight_decay=0.0, base_lr=self.a.lr)]
        if learn_gates:
            groups.append(dict(params=model.gates, lr=self.a.gate_lr, weight_decay=0.0, base_lr=self.a.gate_lr))
        return groups

    def run_stage(self, model, stage, gated, epochs, train, dev, state, files, teacher):
        a = self.a
        learn_gates = gated and not a.freeze_gates
        for g in model.gates:
            g.requires_grad_(learn_gates)
        ddp = DistributedDataParallel(model) if self.world > 1 else model
        optimizer = torch.optim.AdamW(self.param_groups(model, learn_gates), betas=(0.9, 0.999), eps=1e-8)
        if state.get("optimizer") is not None:
            optimizer.load_state_dict(state.pop("optimizer"))
        batches = (len(train) + a.batch_size - 1) // a.batch_size
        total = batches * epochs
        warmup = round(a.warmup * total)
        lam = a.lam if learn_gates else 0.0
        mu = (a.mu if a.mu is not None else a.lam) if learn_gates else 0.0
        self.log(f"stage {stage + 1}: " + ("training under frozen gates" if gated and not learn_gates else
                 f"gate training, lambda {lam}, mu {mu}, gate lr {a.gate_lr}" if gated else "dense fine-tuning")
                 + f", {epochs} epochs, {self.world} process(es)")
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for epoch in range(state["epoch"], epochs):
            order = torch.randperm(len(train), generator=torch.Generator().manual_seed(
                a.seed * 1_000_003 + stage * 10_007 + epoch + 1)).tolist()
            clock = time.time()
            for b in range(state["batch"], batches):
                step = state["step"]
                # Dropout differs per process and step, and a resume continues the same sequence.
                torch.manual_seed(a.seed * 7919 + stage + 1 + 104_729 * self.rank + 15_485_863 * step)
                global_indices = order[b * a.batch_size:(b + 1) * a.batch_size]
                local = global_indices[self.rank::self.world]
                # A process without examples in a short last batch still takes part, with weight 0.
                weight = len(local) * self.world / len(global_indices)
                ids, types, lengths, labels, scores = self.batch(train, local or global_indices[:1])
                model.train()
                logits, _ = ddp(ids, types, lengths, use_gates=gated, dropout=DROPOUT)
                if self.task.is_regression:
                    task_loss = F.mse_loss(logits[:, 0], scores)
                elif teacher is not None and gated:
                    with torch.no_grad():
                        probs = torch.softmax(teacher.hard_forward(ids, types, lengths, use_gates=False)[0], 1)
                    targets = a.distill * probs + (1 - a.distill) * F.one_hot(labels, logits.shape[1])
                    task_loss = -(targets * torch.log_softmax(logits, 1)).sum(1).mean()
                else:
                    task_loss = F.cross_entropy(logits, labels)
                loss = task_loss * (weight if local else 0.0)
                if model.has_gates and learn_gates:
                    ramp = min(1.0, 2.0 * step / total) if total > 0 else 1.0
                    loss = loss + lam * gate_l1(model.gates) + mu * ramp * gate_bimodal(model.gates)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], MAX_GRAD_NORM)
                factor = step / warmup if step < warmup else max(0.0, (total - step) / max(1, total - warmup))
                for group in optimizer.param_groups:
                    group["lr"] = group["base_lr"] * factor
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                with torch.no_grad():
                    # The projection after every step, as EdgeBert's GateOps.ProjectGates: clipped to [0, 1]
                    # (METHOD.md point 1), rank 0 ([CLS], always kept) held at 1.
                    for g in model.gates:
                        g.clamp_(0.0, 1.0)
                        g[0] = 1.0
                value = loss.detach().clone()
                if self.world > 1:
                    dist.all_reduce(value)
                state.update(step=step + 1, batch=b + 1, loss_sum=state["loss_sum"] + value.item() / self.world,
                             loss_count=state["loss_count"] + 1)
                if a.save_every and state["step"] % a.save_every == 0 and b + 1 < batches:
                    self.save_resume(model, files, dict(state, epoch=epoch), optimizer)
            self.end_of_epoch(model, stage, gated, epoch, epochs, dev, state, files, time.time() - clock)
            state.update(epoch=epoch + 1, batch=0, loss_sum=0.0, loss_count=0)
            self.save_resume(model, files, state, optimizer)

    def end_of_epoch(self, model, stage, gated, epoch, epochs, dev, state, files, seconds):
        if self.rank == 0:
            hard, kept_share = self.evaluate(model, dev, soft=False)
            main = hard[self.task.main_metric]
            save = epoch + 1 == epochs if gated else main > state["best"]
            train_loss = state["loss_sum"] / max(1, state["loss_count"])
            line = (f"stage {stage + 1} epoch {epoch + 1}: train loss {train_loss:.4f}, dev "
                    + ", ".join(f"{k} {v:.4f}" for k, v in hard.items()) + f" ({seconds:.0f} s)")
            if gated:
                soft, _ = self.evaluate(model, dev, soft=True)
                gates = torch.cat([g.detach().cpu() for g in model.gates])
                line += (" (hard), " + ", ".join(f"{k} {v:.4f}" for k, v in soft.items())
                         + f" (soft); mean gate {gates.mean():.3f}, m_j {model.kept_counts()}, "
                         + f"tokens kept {100 * kept_share:.1f}%")
            if save:
                state["best"] = main
                self.save(model, self.a.out, files)
            print(line + (" -> saved" if save else ""), flush=True)
        best = torch.tensor([state["best"]], dtype=torch.float64)
        if self.world > 1:
            dist.broadcast(best, 0)
        state["best"] = best.item()

    def main(self):
        a = self.a
        torch.set_num_threads(a.threads)
        resume_dir = os.path.join(a.out, RESUME_FOLDER)
        resuming = a.resume and os.path.exists(os.path.join(resume_dir, STATE_FILE))
        state = dict(stage=0, epoch=0, batch=0, step=0, loss_sum=0.0, loss_count=0, best=-math.inf, optimizer=None)
        if resuming:
            state = torch.load(os.path.join(resume_dir, STATE_FILE))
            settings = state.pop("settings")
            changed = [k for k in SETTINGS if settings.get(k) != getattr(a, k)]
            if changed:
                sys.exit(f"error: --resume with other settings than the saved run: {', '.join(changed)}")
        model, vocab_path, files = self.load_init(resume_dir if resuming else a.init)
        fine_tuned = not resuming and self.classifies(model)
        if not resuming:
            model = self.prepare_head(model)
        if a.gates is not None and a.gate_threshold is not None:
            model.config["gate_threshold"] = a.gate_threshold
        if a.freeze_gates and not resuming:
            if not model.has_gates:
                sys.exit(f"error: --freeze-gates needs a gated --init model; {a.init} has no gates")
            counts = model.kept_counts()
            with torch.no_grad():
                for g, m in zip(model.gates, counts):
                    g.copy_((torch.arange(g.numel()) < m).float())
            self.log(f"gates frozen at the kept counts m_j {counts}")
        model.to(self.device)
        teacher = None
        if a.distill > 0:
            if self.task.is_regression or a.init.startswith("random:"):
                sys.exit(f"error: --distill needs --init to be a model fine-tuned on {self.task.name}")
            teacher = from_pretrained(a.init).to(self.device).eval()
        vocab = wordpiece.read_vocab(vocab_path)
        max_length = min(a.max_len, model.config["max_position_embeddings"])
        train = glue.read(self.task, os.path.join(a.data, "train.tsv"))[: a.max_train]
        train = self.encode(train, vocab, max_length)
        dev = self.encode(glue.read(self.task, os.path.join(a.data, self.task.dev_file)), vocab, max_length)
        self.log(f"{self.task.name}: {len(train)} training and {len(dev)} dev examples, max length {max_length}")
        # A resumed run keeps its stage list: its model now classifies the task, which would drop the dense stage.
        stages = state.get("stages") or ([False] if a.gates is None else [True] if a.gates == "one-stage" or fine_tuned
                                         else [False, True])
        for s in range(state["stage"], len(stages)):
            if stages[s] and not model.has_gates:
                positions = a.gate_positions or model.config.get("gate_positions", 128)
                if a.max_len > positions:
                    sys.exit(f"error: --max-len {a.max_len} exceeds --gate-positions {positions}: "
                             "every rank needs a gate")
                model.add_gates(positions)
            if s != state["stage"]:
                state = dict(stage=s, epoch=0, batch=0, step=0, loss_sum=0.0, loss_count=0, best=-math.inf,
                             optimizer=None)
            state["stages"] = stages
            self.run_stage(model, s, stages[s], a.epochs, train, dev, state, files, teacher)
        self.log(f"done: best checkpoint in {a.out}")
        if self.world > 1:
            dist.destroy_process_group()


def main(argv=None):
    Run(parse(argv)).main()


if __name__ == "__main__":
    main()
