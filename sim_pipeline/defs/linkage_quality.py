"""The linkage-quality report asset (GUILD/RECORD measures, implausible links, chart) beside its
tables linkage_link_rates and linkage_implausible. Wiring only: the logic is in
`sim_pipeline.identity.linkage_quality`."""

from pathlib import Path

import dagster as dg

from sim_pipeline.defs.automation import DOWNSTREAM_AUTOMATION
from sim_pipeline.defs.checks import Check, Write, write_or_refuse
from sim_pipeline.defs.common import DATA_QUALITY, figure_metadata, table_metadata, table_spec
from sim_pipeline.defs.reads import recorded_death_dates, staged_for_linkage
from sim_pipeline.defs.resources import LinkageResource, WarehouseResource
from sim_pipeline.identity import linkage_quality as lq
from sim_pipeline.identity.person_index import (
    linkage_rows,
)
from sim_pipeline.publish.charts import linkage_quality_figure
from sim_pipeline.publish.release_linkage import controlled_link_rates, controlled_shares

GROUP = "identity"
# What the linkage-quality measures read of the encodings: the NHS-number token (two NHS
# numbers from one provider) and sex. Not the name filters and other tokens (most of a staged
# row's bytes), which only matching needs.
QUALITY_ENCODINGS = ["nhs_number_token", "person_sex"]


# Persons with an implausible link over persons with several records, above which the check
# fails: linkage is joining different people.
IMPLAUSIBLE_LINK_RATE_LIMIT = 0.01
IMPLAUSIBLE_LINK_RATE = Check(
    "implausible_link_rate",
    "Persons with an implausible link (a record after their death, two NHS numbers from one "
    "provider, or two dates of death), as a share of persons with more than one record, is at "
    f"most {IMPLAUSIBLE_LINK_RATE_LIMIT:.0%}. Above it, linkage is joining different people "
    "and every downstream metric would be wrong.",
    blocking=True,
)
_QUALITY_DEPS = [
    dg.AssetKey(k) for k in ("person_index", "linkage_threshold_curve", "linkage_weight_histogram")
]


@dg.multi_asset(
    name="linkage_quality",
    specs=[
        dg.AssetSpec(
            "linkage_quality",
            description=(
                "Linkage quality reported as GUILD/RECORD recommend: the share of each source's "
                "records linked to another source (overall and by age band, sex and borough), "
                "the match-weight distribution, how many links each threshold would give, "
                "implausible links (activity after death, two NHS numbers from one provider, "
                "two dates of death) and how linked and unlinked records differ. Aggregates "
                "only. A report (metadata and a chart), not a table: its figures are in "
                "linkage_link_rates and linkage_implausible."
            ),
            deps=_QUALITY_DEPS,
            group_name=GROUP,
            owners=[DATA_QUALITY],
            kinds={"python", "pandas", "matplotlib"},
            automation_condition=DOWNSTREAM_AUTOMATION,
        ),
        table_spec(
            "linkage_link_rates",
            "Share of each source group's records linked to another source group, overall and "
            "by age band, sex and borough (the linked-record rates GUILD asks for).",
            deps=_QUALITY_DEPS,
            group_name=GROUP,
            owners=[DATA_QUALITY],
        ),
        table_spec(
            "linkage_implausible",
            "Implausible links by kind (a record after the person's death, two NHS numbers "
            "from one provider, two dates of death): counts of persons, the evidence that "
            "linkage joined different people.",
            deps=_QUALITY_DEPS,
            group_name=GROUP,
            owners=[DATA_QUALITY],
        ),
    ],
    check_specs=[IMPLAUSIBLE_LINK_RATE.spec("linkage_quality")],
    can_subset=False,
)
def linkage_quality(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, linkage: LinkageResource
):
    wh = warehouse.get()
    index = wh.read("person_index")
    rows, _ = linkage_rows(staged_for_linkage(wh, QUALITY_ENCODINGS))
    mpi = recorded_death_dates(wh)
    attrs = lq.record_attributes(rows)
    linked = lq.linked_records(index, attrs)  # joined once for both
    rates = lq.link_rates(index, attrs, linked)
    versus = lq.linked_vs_unlinked(index, attrs, linked)
    implausible, flagged = lq.implausible_links(index, rows, mpi)
    sizes = index.groupby("person_key").size()
    multi = int((sizes > 1).sum())
    rate = len(flagged) / multi if multi else 0.0
    curve = wh.read("linkage_threshold_curve")
    hist = wh.read("linkage_weight_histogram")
    # judged after writing: the report's tables show what was found; the blocking check then
    # holds everything downstream of linkage back
    written = yield from write_or_refuse(
        wh,
        context,
        [Write("linkage_link_rates", rates), Write("linkage_implausible", implausible)],
        rows_in=len(index),
        rows_out=len(rates) + len(implausible),
        rows_rejected=len(flagged),
        note="rows_in: person_index rows; rows_out: link-rate and implausible rows; "
        "rows_rejected: persons with an implausible link",
        stage="linkage_quality",
    )
    chart = figure_metadata(
        linkage_quality_figure(rates, curve, hist),
        Path(linkage.reports_dir) / "linkage_quality.png",
        "linkage quality",
    )
    rates_overall = rates[rates["dimension"] == "overall"]
    yield dg.MaterializeResult(
        asset_key="linkage_link_rates",
        data_version=written.data_version("linkage_link_rates"),
        metadata={"dagster/row_count": len(rates)},
    )
    yield dg.MaterializeResult(
        asset_key="linkage_implausible",
        data_version=written.data_version("linkage_implausible"),
        metadata={"dagster/row_count": len(implausible)},
    )
    yield dg.MaterializeResult(
        asset_key="linkage_quality",
        data_version=written.data_version("linkage_quality"),
        metadata={
            **written.metadata,
            "link_rate_by_source": table_metadata(controlled_link_rates(rates_overall)),
            "implausible_links": table_metadata(implausible),
            "implausible_link_rate": round(rate, 5),
            "threshold_curve": table_metadata(curve),
            "linked_vs_unlinked": table_metadata(
                controlled_shares(versus, "records", ["dimension", "status"])
            ),
            "charts": chart,
            "chart_file": dg.MetadataValue.path(
                str(Path(linkage.reports_dir) / "linkage_quality.png")
            ),
        },
        check_results=[
            IMPLAUSIBLE_LINK_RATE.result(
                rate <= IMPLAUSIBLE_LINK_RATE_LIMIT,
                metadata={
                    "persons_flagged": len(flagged),
                    "persons_with_several_records": multi,
                    "rate": round(rate, 5),
                    "limit": IMPLAUSIBLE_LINK_RATE_LIMIT,
                },
            )
        ],
    )
    context.log.info(f"linkage_quality: implausible-link rate {rate:.4%}")
