"""Inspect tab: one evaluation's pair table, optionally beside a compared run's Δ of the same pairs, and
one pair opened (click its row) to show why the model prefers a response, how each gradient-regime flag
comes about, and, once the run's translations were evaluated, what the base model and the adapter wrote;
then that pair under every run of a study, side by side (the paper's Fig. 8)."""

from __future__ import annotations

import html
from dataclasses import asdict

import gradio as gr

from app.charts import HEATMAP_SCALE, token_heatmap_html, word_diff_html
from app.charts_pair import PairHistory, history_chart, plane_or_why, study_delta_chart
from app.common import markdown_text, run_choices, shows_errors, table
from app.inline import KEEP, existing_run, resetting_errors, whole_id
from app.inspect_pairs import (
    FLAGS,
    PAIR_COLUMNS,
    compare_step,
    filter_rows,
    pair_columns,
    regimes_markdown,
    step_note,
    study_pair_html,
    study_pair_note,
    table_note,
    with_comparison,
)
from app.runs_compare import run_colour, run_names
from app.tab_studies import study_choices
from capo_lab.errors import LabError
from capo_lab.records import PairDetail


def numbers_markdown(detail: PairDetail) -> str:
    """The pair's scores as Markdown; its direction, from the dataset, is escaped to show literally."""
    s = detail.score
    lines = [
        f"**Pair {int(detail.pair_id)}** · {markdown_text(detail.direction)} · "
        f"run #{int(detail.run_id)}, step {int(detail.step)}",
        "",
        "| | chosen (post-edit) | rejected (MT) |",
        "| --- | --- | --- |",
        f"| log-prob | {s.logp_chosen:.3f} | {s.logp_rejected:.3f} |",
        f"| tokens | {s.n_tokens_chosen} | {s.n_tokens_rejected} |",
        f"| per-token mean | {s.logp_chosen / s.n_tokens_chosen:.3f} | "
        f"{s.logp_rejected / s.n_tokens_rejected:.3f} |",
    ]
    if s.ref_logp_chosen is not None:
        lines.append(f"| reference log-prob | {s.ref_logp_chosen:.3f} | {s.ref_logp_rejected:.3f} |")
    lines += [
        "",
        f"Δ = lw − ll = {s.logp_chosen - s.logp_rejected:.3f} · RRM = lw/ll = {s.rrm:.4f} · "
        f"loss = {s.loss:.4f} · reward margin = {s.reward_margin:.4f}",
        "",
        "| term | dL/dlw | dL/dll |",
        "| --- | --- | --- |",
    ]
    for term in s.grad_chosen:
        lines.append(f"| {term} | {s.grad_chosen[term]:+.5f} | {s.grad_rejected[term]:+.5f} |")
    lines.append(f"| **total** | {sum(s.grad_chosen.values()):+.5f} | {sum(s.grad_rejected.values()):+.5f} |")
    lines.append("")
    lines.append("dL/dlw > 0 means a gradient step *lowers* the post-edit's likelihood (chosen pushed down).")
    return "\n".join(lines)


def detail_json(detail: PairDetail) -> dict:
    """The detail as plain data for the JSON view, without the per-token arrays."""
    data = asdict(detail)
    data.pop("tokens")
    data["score"] = {k: v for k, v in data["score"].items() if not k.endswith("_token_logps")}
    return data


