"""Command line: `lalm-eval <command>` for the things people run outside Snakemake."""

from __future__ import annotations

import argparse
import json
import logging
import sys


def _validate(args: argparse.Namespace) -> int:
    from lalm_eval.config import ConfigError, load_config

    try:
        load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{args.config}: valid")
    return 0


def _corpora(args: argparse.Namespace) -> int:
    from lalm_eval.corpora.registry import load_registry

    for name, entry in load_registry().items():
        pinned = all(f.pinned for f in entry.files) if entry.files else False
        print(f"{name:22s} {entry.version:18s} {entry.licence:14s} "
              f"files={len(entry.files):3d} pinned={'yes' if pinned else 'no'}")
    return 0


def _adapters(args: argparse.Namespace) -> int:
    from lalm_eval.models.base import ModelError
    from lalm_eval.models.registry import ADAPTERS, allowed_options

    for name, target in sorted(ADAPTERS.items()):
        try:
            keys = allowed_options(name)
            options = "free-form" if keys is None else ", ".join(sorted(keys))
        except ModelError as exc:
            options = f"unavailable ({exc})"
        print(f"{name:24s} {target}  options: {options}")
    return 0


def _infer_job(args: argparse.Namespace) -> int:
    """Run one inference job of any suite kind described by a JSON file: ``suite`` (name,
    kind, plugins) plus the fields of :class:`lalm_eval.suites.base.InferenceJob`."""
    from lalm_eval.suites import suite_from_params
    from lalm_eval.suites.base import InferenceJob

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with open(args.job) as handle:
        spec = json.load(handle)
    suite = suite_from_params(spec.pop("suite"))
    summary = suite.run_inference(InferenceJob(**spec, progress=False))
    print(json.dumps(summary.__dict__))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lalm-eval", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("validate-config", help="validate a config file")
    check.add_argument("config")
    check.set_defaults(func=_validate)
    commands.add_parser("corpora", help="list the corpus registry").set_defaults(func=_corpora)
    commands.add_parser("adapters", help="list model adapters").set_defaults(func=_adapters)
    job = commands.add_parser("infer-job", help="run one inference job from a JSON spec")
    job.add_argument("job")
    job.set_defaults(func=_infer_job)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
