/* Practice -> PCN -> place -> ICB as at each reporting month's end.
   grain [practice_code, umid]  ·  inputs: ref_gp_practice_pcn, ref_providers, stg_months
   A practice in a place but in no PCN gets PCN UNMAPPED. A practice with no relationship valid at the
   period end is not listed, so its people fall to UNKNOWN (like an unusable practice code). If two
   relationships overlap, the most recently started wins.
   With several ICBs in the data, the pseudo-PCN is the ICB's own (UNMAPPED-<icb_code>), so a PCN-level
   row never pools people of different ICBs (see fct_indicator_units and the geography lookup). */
create or replace temp table int_practice_geography as
with several as (
    select count(distinct icb_code) > 1 as several_icbs
    from (select icb_code from ref_gp_practice_pcn union all select icb_code from ref_providers)
),

final as (
    select
        r.practice_code,
        m.umid,
        if(
            coalesce(nullif(trim(r.pcn_code), ''), 'UNMAPPED') in ('UNMAPPED', 'UNKNOWN') and s.several_icbs,
            coalesce(nullif(trim(r.pcn_code), ''), 'UNMAPPED') || '-' || r.icb_code,
            coalesce(nullif(trim(r.pcn_code), ''), 'UNMAPPED')
        ) as pcn_code,
        r.place_code,
        r.icb_code
    from ref_gp_practice_pcn as r
    cross join several as s
    inner join stg_months as m
        on coalesce(r.rel_start_date, date '1900-01-01') <= m.period_end
        and (r.rel_end_date is null or r.rel_end_date >= m.period_end)
    qualify row_number() over (
        partition by r.practice_code, m.umid order by r.rel_start_date desc nulls last, r.pcn_code
    ) = 1
)

select * from final order by practice_code, umid
