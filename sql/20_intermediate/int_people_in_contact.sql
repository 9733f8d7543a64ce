/* People in contact: an attended direct contact on a core CMH referral in the 12 months ending the
   period, per provider; the cohort of the data-quality and employment indicators.
   grain [person_id, provider_code, umid]  ·  inputs: stg_contacts, stg_referrals, stg_months
   ·  $window_months
   is_primary marks one provider row per person and period, so geography-level figures count a person
   once; has_open_core_referral (open at the period end at that provider) and its own primary flag serve
   employment_paid_pct. Month intervals are merged before expanding, as in int_units__access. */
create or replace temp table int_people_in_contact as
with contact_months as (
    select distinct c.person_id, c.provider_code, c.contact_umid
    from stg_contacts as c
    inner join stg_referrals as r on c.referral_id = r.referral_id
    where c.is_attended_direct and r.is_core
),

ordered as (
    select
        person_id, provider_code, contact_umid as first_umid, contact_umid + $window_months - 1 as last_umid,
        max(contact_umid + $window_months - 1) over (
            partition by person_id, provider_code order by contact_umid
            rows between unbounded preceding and 1 preceding
        ) as reach_before
    from contact_months
),

islands as (
    select
        *,
        sum((reach_before is null or first_umid > reach_before + 1)::integer) over (
            partition by person_id, provider_code order by first_umid rows unbounded preceding
        ) as island
    from ordered
),

merged as (
    select person_id, provider_code, min(first_umid) as first_umid, max(last_umid) as last_umid
    from islands
    group by person_id, provider_code, island
),

in_contact as (
    select x.person_id, x.provider_code, m.umid
    from merged as x
    inner join stg_months as m on m.umid between x.first_umid and x.last_umid
),

open_core as (
    select distinct r.person_id, r.provider_code, m.umid
    from stg_referrals as r
    inner join stg_months as m
        on r.received_date <= m.period_end and (r.end_date is null or r.end_date > m.period_end)
    where r.is_core
),

flagged as (
    select i.*, o.umid is not null as has_open_core_referral
    from in_contact as i
    left join open_core as o using (person_id, provider_code, umid)
),

final as (
    select
        *,
        row_number() over (partition by person_id, umid order by provider_code) = 1 as is_primary,
        has_open_core_referral and row_number() over (
            partition by person_id, umid order by has_open_core_referral desc, provider_code
        ) = 1 as is_primary_open
    from flagged
)

-- sorted by month alone: a big build makes its facts a month at a time (sql_runner.period_chunks), and
-- each month's read of this table then skips the other months' row groups (zone maps)
select * from final order by umid
