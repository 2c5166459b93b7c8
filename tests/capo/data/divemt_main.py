"""A small TSV in the shape of DivEMT's main set, for the reader and fetch tests."""

from __future__ import annotations

import csv
from pathlib import Path

# The header of DivEMT's released TSVs with Stanza annotations: read from data/warmup.zip of
# github.com/gsarti/divemt at commit 6c024b4 ("Added Stanza annotations"); main.tsv and warmup.tsv
# are written by the same code (that repository's README), and 'lang_id' really appears twice.
# The Hub's copy (huggingface.co/datasets/GroNLP/divemt, main.tsv) adds the two QE-tag columns that
# its loader divemt.py lists last in _ALL_FIELDS: src_wmt22_qe and mt_wmt22_qe.
MAIN_COLUMNS = (
    "unit_id flores_id item_id subject_id task_type translation_type src_len_chr mt_len_chr tgt_len_chr "
    "src_len_wrd mt_len_wrd tgt_len_wrd edit_time k_total k_letter k_digit k_white k_symbol k_nav k_erase "
    "k_copy k_cut k_paste k_do n_pause_geq_300 len_pause_geq_300 n_pause_geq_1000 len_pause_geq_1000 "
    "event_time num_annotations last_modification_time n_insert n_delete n_substitute n_shift "
    "tot_shifted_words tot_edits hter cer bleu chrf lang_id doc_id time_s time_m time_h time_per_char "
    "time_per_word key_per_char words_per_hour words_per_minute per_subject_visit_order src_text mt_text "
    "tgt_text lang_id aligned_edit src_tokens src_annotations mt_tokens mt_annotations tgt_tokens "
    "tgt_annotations src_wmt22_qe mt_wmt22_qe"
).split()

SOURCE = "The committee said on Tuesday that the new rules would apply from next year."
ROWS = [
    # (lang_id, task_type, mt_text, tgt_text, hter in percent)
    ("ita", "pe1", "Il comitato ha detto martedì che le regole si applicano dal prossimo anno.",
     "Il comitato ha detto martedì che le nuove regole si applicheranno dal prossimo anno.", "25.0"),
    ("ara", "pe2", "قالت اللجنة يوم الثلاثاء إن القواعد ستطبق.",
     "قالت اللجنة يوم الثلاثاء إن القواعد الجديدة ستطبق اعتبارا من العام المقبل.", "50.0"),
    ("tur", "ht", "", "Komite salı günü yeni kuralların gelecek yıl geçerli olacağını söyledi.", ""),
]  # fmt: skip


def write_main_tsv(path: Path) -> Path:
    """Three rows with every main.tsv column: two post-edits (ita, ara) and one translation from scratch."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(MAIN_COLUMNS)
        for number, (lang, task, mt, tgt, hter) in enumerate(ROWS):
            values = {"unit_id": f"flores101-main-{lang}-{number}", "lang_id": lang, "task_type": task}
            values |= {"src_text": SOURCE, "mt_text": mt, "tgt_text": tgt, "hter": hter, "doc_id": "1"}
            values["src_annotations"] = "[{'id': 1, 'text': 'The', 'upos': 'DET', 'feats': 'Definite=Def'}]"
            writer.writerow([values.get(column, "0") for column in MAIN_COLUMNS])
    return path
