"""Data tab: fetch named sources, upload or pick MTPE files, build pairs, preview, statistics.

Every action answers in a status line beside its button; a failed action leaves the tables and the
dataset list as they were (``app.common.inline_errors``). A failed import also clears the previous
import's result and the files picked or uploaded, so that only the new error shows and the next click
does not import those files again."""

from __future__ import annotations

import gradio as gr

from app.charts import bar_chart
from app.common import FormProblems, dataset_choices, inline_errors, markdown_text
from app.inline import KEEP, resetting_errors
from app.tables import (
    PAIR_COLUMNS,
    datasets_frame,
    pairs_frame,
    preview_pair_html,
    sources_frame,
    stats_frame,
)

UPLOAD_LABEL = "Upload MTPE files (MLQE-PE .tar.gz, DivEMT .tsv, JSONL/CSV/TSV/Parquet)"
# The service's import fields (``ImportProblem.field``) in this tab's words.
IMPORT_FIELDS = {
    "name": "Dataset name",
    "files": "Upload MTPE files or pick files from the data folders",
    "columns": "Column names",
    "direction": "Direction of files without one",
    "per_direction": "Pairs per direction per split",
    "min_source_chars": "Keep sources longer than (chars)",
}
PICK_A_ROW = "Click a row of the pairs to see its source, MT and post-edit side by side, with their diff."


def column_map(src: str | None, mt: str | None, pe: str | None) -> dict[str, str]:
    """The file's own column names for src / mt / pe; a blank box keeps the reader's name."""
    given = {"src": src, "mt": mt, "pe": pe}
    return {role: name.strip() for role, name in given.items() if name and name.strip()}


def check_import(service, name, picks, files, columns, n, min_chars, direction=None) -> None:
    """FormProblems naming every field the import cannot go ahead with, in this tab's words."""
    found = service.import_problems(
        name or "", picks, files, columns, int(n or 0), int(min_chars or 0), direction
    )
    if found:
        raise FormProblems([(IMPORT_FIELDS.get(p.field, p.field), p.message) for p in found])


def import_summary(result) -> tuple[dict, str]:
    """The import result's JSON and its status line."""
    summary = {
        "dataset_id": result.dataset_id,
        "name": result.name,
        "pairs": result.pair_count,
        "counts": result.report.counts,
        "shortfalls": result.report.shortfalls,
    }
    return summary, f"Imported dataset **{markdown_text(result.name)}**: {result.pair_count} pairs."


def selected_pair(evt: gr.SelectData, shown) -> dict:
    """The clicked row of the pairs table under its headers, as shown, whatever the table's sort."""
    if evt.row_value:
        return dict(zip(PAIR_COLUMNS, evt.row_value, strict=False))
    return shown.iloc[evt.index[0]].to_dict()


def _file_inputs(service) -> list[gr.components.Component]:
    """Uploads, picked files, and how to read tabular files: column names and a default direction."""
    uploads = gr.File(label=UPLOAD_LABEL, file_count="multiple", type="filepath", elem_id="upload-files")
    picked = gr.Dropdown(
        service.data_files(),
        multiselect=True,
        label="…or pick files from the data folders",
        elem_id="data-files-pick",
    )
    with gr.Accordion("Column names and direction (JSONL / CSV / TSV / Parquet files)", open=False):
        gr.Markdown("The file's own column names, where they are not `src`, `mt` and `pe`.")
        with gr.Row():
            src = gr.Textbox(label="Source column", placeholder="src", elem_id="src-column")
            mt = gr.Textbox(label="MT column", placeholder="mt", elem_id="mt-column")
            pe = gr.Textbox(label="Post-edit column", placeholder="pe", elem_id="pe-column")
        direction = gr.Textbox(label="Direction of files without one (e.g. en-de)", placeholder="en-de")
    return [uploads, picked, src, mt, pe, direction]


def _build_inputs() -> list[gr.components.Component]:
    """The dataset's name and the build options."""
    name = gr.Textbox(label="Dataset name", placeholder="paper8")
    # No minimum= on these: Gradio would refuse an out-of-range value itself, with a red badge over every
    # output and a traceback in the log; the import's own check reports it inline with the other fields.
    per_direction = gr.Number(100, precision=0, label="Pairs per direction per split")
    min_chars = gr.Number(50, precision=0, label="Keep sources longer than (chars)")
    seed = gr.Number(0, precision=0, label="Split seed")
    with gr.Row():
        keep_ties = gr.Checkbox(False, label="Keep ties (PE = MT)")
        strict = gr.Checkbox(False, label="Strict")
        detok = gr.Checkbox(True, label="Detokenise MLQE-PE")
    return [name, per_direction, min_chars, seed, keep_ties, strict, detok]


