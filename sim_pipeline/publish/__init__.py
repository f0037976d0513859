"""Publication: disclosure control (`disclosure`), what is released and how (`release`, which
builds the release from `release_evaluation`, `release_headline`, `release_linkage` and
`release_costs`, with its catalogue in `release_catalogue` and its cells in `release_cells`; its
files on disk in `release_files`) and the HTML evaluation report (`report`, drawn from the
Jinja2 templates in ``templates/`` with the values of `report_design`, `report_tables`,
`report_charts` and `report_cells`; every chart is drawn in `charts`)."""
