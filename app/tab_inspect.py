"""Inspect tab: one evaluation's pair table, and one pair opened to show why the model prefers a response
and, once the run's translations were evaluated, what the base model and the trained adapter wrote."""

from __future__ import annotations

import html
from dataclasses import asdict

import gradio as gr
import plotly.graph_objects as go

from app.charts import token_heatmap_html, word_diff_html
from app.common import markdown_text, run_choices, shows_errors, table

PAIR_COLUMNS = [
    "pair_id",
    "direction",
    "lw",
    "ll",
    "delta",
    "rrm",
    "loss",
    "reward_margin",
    "dl_dlw",
    "ambiguous",
    "flipped",
    "chosen_pushed_down",
]


def filter_rows(rows: list[dict], direction: str, flags: list[str]) -> list[dict]:
    """Keep rows of ``direction`` (all when empty) that have every flag in ``flags``."""
    return [r for r in rows if (not direction or r["direction"] == direction) and all(r[f] for f in flags)]


def numbers_markdown(detail: dict) -> str:
    """The pair's scores as Markdown; its direction, from the dataset, is escaped to show literally."""
    s = detail["score"]
    lines = [
        f"**Pair {int(detail['pair_id'])}** · {markdown_text(detail['direction'])} · "
        f"run #{int(detail['run'])}, step {int(detail['step'])}",
        "",
        "| | chosen (post-edit) | rejected (MT) |",
        "| --- | --- | --- |",
        f"| log-prob | {s['logp_chosen']:.3f} | {s['logp_rejected']:.3f} |",
        f"| tokens | {s['n_tokens_chosen']} | {s['n_tokens_rejected']} |",
        f"| per-token mean | {s['logp_chosen'] / s['n_tokens_chosen']:.3f} | "
        f"{s['logp_rejected'] / s['n_tokens_rejected']:.3f} |",
    ]
    if s["ref_logp_chosen"] is not None:
        lines.append(f"| reference log-prob | {s['ref_logp_chosen']:.3f} | {s['ref_logp_rejected']:.3f} |")
    lines += [
        "",
        f"Δ = lw − ll = {s['logp_chosen'] - s['logp_rejected']:.3f} · RRM = lw/ll = {s['rrm']:.4f} · "
        f"loss = {s['loss']:.4f} · reward margin = {s['reward_margin']:.4f}",
        "",
        "| term | dL/dlw | dL/dll |",
        "| --- | --- | --- |",
    ]
    for term in s["grad_chosen"]:
        lines.append(f"| {term} | {s['grad_chosen'][term]:+.5f} | {s['grad_rejected'][term]:+.5f} |")
    lines.append(
        f"| **total** | {sum(s['grad_chosen'].values()):+.5f} | {sum(s['grad_rejected'].values()):+.5f} |"
    )
    lines.append("")
    lines.append("dL/dlw > 0 means a gradient step *lowers* the post-edit's likelihood (chosen pushed down).")
    return "\n".join(lines)


def pair_html(detail: dict) -> str:
    """Source, word diff and token heatmaps as HTML; every text from the dataset is HTML-escaped."""
    parts = [
        f"<h4>Source</h4><p>{html.escape(detail['source'])}</p>",
        "<h4>MT → post-edit (word diff)</h4>",
        word_diff_html(detail["rejected"], detail["chosen"]),
    ]
    tokens = detail.get("tokens")
    if tokens:
        parts += [
            "<h4>Chosen (post-edit), per-token log-prob</h4>",
            token_heatmap_html(tokens["chosen_tokens"], tokens["chosen_logps"]),
            "<h4>Rejected (MT), per-token log-prob</h4>",
            token_heatmap_html(tokens["rejected_tokens"], tokens["rejected_logps"]),
        ]
    return "".join(parts)


NO_TRANSLATIONS_HTML = (
    "<p>No generated translations for this pair yet: click <em>Evaluate translations</em> in the Runs tab "
    "(or launch with train.generate_at_end).</p>"
)


def translations_html(found) -> str:
    """The pair's generated translations (a ``PairTranslations`` or None) beside the MT and the post-edit:
    each with its sentence chrF against the post-edit and a word diff to it; every text HTML-escaped."""
    if found is None:
        return NO_TRANSLATIONS_HTML
    pe = found.post_edit
    rows = [
        _translation_row("post-edit (reference)", pe, None, None),
        _translation_row("MT", found.mt, found.chrf_mt, pe),
        _translation_row("base model", found.base, found.chrf_base, pe),
        _translation_row("trained adapter", found.trained, found.chrf_trained, pe),
    ]
    head = "<tr><th></th><th>translation</th><th>chrF</th><th>word diff to the post-edit</th></tr>"
    body = "".join(rows)
    return (
        f"<h4>Generated translations (greedy; adapter at step {int(found.step)}, "
        f"{html.escape(found.split)} split; chrF against the post-edit)</h4>"
        f'<table class="translations">{head}{body}</table>'
    )