def importer(service):
    """The Import button's action: outputs the import result, the datasets table, the dataset dropdown,
    the uploads and the picked files, then the status line. A failure clears the result and the files."""

    @resetting_errors([None, KEEP, KEEP, None, gr.update(value=[])])
    def do_import(
        uploads,
        picks,
        src,
        mt,
        pe,
        direction,
        name,
        n,
        min_chars,
        seed,
        keep_ties,
        strict,
        detok,
        progress=gr.Progress(),  # noqa: B008  (Gradio injects it)
    ):
        columns = column_map(src, mt, pe)
        check_import(service, name, picks or [], uploads or [], columns, n, min_chars, direction)
        progress(0.1, desc="reading and building pairs")
        result = service.import_dataset(
            name,
            picks or [],
            uploads or [],
            per_direction=n,
            min_source_chars=min_chars,
            seed=int(seed or 0),
            keep_ties=keep_ties,
            strict=strict,
            detokenize=detok,
            default_direction=(direction or "").strip() or None,
            columns=columns,
        )
        progress(1.0)
        summary, status = import_summary(result)
        names = gr.Dropdown(choices=dataset_choices(service), value=result.name)
        return summary, datasets_frame(service.datasets()), names, gr.skip(), gr.skip(), status

    return do_import


def demo_load():
    """The enclosing Blocks' load event (a page opened or reloaded)."""
    return gr.context.Context.root_block.load


def build(service) -> None:
    with gr.Tab("Data", id="data") as tab:
        source_table = _sources_section(service)
        with gr.Row():
            with gr.Column(scale=2):
                files = _file_inputs(service)
            with gr.Column(scale=1):
                options = _build_inputs()
                import_btn = gr.Button("Import", variant="primary", elem_id="import-button")
        import_status = gr.Markdown(elem_id="import-status")
        import_result = gr.JSON(label="Import result", elem_id="import-result")
        gr.Markdown("### Datasets")
        datasets = gr.Dataframe(
            datasets_frame(service.datasets()), interactive=False, elem_id="datasets-table"
        )
        chosen = gr.Dropdown(
            dataset_choices(service), label="Dataset", allow_custom_value=False, elem_id="dataset-choice"
        )

        uploads, picked = files[:2]
        import_btn.click(
            importer(service),
            [*files, *options],
            [import_result, datasets, chosen, uploads, picked, import_status],
            api_name="import_dataset",
        )

        def refresh():
            return [
                datasets_frame(service.datasets()),
                gr.Dropdown(choices=dataset_choices(service)),
                sources_frame(service.sources()),
            ]

        # On every page load too: Data is the first tab, so a fresh page never "selects" it, and the
        # components would otherwise show the lists as they were when the app was built.
        gr.on([tab.select, demo_load()], refresh, None, [datasets, chosen, source_table])
        _preview_section(service, chosen)
        _model_input_section(service, chosen)


def shower(service):
    """The Show button's action: outputs the pairs, the pair view (reset), the statistics and both
    charts (the tokens-per-character one only once a tokenizer is chosen), then the status line."""

    @inline_errors(outputs=5)
    def do_show(dataset, split, direction, tokenizer):
        if not dataset:
            raise FormProblems([("Dataset", "choose a dataset")])
        rows = service.stats(dataset, split or None, tokenizer or None)
        directions = [r.direction for r in rows]
        quality_fig = bar_chart(
            directions,
            {"BLEU": [r.bleu for r in rows], "chrF": [r.chrf for r in rows]},
            "MT vs post-edit (Fig. 7)",
        )
        rate_fig = bar_chart(
            directions,
            {"tokens per char": [r.tokens_per_char for r in rows]},
            f"Tokens per character of the post-edits ({tokenizer})",
        )
        return (
            pairs_frame(service.preview(dataset, split, direction.strip())),
            PICK_A_ROW,
            stats_frame(rows),
            quality_fig,
            gr.Plot(rate_fig, visible=True) if tokenizer else gr.Plot(None, visible=False),
            "",
        )

    return do_show


