"""`manage.py train_ranker [--cases F --qrels F] [--no-desk] [--write]`: refit the ranker's weights.

Fits on judged evaluation cases and on the help desk's own signals (resolved cases, votes),
prints cross-validated figures for the weights in use and for the refit, and writes
kb/search/ranker.json (and the query adapter beside it) only with --write.
"""

from dataclasses import replace
from datetime import date
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from kb.search import ranking, semantic, training


class Command(BaseCommand):
    help = "Refit the search ranker's weights on judged cases and the help desk's signals."

    def add_arguments(self, parser: CommandParser) -> None:
        default = Path(settings.KB_EVAL_DIR)
        parser.add_argument("--cases", type=Path, default=default / "errors-dev.jsonl",
                            help="Judged cases, one JSON object a line (default: KB_EVAL_DIR/errors-dev.jsonl).")
        parser.add_argument("--qrels", type=Path, default=default / "qrels-dev.jsonl",
                            help="Graded judgments for them; without the file, the cases' own gold labels.")
        parser.add_argument("--no-desk", action="store_true", help="Leave out the help desk's resolved cases and votes.")
        parser.add_argument("--l2", type=float, default=training.L2, help="Regularisation strength.")
        parser.add_argument("--write", action="store_true", help=f"Write the new weights to {ranking.WEIGHTS_FILE}.")

    def handle(self, *args, cases: Path, qrels: Path, no_desk: bool, l2: float, write: bool, **options) -> None:
        judged = training.load_judged(cases, qrels if qrels.is_file() else None) if cases.is_file() else []
        desk = [] if no_desk else training.desk_judged()
        self.stdout.write(f"{len(judged)} judged case(s) from {cases if judged else 'no evaluation file'}, "
                          f"{len(desk)} from the help desk")
        if not judged and not desk:
            raise CommandError("nothing to train on: no evaluation file and no resolved cases or votes")
        if semantic.available():  # the adapter is fitted on the vectors of the model pastes are embedded by
            self.stdout.write(f"pastes embedded by {semantic.build_query_model()}")
        adapters = training.Adapters(judged + desk)
        in_use = ranking.shipped_ranker()
        # The weights in use rank every case with their own adapter; a refit's figures are
        # cross-validated, its adapter and cascades fitted without the case's fold.
        data = training.featurise(judged, dict.fromkeys((c.id for c in judged), in_use.adapter))
        modes = {"semantic": data, "lexical": training.without_semantic(data)}
        for mode, evaluated in modes.items():
            if not evaluated:
                continue
            self.stdout.write(f"{mode} model: candidate recall {training.candidate_recall(evaluated):.3f}")
            shipped = {d.case.id: training.ranked_keys(d, in_use.cascade(mode == "semantic" and d.semantic_ran))
                       for d in evaluated}
            self.stdout.write("  weights in use (fitted on these cases)   "
                              + training.describe(training.metrics(judged, shipped)))
            if mode == "semantic":
                crossed = training.cross_validate(judged, desk, l2=l2, adapters=adapters)
            else:
                signals = training.without_semantic(training.featurise(desk))
                crossed = training.cross_validate_rows(evaluated, signals, l2=l2)
            self.stdout.write(f"  refit, {training.FOLDS}-fold cross-validated   "
                              + training.describe(training.metrics(judged, crossed)))
        fitted = training.train(judged + desk, l2=l2, adapters=adapters)
        for stage in ("first", "head"):
            model = getattr(fitted.semantic, stage)
            self.stdout.write(f"{stage} model's weights (semantic cascade):")
            for name, weight in sorted(zip(model.features, model.weights), key=lambda x: -abs(x[1])):
                self.stdout.write(f"  {name:28} {weight:+.3f}")
        self.stdout.write("query adapter: " + ("none (no embedded answers)" if fitted.adapter is None else
                          f"fitted on {len(adapters.answers)} case(s) with an embedded answer"))
        if write:
            fitted = replace(fitted, meta={
                "fitted": date.today().isoformat(), "cases": len(judged), "desk_cases": len(desk), "l2": l2,
            })
            fitted.save(ranking.WEIGHTS_FILE)
            self.stdout.write(f"wrote {ranking.WEIGHTS_FILE}")
        else:
            self.stdout.write("not written (use --write)")
