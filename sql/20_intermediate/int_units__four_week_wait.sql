/* Indicator units for the four-week wait (MRS01/MRS02, simplified): referral spells and clock stops.
   grain [indicator_id, person_id, provider_code, spell_start, umid]  ·  inputs: stg_referrals,
   stg_contacts, stg_prom_scores, stg_agreed_care_plans, stg_months  ·  $spell_gap_days, $wait_days
   Core CMH referrals of one person at one provider join one spell when a referral is received on or
   before the end + 5 days of any earlier one (an open referral never ends). Spells are formed once from
   the latest data, as rejection is. Clock start = the earliest received date; clock stop = the latest of
   the first attended direct contact, the first valid PROM score and the first agreed care plan of the
   spell, each counted only on or after the clock start (a care plan dated by its creation date if that
   is on or after the start, else by its last update). */
create or replace temp table int_units__four_week_wait as
with core as (
    select * from stg_referrals where is_core
),

ordered as (
    select
        *,
        max(coalesce(end_date + $spell_gap_days, date '9999-12-31')) over (
            partition by person_id, provider_code order by received_date, referral_id
            rows between unbounded preceding and 1 preceding
        ) as reach_before
    from core
),

spell_referrals as (
    select
        referral_id, person_id, provider_code, received_date, end_date, age_at_referral,
        sum((reach_before is null or received_date > reach_before)::integer) over (
            partition by person_id, provider_code order by received_date, referral_id rows unbounded preceding
        ) as spell_no
    from ordered
),

spells as (
    select
        person_id,
        provider_code,
        spell_no,
        min(received_date) as start_date,
        case when bool_or(end_date is null) then null else max(end_date) end as end_date,
        arg_min(age_at_referral, (received_date, referral_id)) as age_at_referral
    from spell_referrals
    group by all
),

spell_refs as (
    select sr.referral_id, sr.person_id, sr.provider_code, sr.spell_no, s.start_date
    from spell_referrals as sr
    inner join spells as s using (person_id, provider_code, spell_no)
),

first_contact as (
    select sr.person_id, sr.provider_code, sr.spell_no, min(c.contact_date) as contact_date
    from spell_refs as sr
    inner join stg_contacts as c on sr.referral_id = c.referral_id
    where c.is_attended_direct and c.contact_date >= sr.start_date
    group by sr.person_id, sr.provider_code, sr.spell_no
),

first_prom as (
    select sr.person_id, sr.provider_code, sr.spell_no, min(p.assessed_date) as prom_date
    from spell_refs as sr
    inner join stg_prom_scores as p on sr.referral_id = p.referral_id
    where p.is_valid and p.assessed_date >= sr.start_date
    group by sr.person_id, sr.provider_code, sr.spell_no
),

first_plan as (
    select person_id, provider_code, spell_no, min(plan_date) as plan_date
    from (
        select
            sr.person_id,
            sr.provider_code,
            sr.spell_no,
            sr.start_date,
            case when p.created_date >= sr.start_date then p.created_date else p.last_update_date end
                as plan_date
        from spell_refs as sr
        inner join stg_agreed_care_plans as p on sr.referral_id = p.referral_id
    )
    where plan_date >= start_date
    group by person_id, provider_code, spell_no
),

clocks as (
    select
        s.*,
        case
            when c.contact_date is not null and p.prom_date is not null and cp.plan_date is not null
                then greatest(c.contact_date, p.prom_date, cp.plan_date)
        end as stop_date
    from spells as s
    left join first_contact as c using (person_id, provider_code, spell_no)
    left join first_prom as p using (person_id, provider_code, spell_no)
    left join first_plan as cp using (person_id, provider_code, spell_no)
),

stopped as (
    select c.*, m.umid
    from clocks as c
    inner join stg_months as m on (year(c.stop_date) - 1900) * 12 + month(c.stop_date) - 3 = m.umid
),

waiting as (
    select c.*, m.umid, m.period_end - c.start_date as days
    from clocks as c
    inner join stg_months as m
        on m.period_end >= c.start_date
        and (c.end_date is null or c.end_date > m.period_end)
        and (c.stop_date is null or c.stop_date > m.period_end)
),

units as (
    select 'four_week_wait_pct' as indicator_id, umid, person_id, provider_code, age_at_referral,
        null as wait_band, ((stop_date - start_date) <= $wait_days)::double as num, 1.0 as den
    from stopped
    union all
    select
        'four_week_waiting_list_count', umid, person_id, provider_code, age_at_referral,
        case
            when days <= 28 then '0-4 weeks'
            when days <= 126 then '4-18 weeks'
            when days <= 364 then '18-52 weeks'
            else '52+ weeks'
        end,
        1.0, null
    from waiting
),

final as (
    select
        indicator_id, umid, person_id, provider_code, age_at_referral as ref_age,
        wait_band::varchar as wait_band, num::double as num, den::double as den,
        num::double as num_g, den::double as den_g, null::double as x
    from units
)

-- sorted by month alone: a big build makes its facts a month at a time (sql_runner.period_chunks), and
-- each month's read of this table then skips the other months' row groups (zone maps)
select * from final order by umid