def _preview_section(service, chosen: gr.Dropdown) -> None:
    """A dataset's pairs (a row opens side by side with its diff), statistics and their charts."""
    with gr.Row():
        split = gr.Dropdown(["", "train", "eval", "validation"], value="train", label="Split")
        direction = gr.Textbox(label="Direction filter (e.g. en-de)")
        tokenizer = gr.Dropdown(
            ["", "tiny-random-llama", "gemma-3-270m"],
            value="",
            allow_custom_value=True,
            label="Tokenizer for tokens/char",
        )
    with gr.Row():
        show_btn = gr.Button("Show", elem_id="show-button", scale=1)
        show_status = gr.Markdown(elem_id="show-status")
    preview = gr.Dataframe(
        pairs_frame([]), interactive=False, wrap=True, max_height=400, label="Pairs", elem_id="preview-table"
    )
    pair_view = gr.HTML(PICK_A_ROW, elem_id="preview-pair")
    stats = gr.Dataframe(stats_frame([]), interactive=False, label="Per-direction statistics")
    with gr.Row():
        quality = gr.Plot(label="MT vs post-edit")
        rate = gr.Plot(label="Tokenisation rate", visible=False)  # shown once a tokenizer is chosen

    show_btn.click(
        shower(service),
        [chosen, split, direction, tokenizer],
        [preview, pair_view, stats, quality, rate, show_status],
    )

    def on_pick(evt: gr.SelectData, shown):
        row = selected_pair(evt, shown)
        return preview_pair_html(
            str(row["source"]), str(row["rejected (MT)"]), str(row["chosen (post-edit)"])
        )

    preview.select(on_pick, preview, pair_view)


def model_input_text(record) -> str:
    """A rendered pair as plain text: each part's exact text, token count and ids."""
    lines = [f"pair {record.pair_id} · {record.direction} · {record.split} · template {record.chat_template}"]
    for label, part in (("prompt", record.prompt), ("chosen", record.chosen), ("rejected", record.rejected)):
        scored = "not scored" if label == "prompt" else "scored"
        lines += ["", f"{label} — {len(part.ids)} tokens, {scored}", part.text, f"ids: {list(part.ids)}"]
    return "\n".join(lines)


def _model_input_section(service, dataset: gr.Dropdown) -> None:
    """One pair exactly as the trainer feeds it, under a model's tokenizer and a chat template."""
    with gr.Accordion("Model input of one pair (as the trainer feeds it)", open=False):
        with gr.Row():
            pair_id = gr.Number(label="Pair id (from the Pairs table)", precision=0)
            model = gr.Dropdown(
                ["gemma-3-270m", "tiny-random-llama"],
                value="gemma-3-270m",
                allow_custom_value=True,
                label="Model",
            )
            template = gr.Dropdown(["none", "zephyr", "model"], value="zephyr", label="Chat template")
            render_btn = gr.Button("Render", elem_id="render-button")
        render_status = gr.Markdown(elem_id="render-status")
        rendered = gr.Textbox(
            label="Prompt, chosen, rejected", lines=14, interactive=False, elem_id="rendered"
        )

    @inline_errors(outputs=1)
    def do_render(name, pid, model_name, template_name):
        missing = [("Dataset", "choose a dataset")] if not name else []
        missing += [("Pair id (from the Pairs table)", "give a pair id")] if pid is None else []
        if missing:
            raise FormProblems(missing)
        return model_input_text(service.render_pair(name, int(pid), model_name, template_name)), ""

    render_btn.click(do_render, [dataset, pair_id, model, template], [rendered, render_status])


def _sources_section(service) -> gr.Dataframe:
    """The named sources (MLQE-PE, DivEMT): what each is, whether fetched or mirrored, and a fetch button."""
    with gr.Accordion(
        "Named sources (fetch here, then pick them as files below; CLI: capo-lab data fetch)", open=False
    ):
        rows = gr.Dataframe(sources_frame(service.sources()), interactive=False, elem_id="sources-table")
        with gr.Row():
            names = gr.Dropdown(
                [r.name for r in service.sources()], multiselect=True, label="Sources to fetch", scale=3
            )
            fetch_btn = gr.Button("Fetch", elem_id="fetch-button", scale=1)
        fetch_status = gr.Markdown(elem_id="fetch-status")
        fetched = gr.Textbox(label="Fetch result", lines=2, interactive=False)

    @inline_errors(outputs=2)
    def do_fetch(picked):
        if not picked:
            raise FormProblems([("Sources to fetch", "choose the sources to fetch")])
        return "\n".join(service.fetch_sources(picked)), sources_frame(service.sources()), ""

    fetch_btn.click(do_fetch, [names], [fetched, rows, fetch_status], api_name="fetch_sources")
    return rows
