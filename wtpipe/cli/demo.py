"""``wtpipe demo [--out DIR] [key=value ...]``: the whole pipeline on the bundled clip, as one report.

Ingests the bundled real clip, pretrains DoRA with the tiny recipe (configs/dora_tiny_cpu.yaml,
shipped inside the package; method.name=dino or method.name=swav trains that method's tiny
recipe instead), scores the trained backbone against random initialisation (k-NN,
object discovery, the [CLS] attention's overlap with objects) and writes DIR/report.md with its
pictures. Re-running the same command after
Ctrl-C, SIGTERM or a kill continues where it stopped; key=value overrides the recipe.
"""

from __future__ import annotations

import os
import sys

from wtpipe.cli import make_parser, setup_logging
from wtpipe.config import ConfigError


def main(argv: list[str] | None = None, prog: str = "wtpipe-demo") -> int:
    parser = make_parser(prog, __doc__)
    parser.add_argument("--out", default="demo", help="output directory (default ./demo)")
    parser.add_argument(
        "--config",
        help="another training recipe (default: the packaged tiny recipe of method.name, DoRA)",
    )
    parser.add_argument(
        "--device", default="cpu", help="torch device of the evaluations (default cpu)"
    )
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="skip the reference run (DINO + KoLeo, the tiny recipe that beats random init here)",
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="recipe overrides, e.g. optim.epochs=2"
    )
    args = parser.parse_intermixed_args(argv)
    setup_logging()
    from wtpipe.demo import run as demo
    from wtpipe.engine.checkpoint import ResumeError

    try:
        result = demo.run_demo(
            args.out,
            args.config or demo.recipe_for(args.overrides),
            args.overrides,
            args.device,
            reference=not args.no_reference,
        )
    except demo.DemoStopped as err:
        print(f"{prog}: {err}; re-run the same command to continue", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; re-run the same command to continue", file=sys.stderr)
        return 130
    except (ConfigError, ResumeError, FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    print(f"wtpipe demo: done in {result.seconds:.0f} s")
    names = demo.series_names(result.configs)
    for task, metric, label in demo.HEADLINE:
        print(
            f"  {label:<28}"
            + "".join(
                f"   {names[name]} {scores[task][metric]:5.1f}"
                for name, scores in result.metrics.items()
            )
        )
    for name, config in result.configs.items():
        print(f"  {name}: {demo.describe(config)}: {demo.verdict(result.metrics, name)}")
        if result.train[name]["collapsed"]:
            print(
                f"  warning: the {name} run collapsed ({', '.join(result.train[name]['collapsed'])})"
            )
    print(f"  report: {os.path.join(result.out, 'report.md')}")
    for title, paths in ((t, p) for t, p in result.pictures.items() if p):
        print(f"  {title}: {', '.join(paths[:2])}{' ...' if len(paths) > 2 else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
