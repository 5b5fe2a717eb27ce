"""GLUE task files as EdgeBert.Training reads them (GlueTask, GlueReader, Metrics): the official TSV layouts
(tab-separated, no quoting, a header line except CoLA), HuggingFace label order, and each task's metrics."""
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    name: str
    labels: tuple  # empty: regression
    metrics: tuple
    main_metric: str
    text_a: str
    text_b: str
    label: str
    fixed_columns: tuple = None  # the column names of a headerless file
    dev_file: str = "dev.tsv"

    @property
    def is_regression(self):
        return not self.labels

    @property
    def num_labels(self):
        return 1 if self.is_regression else len(self.labels)

    @property
    def label_names(self):
        """The config's id2label values for this task's head."""
        return ["score"] if self.is_regression else list(self.labels)


BINARY, ENTAIL = ("0", "1"), ("entailment", "not_entailment")
TASKS = [
    Task("SST-2", BINARY, ("accuracy",), "accuracy", "sentence", None, "label"),
    Task("CoLA", BINARY, ("mcc",), "mcc", "sentence", None, "label",
         fixed_columns=("source", "label", "original_label", "sentence")),
    Task("MRPC", BINARY, ("accuracy", "f1"), "f1", "#1 String", "#2 String", "Quality"),
    Task("QQP", BINARY, ("accuracy", "f1"), "f1", "question1", "question2", "is_duplicate"),
    Task("STS-B", (), ("pearson", "spearman"), "spearman", "sentence1", "sentence2", "score"),
    Task("MNLI", ("contradiction", "entailment", "neutral"), ("accuracy",), "accuracy", "sentence1", "sentence2",
         "gold_label", dev_file="dev_matched.tsv"),
    Task("QNLI", ENTAIL, ("accuracy",), "accuracy", "question", "sentence", "label"),
    Task("RTE", ENTAIL, ("accuracy",), "accuracy", "sentence1", "sentence2", "label"),
    Task("WNLI", BINARY, ("accuracy",), "accuracy", "sentence1", "sentence2", "label"),
]


def get_task(name):
    key = name.replace("-", "").replace("_", "").lower()
    for task in TASKS:
        if task.name.replace("-", "").lower() == key:
            return task
    raise ValueError(f"unknown GLUE task '{name}'; known tasks: {', '.join(t.name for t in TASKS)}")


def read(task, path):
    """[(text_a, text_b or None, label index or -1, score or nan)]; malformed rows raise ValueError."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    lines = text.lstrip("\ufeff").rstrip("\r\n").split("\n")
    columns = list(task.fixed_columns) if task.fixed_columns else None
    examples = []
    for number, line in enumerate(lines, 1):
        fields = line.rstrip("\r").split("\t")
        if columns is None:
            columns = fields
            continue
        if len(fields) != len(columns):
            raise ValueError(f"{path}: line {number}: expected {len(columns)} columns, found {len(fields)}")
        row = dict(zip(columns, fields))
        a, b, label = row[task.text_a], row[task.text_b] if task.text_b else None, row[task.label]
        if task.is_regression:
            examples.append((a, b, -1, float(label)))
        elif label in task.labels:
            examples.append((a, b, task.labels.index(label), math.nan))
        else:
            raise ValueError(f"{path}: line {number}: unknown {task.name} label '{label}'")
    return examples


def _pearson(x, y):
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx, syy = sum((a - mx) ** 2 for a in x), sum((b - my) ** 2 for b in y)
    return 0.0 if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)


def _ranks(x):
    """Average ranks of ties, as Spearman's correlation wants."""
    order = sorted(range(len(x)), key=lambda i: x[i])
    ranks = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def _mcc(pred, gold):
    """Gorodkin's R_K (for two classes the usual Matthews correlation); 0 when a side has one class."""
    classes = max(max(pred), max(gold)) + 1
    n = len(pred)
    pc, gc = [pred.count(k) for k in range(classes)], [gold.count(k) for k in range(classes)]
    correct = sum(p == g for p, g in zip(pred, gold))
    cov = correct * n - sum(p * g for p, g in zip(pc, gc))
    vp, vg = n * n - sum(p * p for p in pc), n * n - sum(g * g for g in gc)
    return 0.0 if vp == 0 or vg == 0 else cov / math.sqrt(vp * vg)


def metrics(task, predictions, golds):
    """predictions: class indices (or scores for regression); golds the same."""
    out = {}
    for name in task.metrics:
        if name == "accuracy":
            out[name] = sum(p == g for p, g in zip(predictions, golds)) / len(golds)
        elif name == "f1":
            tp = sum(p == 1 and g == 1 for p, g in zip(predictions, golds))
            fp = sum(p == 1 and g != 1 for p, g in zip(predictions, golds))
            fn = sum(p != 1 and g == 1 for p, g in zip(predictions, golds))
            out[name] = 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)
        elif name == "mcc":
            out[name] = _mcc(list(predictions), list(golds))
        elif name == "pearson":
            out[name] = _pearson(predictions, golds)
        else:
            out[name] = _pearson(_ranks(predictions), _ranks(golds))
    return out