def _translation_row(name: str, text: str | None, chrf: float | None, diff_to: str | None) -> str:
    if text is None:
        return f"<tr><td>{name}</td><td colspan=3><em>not generated</em></td></tr>"
    score = "" if chrf is None else f"{chrf:.1f}"
    diff = "" if diff_to is None else word_diff_html(text, diff_to)
    return f"<tr><td>{name}</td><td>{html.escape(text)}</td><td>{score}</td><td>{diff}</td></tr>"


def history_figure(detail: dict) -> go.Figure:
    history = detail["history"]
    fig = go.Figure(
        go.Scatter(
            x=[h["step"] for h in history],
            y=[h["delta"] for h in history],
            mode="lines+markers",
            name="Δ = lw − ll",
        )
    )
    fig.add_hline(y=0, line_dash="dot", line_color="grey")
    fig.update_layout(title="This pair across evaluations", xaxis_title="step", height=280)
    return fig


def build(service) -> None:
    with gr.Tab("Inspect", id="inspect") as tab:
        rows_state = gr.State([])
        with gr.Row():
            run = gr.Dropdown(run_choices(service), label="Run", elem_id="inspect-run")
            step = gr.Dropdown([], label="Evaluation step", elem_id="inspect-step")
            direction = gr.Textbox(label="Direction (e.g. en-de)")
            flags = gr.CheckboxGroup(
                ["ambiguous", "flipped", "chosen_pushed_down"], label="Only pairs that are"
            )
        pairs = gr.Dataframe(
            interactive=False,
            elem_id="pairs-table",
            max_height=360,
            label="Pairs (sort by clicking a header; click a row to open it)",
        )
        with gr.Row():
            pair_id = gr.Number(label="Pair id", precision=0, elem_id="pair-id")
            compare = gr.Dropdown(run_choices(service), label="Compare with run (optional)")
            open_btn = gr.Button("Open pair", variant="primary", elem_id="open-pair")
        with gr.Row():
            with gr.Column():
                numbers = gr.Markdown(elem_id="pair-numbers")
                view = gr.HTML(elem_id="pair-view")
                generated = gr.HTML(elem_id="pair-translations")
                history = gr.Plot()
            with gr.Column():
                numbers_b = gr.Markdown()
                view_b = gr.HTML()
        detail_json = gr.JSON(visible=False)

        @shows_errors
        def on_run(run_id):
            steps = service.score_steps(int(run_id), "eval") if run_id else []
            return gr.Dropdown(choices=steps, value=steps[-1] if steps else None)

        run.change(on_run, run, step)
        tab.select(lambda: [gr.Dropdown(choices=run_choices(service))] * 2, None, [run, compare])

        @shows_errors
        def on_step(run_id, at, direction, flags):
            if not run_id or at is None:
                return [], table([], PAIR_COLUMNS)
            rows = [asdict(r) for r in service.pair_table(int(run_id), int(at))]
            return rows, table(filter_rows(rows, direction.strip(), flags), PAIR_COLUMNS).round(4)

        for trigger in (step.change, direction.submit, flags.change):
            trigger(on_step, [run, step, direction, flags], [rows_state, pairs])

        def on_select(evt: gr.SelectData, shown):
            return int(shown.iloc[evt.index[0]]["pair_id"])

        pairs.select(on_select, pairs, pair_id)

        @shows_errors
        def pair_detail(run_id, at, pid, other):
            if not run_id or pid is None:
                raise gr.Error("choose a run, an evaluation step and a pair")
            detail = service.pair_detail(int(run_id), int(pid), int(at) if at is not None else "last")
            side = ("", "")
            if other:
                b = service.pair_detail(int(other), int(pid), "last")
                side = (numbers_markdown(b), pair_html(b))
            translations = translations_html(service.pair_translations(int(run_id), int(pid)))
            return (
                detail,
                numbers_markdown(detail),
                pair_html(detail),
                translations,
                history_figure(detail),
                *side,
            )

        open_btn.click(
            pair_detail,
            [run, step, pair_id, compare],
            [detail_json, numbers, view, generated, history, numbers_b, view_b],
            api_name="pair_detail",
        )
