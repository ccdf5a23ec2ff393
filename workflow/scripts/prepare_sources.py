"""Resample and loudness-normalise every source of one (suite, role) once."""
from lalm_eval.logs import log_to, notice
from lalm_eval.source_store import PrepareSettings, prepare_sources

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]) as log:
    role = sm.wildcards.role
    settings = PrepareSettings(
        sample_rate=sm.params.audio["sample_rate"],
        target_lufs=sm.params.loudness[f"{role}_lufs"],
        min_duration_s=sm.params.loudness["min_duration_s"],
    )
    prefix = sm.output.samples[: -len(".f32")]
    summary = prepare_sources(sm.input.tables, prefix, settings, threads=sm.threads,
                              on_bad=sm.params.loudness["on_bad_source"])
    log.info("prepared %s %s: %s", sm.wildcards.suite, role, summary)
    if summary.n_rejected:
        notice(f"{sm.wildcards.suite} {role}: {summary.n_rejected} source file(s) rejected, "
               f"listed with the reason in {prefix}.rejected.csv")
