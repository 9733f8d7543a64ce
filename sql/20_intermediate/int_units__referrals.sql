/* Indicator units for referrals received in the month: one row per referral per indicator.
   grain [indicator_id, referral_id]  ·  inputs: stg_referrals, seed_code, stg_months
   Every units table has the same columns (see fct_indicator_units): num/den are the unit's numerator
   and denominator contributions at provider level, num_g/den_g at the person's geography (equal here:
   a referral is one unit everywhere). ref_age is the age used for age_band (age at referral). */
create or replace temp table int_units__referrals as
with received as (
    select r.*
    from stg_referrals as r
    inner join stg_months as m on r.received_umid = m.umid
),

core as (
    select * from received where is_core
),

routes as (
    select list_name, code from seed_code where list_name like 'route_%'
),

route_units as (
    select
        'referral_route_' || rt.route || '_pct' as indicator_id,
        c.received_umid as umid,
        c.person_id,
        c.provider_code,
        c.age_at_referral as ref_age,
        coalesce(c.referral_source in (select code from routes where list_name = 'route_' || rt.route), false)
            ::double as num
    from core as c
    cross join (values ('emergency_justice'), ('self'), ('gp'), ('vcse')) as rt (route)
),

units as (
    select 'referrals_received' as indicator_id, received_umid as umid, person_id, provider_code,
        age_at_referral as ref_age, 1.0 as num, null::double as den
    from core
    union all
    select 'referrals_rejected_pct', received_umid, person_id, provider_code, age_at_referral,
        is_rejected::double, 1.0
    from core
    union all
    select indicator_id, umid, person_id, provider_code, ref_age, num, 1.0 from route_units
    union all
    -- data quality looks at every referral to a core team type, whatever its age or inpatient status
    select 'dq_referral_age_known_pct', received_umid, person_id, provider_code, age_at_referral,
        (age_at_referral is not null)::double, 1.0
    from received
    where is_core_team
),

final as (
    select
        indicator_id, umid, person_id, provider_code, ref_age,
        null::varchar as wait_band, num, den, num as num_g, den as den_g, null::double as x
    from units
)

-- sorted by month alone: a big build makes its facts a month at a time (sql_runner.period_chunks), and
-- each month's read of this table then skips the other months' row groups (zone maps)
select * from final order by umid
