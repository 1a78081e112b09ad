"""The ``recommender`` command: a thin face over the library.

Each subcommand parses its options, calls one domain function and prints the
result (a short human summary, or one JSON object with ``--json``). Every
engine error becomes ``Error: <one line>`` and exit status 1. The commands live
in one module per concern; none of them imports another, and none imports the
HTTP server except ``serve``, lazily.
"""

from __future__ import annotations

import sys

import click

from recommender import __version__
from recommender.cli import campaign, coldstart, data, privacy, reports, rules, serving, sessions, training, value
from recommender.cli.common import EngineGroup


@click.group(cls=EngineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="recommender")
def cli() -> None:
    """Consent-aware product recommendations for shops.

    Typical first run: init, load-sample (or import your own CSVs), train
    --publish, serve.
    """


for command in (
    data.init,
    data.load_sample,
    data.import_group,
    data.import_transactions,
    data.stats,
    data.export_interactions,
    data.checklist,
    training.train,
    training.evaluate,
    training.select,
    training.tune,
    training.models,
    sessions.sessions,
    coldstart.coldstart,
    serving.serve,
    serving.keys,
    privacy.consent,
    privacy.forget,
    privacy.export_customer,
    privacy.prune,
    privacy.resignup,
    campaign.campaign,
    reports.report,
    value.value,
    value.segments,
    rules.rules,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="recommender")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
