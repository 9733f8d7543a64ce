/* The (provider, PCN) pairs of every period's units: what the provider_pcns lookup, and the pairs an
   incremental run saves per period, are made of. No person-level data: codes, period and a flag.
   grain [provider_code, pcn_code, period_end, late]  ·  inputs: fct_indicator_units,
   int_units__four_week_wait
   late: the pair comes from the four-week wait's units (the family whose periods an incremental run
   may rebuild from further back; pipelines.incremental.PLAN_FAMILY). Read from here rather than from
   fct_indicator_units, which a big build makes a few periods at a time and never holds whole. */
create or replace temp table agg_provider_pcns as
with late as (
    select distinct indicator_id from int_units__four_week_wait
),

final as (
    select distinct
        f.provider_code,
        f.pcn_code,
        f.period_end,
        f.indicator_id in (select indicator_id from late) as late
    from fct_indicator_units as f
    where f.provider_code is not null and f.pcn_code is not null
)

select * from final
