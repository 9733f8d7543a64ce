/* Indicator units for dq_prom_valid_pct: PROM scores of the three tools recorded in the month, summed
   per person, provider and month.
   grain [person_id, provider_code, umid]  ·  inputs: stg_prom_scores, stg_months
   Any referral counts (not only core CMH ones): recording quality is about the provider's data. */
create or replace temp table int_units__prom_quality as
with final as (
    select
        'dq_prom_valid_pct' as indicator_id,
        p.assessed_umid as umid,
        p.person_id,
        p.provider_code,
        null::integer as ref_age,
        null::varchar as wait_band,
        count(*) filter (where p.is_valid)::double as num,
        count(*)::double as den,
        count(*) filter (where p.is_valid)::double as num_g,
        count(*)::double as den_g,
        null::double as x
    from stg_prom_scores as p
    inner join stg_months as m on p.assessed_umid = m.umid
    group by all
)

-- sorted by month alone: a big build makes its facts a month at a time (sql_runner.period_chunks), and
-- each month's read of this table then skips the other months' row groups (zone maps)
select * from final order by umid