def pair_html(detail: PairDetail) -> str:
    """Source, word diff and token heatmaps as HTML; every text from the dataset is HTML-escaped."""
    parts = [
        f"<h4>Source</h4><p>{html.escape(detail.source)}</p>",
        "<h4>MT → post-edit (word diff)</h4>",
        word_diff_html(detail.rejected, detail.chosen),
    ]
    tokens = detail.tokens
    if tokens:
        parts += [
            HEATMAP_SCALE,
            "<h4>Chosen (post-edit), per-token log-prob</h4>",
            token_heatmap_html(tokens.chosen_tokens, tokens.chosen_logps, detail.chosen),
            "<h4>Rejected (MT), per-token log-prob</h4>",
            token_heatmap_html(tokens.rejected_tokens, tokens.rejected_logps, detail.rejected),
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


def compared_rows(service, rows: list[dict], at: int, other_id: int | None) -> tuple[list[dict], str]:
    """The rows with the compared run's Δ at ``at`` (or its nearest step), and the line that says which."""
    if other_id is None:
        return rows, ""
    shown = compare_step(at, service.score_steps(other_id))
    theirs = [asdict(r) for r in service.pair_table(other_id, shown)] if shown is not None else []
    return with_comparison(rows, theirs, other_id), step_note(other_id, at, shown)


def pair_table_view(service, run_id, at, direction: str, flags: list[str], other) -> list:
    """[the pair table (hidden when nothing matches), the line above it saying what is shown or why not]."""
    if not run_id or at is None:  # the note keeps what the last action said (a failure, say)
        return [gr.Dataframe(value=table([], PAIR_COLUMNS), visible=True), gr.skip()]
    other_id = int(other) if other else None
    rows = [asdict(r) for r in service.pair_table(int(run_id), int(at))]
    rows, note = compared_rows(service, rows, int(at), other_id)
    kept = filter_rows(rows, direction.strip(), flags)
    line = " ".join(
        filter(None, [table_note(len(kept), len(rows), direction.strip(), flags, bool(other)), note])
    )
    frame = table(kept, pair_columns(other_id)).round(4)
    return [gr.Dataframe(value=frame, visible=bool(kept)), markdown_text(line)]


def compared_pair(service, other, pair_id: int, at: int, configs: dict) -> tuple[str, str, list[PairHistory]]:
    """The compared run's numbers, regimes and texts at ``at`` (else its nearest step, said so) and its
    history; a line instead when it has no scores for the pair."""
    if not other:
        return "", "", []
    oid = int(other)
    shown = compare_step(at, service.score_steps(oid))
    note = markdown_text(step_note(oid, at, shown))
    if shown is None:
        return note, "", []
    try:
        b = service.pair_detail(oid, int(pair_id), shown)
    except LabError as err:
        return markdown_text(err), "", []
    regimes = regimes_markdown(configs[oid]["objective"], b.score)
    numbers = "\n\n".join(filter(None, [note, numbers_markdown(b), regimes]))
    return numbers, pair_html(b), [PairHistory(run_names(configs)[oid], run_colour(oid), b.history, shown)]


def open_pair(service, run_id, at, pair_id, other) -> list:
    """Every output of an opened pair: its detail, numbers, texts, translations, history beside the
    compared run's, its regimes explained and its place on CAPO's (ll, lw) plane, the compared run's side."""
    if not run_id or pair_id is None:
        raise LabError("choose a run, an evaluation step and a pair")
    rid = int(run_id)
    detail = service.pair_detail(rid, int(pair_id), int(at) if at is not None else "last")
    configs = service.run_configs([rid, *([int(other)] if other else [])])
    objective, score = configs[rid]["objective"], detail.score
    numbers_b, view_b, theirs = compared_pair(service, other, int(pair_id), detail.step, configs)
    ours = PairHistory(run_names(configs)[rid], run_colour(rid), detail.history, detail.step)
    return [
        detail_json(detail),
        numbers_markdown(detail),
        pair_html(detail),
        translations_html(service.pair_translations(rid, int(pair_id))),
        history_chart([ours, *theirs]),
        regimes_markdown(objective, score),
        plane_or_why(objective, score.logp_chosen, score.logp_rejected),
        numbers_b,
        view_b,
    ]


STUDY_HINT = "Pick a study and open a pair (or type its id above) to see it under every run of the study."


def study_pair_view(service, study_id, pair_id, step: str) -> list:
    """[the line, one column per run, the chart of Δ per run] of the pair across the study's runs; the
    hint, or one line when no run has the pair, with the chart hidden."""
    if not study_id or not pair_id:  # the pair id box shows 0 until a pair is opened
        return [STUDY_HINT, "", gr.Plot(value=None, visible=False)]
    at = (step or "").strip() or "last"
    found = service.study_pair(int(study_id), int(pair_id), at)
    chart = gr.Plot(value=study_delta_chart(found.runs) if found.runs else None, visible=bool(found.runs))
    return [study_pair_note(found, at), study_pair_html(found), chart]


def kept_pick(choices: list[tuple[str, int]], current):
    """``current`` while it is still among ``choices``, else None (Gradio would pick the first)."""
    return current if current in [value for _, value in choices] else None


def study_dropdown(service, current=None) -> gr.Dropdown:
    """The studies to pick from, keeping ``current`` while it is one."""
    choices = study_choices(service)
    return gr.Dropdown(choices=choices, value=kept_pick(choices, current))


def build_study_section(service, tab, pair_id, opened) -> None:
    """The opened (or typed) pair under every run of a picked study; shown again as another pair opens.
    A failure says why in the line and clears the columns and the chart of the previous pair."""
    gr.Markdown("### Across a study: this pair under every run")
    with gr.Row():
        study = gr.Dropdown(study_choices(service), value=None, label="Study", elem_id="inspect-study")
        step = gr.Textbox("last", label="Step of each run (last, first or a number)", elem_id="study-step")
        show = gr.Button("Show the pair across the study", elem_id="study-pair-button")
    note = gr.Markdown(elem_id="study-pair-note")
    outputs = [gr.HTML(elem_id="study-pair-view"), gr.Plot(elem_id="study-pair-chart", visible=False)]

    @resetting_errors(["", gr.update(value=None, visible=False)])  # an update: a component would be drawn
    def across(*args):
        note, view, chart = study_pair_view(service, *args)
        return view, chart, note

    for trigger in (study.change, step.submit, show.click, opened.change):
        trigger(across, [study, pair_id, step], [*outputs, note])
    tab.select(lambda current: study_dropdown(service, current), study, study)


def selected_pair_id(evt: gr.SelectData, shown) -> int:
    """The pair id of the clicked row (its first cell), as shown, whatever the table's sort."""
    if evt.row_value:
        return int(evt.row_value[0])
    return int(shown.iloc[evt.index[0]]["pair_id"])


def build(service) -> None:
    with gr.Tab("Inspect", id="inspect") as tab:
        with gr.Row():
            run = gr.Dropdown(run_choices(service), value=None, label="Run", elem_id="inspect-run")
            step = gr.Dropdown([], label="Evaluation step", elem_id="inspect-step")
            compare = gr.Dropdown(  # empty until picked: Gradio would otherwise select the first run
                run_choices(service),
                value=None,
                label="Compare with run (optional)",
                elem_id="inspect-compare",
            )
        with gr.Row():
            direction = gr.Textbox(label="Direction (e.g. en-de)")
            flags = gr.CheckboxGroup(FLAGS, label="Only pairs that are", elem_id="pair-flags")
        note = gr.Markdown(elem_id="pairs-note")
        pairs = gr.Dataframe(
            interactive=False,
            elem_id="pairs-table",
            max_height=360,
            label="Pairs (sort by clicking a header; click a row to open the pair)",
        )
        with gr.Row():
            pair_id = gr.Number(label="Pair id", precision=0, elem_id="pair-id")
            open_btn = gr.Button("Open pair by id", variant="primary", elem_id="open-pair")
        pair_status = gr.Markdown(elem_id="pair-status")  # why a pair did not open
        with gr.Row():
            with gr.Column():
                numbers = gr.Markdown(elem_id="pair-numbers")
                regimes = gr.Markdown(elem_id="pair-regimes")
                view = gr.HTML(elem_id="pair-view")
                generated = gr.HTML(elem_id="pair-translations")
            with gr.Column():
                numbers_b = gr.Markdown(elem_id="compare-numbers")
                view_b = gr.HTML(elem_id="compare-view")
        with gr.Row():
            history, plane = gr.Plot(elem_id="pair-history"), gr.Plot(elem_id="regime-plane")
        detail_json = gr.JSON(visible=False)
        build_study_section(service, tab, pair_id, detail_json)
        outputs = [detail_json, numbers, view, generated, history, regimes, plane, numbers_b, view_b]
        wire_table(service, tab, [run, step, direction, flags, compare], pairs, note)
        wire_pair(service, [run, step, pair_id, compare, pairs], open_btn, outputs, pair_status)
        build_api(service)


def wire_table(service, tab, inputs: list, pairs: gr.Dataframe, note: gr.Markdown) -> None:
    """A run's steps and the pair table: a failure says why in the note above the table, and empties
    the table (and, for a run, its steps), so no pair of another run or step stays to be opened."""
    run, step, direction, flags, compare = inputs
    # updates, not components: a component made here would be drawn at the tab's end (an empty table and
    # a "Dropdown" under the study section)
    empty = gr.update(value=table([], PAIR_COLUMNS), visible=True)

    @resetting_errors([gr.update(choices=[], value=None), empty])
    def on_run(run_id, direction_text, flag_list, other):
        steps = service.score_steps(int(run_id), "eval") if run_id else []
        at = steps[-1] if steps else None
        shown, line = pair_table_view(service, run_id, at, direction_text, flag_list, other)
        if at is None:  # nothing to show: no line left from an earlier run or failure
            line = "No eval pair scores for this run yet." if run_id else ""
        return gr.Dropdown(choices=steps, value=at), shown, line

    run.change(on_run, [run, direction, flags, compare], [step, pairs, note])

    def listed(*picked) -> list[gr.Dropdown]:
        """New runs appear; the current picks stay while their runs exist."""
        choices = run_choices(service)
        return [gr.Dropdown(choices=choices, value=kept_pick(choices, p)) for p in picked]

    tab.select(listed, [run, compare], [run, compare])
    show_table = resetting_errors([empty])(lambda *args: pair_table_view(service, *args))
    for trigger in (step.change, direction.submit, flags.change, compare.change):
        trigger(show_table, inputs, [pairs, note])


def wire_pair(service, inputs: list, open_btn: gr.Button, outputs: list, status: gr.Markdown) -> None:
    """Opening a pair (a row clicked, an id typed, another run compared): a failure says why under the
    button and clears the previously opened pair, which would otherwise pass for this one."""
    run, step, pair_id, compare, pairs = inputs
    cleared = [None, "", "", "", None, "", None, "", ""]  # as ``outputs``: nothing opened

    @resetting_errors([KEEP, *cleared])
    def on_select(evt: gr.SelectData, shown, run_id, at, other):
        pid = selected_pair_id(evt, shown)
        return [pid, *open_pair(service, run_id, at, pid, other), ""]

    pairs.select(on_select, [pairs, run, step, compare], [pair_id, *outputs, status])
    opens = resetting_errors(cleared)(lambda *args: [*open_pair(service, *args), ""])
    open_btn.click(opens, [run, step, pair_id, compare], [*outputs, status])

    @resetting_errors(cleared)
    def on_compare(run_id, at, pid, other, opened):
        """A pair already open is shown again beside the newly compared run."""
        if not opened:
            return [*[gr.skip()] * len(outputs), gr.skip()]
        return [*open_pair(service, run_id, at, pid, other), ""]

    compare.change(on_compare, [run, step, pair_id, compare, outputs[0]], [*outputs, status])


def build_api(service) -> None:
    """The named endpoint ``pair_detail(run_id, pair_id, step="last")``: the pair's detail as JSON. Ids
    are whole numbers checked when called, so runs created after the server started are reachable."""

    @shows_errors  # hidden components: no content to lose, and an API caller gets the one line
    def pair_detail(run_id: float, pair_id: float, step: str = "last") -> dict:
        rid, pid = existing_run(service, run_id), whole_id("pair id", pair_id)
        return detail_json(service.pair_detail(rid, pid, str(step or "last").strip() or "last"))

    inputs = [gr.Number(visible=False), gr.Number(visible=False), gr.Textbox("last", visible=False)]
    button, out = gr.Button(visible=False), gr.JSON(visible=False)
    button.click(pair_detail, inputs, out, api_name="pair_detail")
