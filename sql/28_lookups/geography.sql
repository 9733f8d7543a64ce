/* The published geography lookup: every area an indicator can be reported for, with its name and parent
   (read by the dashboard for labels and drill-down, and by chk_geography_codes_known).
   grain [geography_level, geography_code]  ·  inputs: ref_gp_practice_pcn, ref_providers
   icb_code: the ICB an area belongs to (the API and extracts scope ICB-wide users by it).
   Built from the reference files only, never from the data, so a code the data invents fails the check.
   Names and parents come from the most recently started relationship (ties: the lowest practice code,
   so that reference files that disagree still give one answer every run). The pseudo-PCNs UNMAPPED and
   UNKNOWN span places, so their parent is the ICB; with several ICBs each ICB has its own pair,
   UNMAPPED-<icb_code> and UNKNOWN-<icb_code> (as fct_indicator_units codes them). */
create or replace table geography as
with rel as (
    select *, row_number() over (order by rel_start_date desc nulls last, practice_code) as recency
    from ref_gp_practice_pcn
),

icbs as (
    select icb_code as code, arg_min(icb_name, recency) as name from rel group by icb_code
    union
    select icb_code, icb_code from ref_providers where icb_code not in (select icb_code from rel)
),

final as (
    select 'icb' as geography_level, code as geography_code, coalesce(name, code) as geography_name,
        null::varchar as parent_level, null::varchar as parent_code, code as icb_code
    from icbs
    union all
    select 'place', place_code, coalesce(arg_min(place_name, recency), place_code), 'icb',
        arg_min(icb_code, recency), arg_min(icb_code, recency)
    from rel
    group by place_code
    union all
    select 'pcn', pcn_code, coalesce(arg_min(pcn_name, recency), pcn_code), 'place',
        arg_min(place_code, recency), arg_min(icb_code, recency)
    from rel
    where nullif(trim(pcn_code), '') is not null
    group by pcn_code
    union all
    select 'pcn',
        if(s.several, p.code || '-' || i.code, p.code),
        if(s.several, p.name || ' (' || coalesce(i.name, i.code) || ')', p.name),
        'icb', i.code, i.code
    from (values ('UNMAPPED', 'Practice outside any PCN'), ('UNKNOWN', 'No usable GP practice')) as p (code, name)
    cross join icbs as i
    cross join (select count(*) > 1 as several from icbs) as s
    where s.several or i.code = (select min(code) from icbs)
    union all
    select 'provider', provider_code, coalesce(provider_name, provider_code), 'icb', icb_code, icb_code
    from ref_providers
)

select * from final order by geography_level, geography_code
