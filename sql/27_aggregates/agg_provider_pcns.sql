/* The (provider, PCN) pairs of every period's units: what the provider_pcns lookup, and the pairs an
   incremental run saves per period, are made of. No person-level data: codes, period and a flag.
   grain [provider_code, pcn_code, period_end, late]  ·  inputs: fct_indicator_units
   late: the pair comes from the four-week wait's units (the family whose periods an incremental run
   may rebuild from further back; pipelines.incremental.PLAN_FAMILY), as fct_indicator_units marks them.
   Read from here rather than from fct_indicator_units, which a big build makes a few periods at a time
   and never holds whole. */
create or replace temp table agg_provider_pcns as
select distinct provider_code, pcn_code, period_end, late
from fct_indicator_units
where provider_code is not null and pcn_code is not null
