"""The paper's downstream benchmarks (§3.4, §4.5, Appendix A and C): M-IFEval, XLSum, multilingual MT-Bench.

- ``items``: the suites, their languages, and parsers from each upstream file layout to frozen items;
- ``catalogue``: the named source files of each suite (fetched by ``capo_lab.benchmark_sources``);
- ``ifeval`` / ``ifeval_checks``: rule-checked instruction following, strict and loose;
- ``rouge``: ROUGE-L with per-language tokenisation;
- ``prompts``: the judge prompts (paper Fig. 11; FastChat's MT-Bench single-answer grading) and verdicts;
- ``paired``: two arms on the same items, through ``capo.analysis.stats``;
- ``study``: a study report's section per suite (every pair of arms, the judge against the base);
- ``suites``: per-suite scoring, each suite's decoding as the paper gives it, and per-answer seeds;
- ``render``: a conversation as model input under the run's template, and its stop strings.
"""
