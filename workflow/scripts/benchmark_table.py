"""Read an MMAU / MMAR / demo question file into the common benchmark table."""
from lalm_eval.logs import log_to
from lalm_eval.suites.knowledge.jobs import prepare_benchmark, write_benchmark_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]) as log:
    json_path, audio_root = sm.params.paths
    table = prepare_benchmark(sm.params.kind, json_path, audio_root)
    write_benchmark_table(table, sm.output.table)
    problems = table[table["problem"].astype(bool)]
    log.info("%d questions, %d with a problem (recorded per item)", len(table), len(problems))
    noted = table[table["note"].astype(bool)]
    log.info("%d with a note (kept as the official script scores them): %s", len(noted),
             "; ".join(f"{i}: {n}" for i, n in zip(noted["item_id"], noted["note"], strict=True))
             or "none")
