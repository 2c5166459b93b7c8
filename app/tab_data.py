"""Data tab: fetch named sources, upload or pick MTPE files, build pairs, preview, statistics."""

from __future__ import annotations

import gradio as gr

from app.charts import bar_chart
from app.common import dataset_choices, shows_errors
from app.tables import datasets_frame, pairs_frame, sources_frame, stats_frame


def build(service) -> None:
    with gr.Tab("Data", id="data") as tab:
        source_table = _sources_section(service)
        with gr.Row():
            with gr.Column(scale=2):
                uploads = gr.File(
                    label="Upload MTPE files (MLQE-PE .tar.gz, DivEMT .tsv, JSONL/CSV/TSV/Parquet)",
                    file_count="multiple",
                    type="filepath",
                )
                picked = gr.Dropdown(
                    service.data_files(), multiselect=True, label="…or pick files from the data folders"
                )
            with gr.Column(scale=1):
                name = gr.Textbox(label="Dataset name", placeholder="paper8")
                per_direction = gr.Number(100, precision=0, minimum=1, label="Pairs per direction per split")
                min_chars = gr.Number(50, precision=0, minimum=0, label="Keep sources longer than (chars)")
                seed = gr.Number(0, precision=0, label="Split seed")
                with gr.Row():
                    keep_ties = gr.Checkbox(False, label="Keep ties (PE = MT)")
                    strict = gr.Checkbox(False, label="Strict")
                    detok = gr.Checkbox(True, label="Detokenise MLQE-PE")
                import_btn = gr.Button("Import", variant="primary", elem_id="import-button")
        import_result = gr.JSON(label="Import result")
        gr.Markdown("### Datasets")
        datasets = gr.Dataframe(
            datasets_frame(service.datasets()), interactive=False, elem_id="datasets-table"
        )
        with gr.Row():
            chosen = gr.Dropdown(dataset_choices(service), label="Dataset", allow_custom_value=False)
            split = gr.Dropdown(["", "train", "eval", "validation"], value="train", label="Split")
            direction = gr.Textbox(label="Direction filter (e.g. en-de)")
            tokenizer = gr.Dropdown(
                ["", "tiny-random-llama", "gemma-3-270m"],
                value="",
                allow_custom_value=True,
                label="Tokenizer for tokens/char",
            )
        show_btn = gr.Button("Show")
        preview = gr.Dataframe(interactive=False, wrap=True, max_height=400, label="Pairs")
        stats = gr.Dataframe(interactive=False, label="Per-direction statistics")
        with gr.Row():
            quality = gr.Plot(label="MT vs post-edit")
            rate = gr.Plot(label="Tokenisation rate")

        @shows_errors
        def do_import(
            files,
            picks,
            name,
            n,
            min_chars,
            seed,
            keep_ties,
            strict,
            detok,
            progress=gr.Progress(),  # noqa: B008  (Gradio injects it)
        ):
            progress(0.1, desc="reading and building pairs")
            result = service.import_dataset(
                name, picks or [], files or [], n, min_chars, seed, keep_ties, strict, detok
            )
            progress(1.0)
            names = dataset_choices(service)
            summary = {
                "dataset_id": result.dataset_id,
                "name": result.name,
                "pairs": result.pair_count,
                "counts": result.report.counts,
                "shortfalls": result.report.shortfalls,
            }
            return summary, datasets_frame(service.datasets()), gr.Dropdown(choices=names, value=result.name)

        import_btn.click(
            do_import,
            [uploads, picked, name, per_direction, min_chars, seed, keep_ties, strict, detok],
            [import_result, datasets, chosen],
            api_name="import_dataset",
        )

        @shows_errors
        def do_show(dataset, split, direction, tokenizer):
            if not dataset:
                raise gr.Error("choose a dataset")
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
                "Tokens per character of the post-edits",
            )
            return (
                pairs_frame(service.preview(dataset, split, direction.strip())),
                stats_frame(rows),
                quality_fig,
                rate_fig,
            )

        tab.select(
            lambda: [
                datasets_frame(service.datasets()),
                gr.Dropdown(choices=dataset_choices(service)),
                sources_frame(service.sources()),
            ],
            None,
            [datasets, chosen, source_table],
        )
        show_btn.click(do_show, [chosen, split, direction, tokenizer], [preview, stats, quality, rate])
        _model_input_section(service, chosen)


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
        rendered = gr.Textbox(
            label="Prompt, chosen, rejected", lines=14, interactive=False, elem_id="rendered"
        )

    @shows_errors
    def do_render(name, pid, model_name, template_name):
        if not name or pid is None:
            raise gr.Error("choose a dataset and a pair id")
        return model_input_text(service.render_pair(name, int(pid), model_name, template_name))

    render_btn.click(do_render, [dataset, pair_id, model, template], rendered)


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
        fetched = gr.Textbox(label="Fetch result", lines=2, interactive=False)

    @shows_errors
    def do_fetch(picked):
        return "\n".join(service.fetch_sources(picked or [])), sources_frame(service.sources())

    fetch_btn.click(do_fetch, [names], [fetched, rows], api_name="fetch_sources")
    return rows
