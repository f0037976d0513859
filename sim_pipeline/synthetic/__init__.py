"""Synthetic provider drops and their ground truth for the programme evaluation.

``generate(out_dir, truth_dir, seed=..., people=..., true_effect=..., comparison_people=...)``
writes ``out_dir/<provider>/<YYYY-MM>/<table>.csv`` for every provider that sends a table and
every month 2016-01 .. 2021-05 (header-only files when a month has no rows), and the truth files
under ``truth_dir`` (which may not be inside ``out_dir``):

* ``records.csv`` - one row per data row written (duplicates and corrupted rows included):
  source, table, month, record_ref, true_person_id;
* ``person_month.csv`` - true counts per person-month; person-months whose counts are all zero
  are OMITTED. Columns ae_attendances, ambulance_resources, mh_bed_days (MHS24 rule),
  police_deployments (officers attended), s136_detentions (one per true detention), and the harm
  measures ae_self_harm, arrests, charges, s136_police_station, community_contacts (attended
  MHS201 contacts) and community_dna (exact definitions in ``sim_pipeline.synthetic.truth``);
* ``people.csv``, ``programme.csv``, ``s136_detentions.csv`` (which side recorded each
  detention and under which ids) and ``summary.json``.

Each drop's modification time is set to its arrival: a seeded time between day 3 and day 18 of
the month after (all of a provider's tables for a month within the same hour), so every drop is
on time under the coverage asset's default deadline (``sim_pipeline.synthetic.arrival``).

Trusts also send MHS201CareContact: community mental-health contacts (about 2.5 planned a month
for high-intensity users, about 1 a year for other people known to the trust), attended, not
attended or cancelled. Police CAD outcomes include CHARGED (arrested and charged).

People: 108 programme places taken by about 119 referred people (allocation month by month from
their history; about 73% of members engage, more often when their crisis is settling),
``comparison_people`` other high-intensity users and ``people`` general population.
``counterfactual_person_month.csv`` in the truth holds the members' person-months in the same
world without the effect (the realised effect of any estimand is exact). Members still on the programme at 2021-05-31 (when the real
programme stopped) are discharged that day with reason ``programme_closed``. Months on the
programme for the engaged run 1..25 with mean 13.0 (calendar months from engagement month to
discharge month inclusive).

Identifier noise: MHSDS (MPI and register) hold NHS numbers for 97% and nearly clean names/DOB
(1% slips); police rows never hold NHS numbers and carry name typos (8%), nicknames, married
names, missing (8%) / swapped (3%) / mistyped (2%) birth dates, upper-case CAD names and blank
postcodes (15%, always while of no fixed abode); LAS rows hold NHS numbers for 24% of
hear-and-treat and 86% of face-to-face calls and an age instead of a DOB for 20%; ECDS rows hold
no names, NHS numbers for 93% (0.3% someone else's, valid) and the NHS pseudo-postcode ZZ99 3VZ
for people of no fixed abode. About 0.5% of people have a twin and 0.5% of the general
population share name and birth date with someone else. Deliberate provider errors are listed in
``sim_pipeline.synthetic.errors``; the activity model is described in
``sim_pipeline.synthetic.activity``.
"""

from sim_pipeline.synthetic.core import SynthSummary, generate

__all__ = ["SynthSummary", "generate"]
