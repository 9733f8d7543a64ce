/* Indicator units for access_2plus_contacts (MHS108): people with 2+ attended direct contacts on one
   access-scope referral, both in the 12 months ending the period.
   grain [person_id, provider_code, umid]  ·  inputs: stg_contacts, stg_referrals, stg_months  ·  $window_months
   Two contacts of a referral fall in one 12-month window exactly when some pair of consecutive contacts
   does, so each consecutive pair (d1 <= d2) qualifies the periods month(d2) .. month(d1) + 11. Those
   intervals are merged per person and provider (gaps and islands) and only then expanded to months: no
   per-month loop, and no row per contact per month. */
create or replace temp table int_units__access as
with direct as (
    select c.referral_id, c.person_id, c.provider_code, c.contact_date, c.contact_time, c.contact_id,
        c.contact_umid
    from stg_contacts as c
    inner join stg_referrals as r on c.referral_id = r.referral_id
    where c.is_attended_direct and r.is_access_scope
),

pairs as (
    select
        person_id,
        provider_code,
        lead(contact_umid) over (
            partition by referral_id order by contact_date, contact_time, contact_id
        ) as first_umid,
        contact_umid + $window_months - 1 as last_umid
    from direct
),

-- distinct: the two windows below must see one total order. Two equal intervals would be tied, and the
-- second window may order a tie differently from the first: the copy whose reach_before came from the
-- other copy then continues the island before it, bridging a gap (seen: 6 months too many at demo
-- scale, in about one build of six). Empty intervals (the pair more than 12 months apart) add nothing.
intervals as (
    select distinct person_id, provider_code, first_umid, last_umid
    from pairs
    where first_umid <= last_umid
),

ordered as (
    select
        person_id, provider_code, first_umid, last_umid,
        max(last_umid) over (
            partition by person_id, provider_code order by first_umid, last_umid
            rows between unbounded preceding and 1 preceding
        ) as reach_before
    from intervals
),

islands as (
    select
        person_id, provider_code, first_umid, last_umid,
        sum((reach_before is null or first_umid > reach_before + 1)::integer) over (
            partition by person_id, provider_code order by first_umid, last_umid
            rows unbounded preceding
        ) as island
    from ordered
),

merged as (
    select person_id, provider_code, min(first_umid) as first_umid, max(last_umid) as last_umid
    from islands
    group by person_id, provider_code, island
),

expanded as (
    select x.person_id, x.provider_code, m.umid
    from merged as x
    inner join stg_months as m on m.umid between x.first_umid and x.last_umid
),

final as (
    select
        'access_2plus_contacts' as indicator_id,
        umid,
        person_id,
        provider_code,
        null::integer as ref_age,
        null::varchar as wait_band,
        1.0 as num,
        null::double as den,
        (row_number() over (partition by person_id, umid order by provider_code) = 1)::double as num_g,
        null::double as den_g,
        null::double as x
    from expanded
)

-- sorted by month alone: a big build makes its facts a month at a time (sql_runner.period_chunks), and
-- each month's read of this table then skips the other months' row groups (zone maps)
select * from final order by umid
