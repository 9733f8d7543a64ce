/* Indicator units for referral-to-second-contact waits (MHS124-MHS128 family).
   grain [indicator_id, referral_id, umid]  ·  inputs: stg_referrals, stg_contacts, stg_months
   ·  $wait_days
   Core CMH referrals, not rejected. A referral's second attended direct contact (by date, time, id) is
   a finished wait in its month; before it, the referral is on the waiting list at every period end at
   which it is open (received <= period end < referral end). Days waiting = period end - received. */
create or replace temp table int_units__waits as
with core as (
    select * from stg_referrals where is_core and not is_rejected
),

direct as (
    select
        c.referral_id,
        c.contact_date,
        row_number() over (
            partition by c.referral_id order by c.contact_date, c.contact_time, c.contact_id
        ) as n
    from stg_contacts as c
    inner join core as r on c.referral_id = r.referral_id
    where c.is_attended_direct
),

referrals as (
    select r.*, d.contact_date as second_date
    from core as r
    left join direct as d on r.referral_id = d.referral_id and d.n = 2
),

finished as (
    select r.*, m.umid, (r.second_date - r.received_date)::double as days
    from referrals as r
    inner join stg_months as m
        on (year(r.second_date) - 1900) * 12 + month(r.second_date) - 3 = m.umid
),

-- on the list at a period end <=> received by it, and neither ended nor second-contacted by it: the months
-- from the received month up to the month before the end or the second contact, whichever is first.
-- Listed per referral and then equi-joined, since a range join to the months scaled badly nationally.
bounds as (
    select min(umid) as lo, max(umid) as hi from stg_months
),

waiting_months as (
    select
        r.*,
        unnest(range(
            greatest((year(r.received_date) - 1900) * 12 + month(r.received_date) - 3, b.lo),
            least(
                coalesce((year(r.end_date) - 1900) * 12 + month(r.end_date) - 3, b.hi + 1),
                coalesce((year(r.second_date) - 1900) * 12 + month(r.second_date) - 3, b.hi + 1),
                b.hi + 1
            )
        )) as wait_umid
    from referrals as r
    cross join bounds as b
),

waiting as (
    select r.*, m.umid, (m.period_end - r.received_date) as days
    from waiting_months as r
    inner join stg_months as m on r.wait_umid = m.umid
),

units as (
    select 'wait_second_contact_28d_pct' as indicator_id, umid, person_id, provider_code, age_at_referral,
        null as wait_band, (days <= $wait_days)::double as num, 1.0 as den, null::double as x
    from finished
    union all
    select 'wait_second_contact_median_days', umid, person_id, provider_code, age_at_referral, null,
        null, 1.0, days
    from finished
    union all
    select 'wait_second_contact_p90_days', umid, person_id, provider_code, age_at_referral, null,
        null, 1.0, days
    from finished
    union all
    select
        'waiting_second_contact_count', umid, person_id, provider_code, age_at_referral,
        case
            when days <= 28 then '0-4 weeks'
            when days <= 126 then '4-18 weeks'
            when days <= 364 then '18-52 weeks'
            else '52+ weeks'
        end,
        1.0, null, null
    from waiting
    union all
    select 'waiting_second_contact_median_days', umid, person_id, provider_code, age_at_referral, null,
        null, 1.0, days::double
    from waiting
),

final as (
    select
        indicator_id, umid, person_id, provider_code, age_at_referral as ref_age,
        wait_band::varchar as wait_band, num::double as num, den::double as den,
        num::double as num_g, den::double as den_g, x
    from units
)

-- sorted by month alone: a big build makes its facts a month at a time (sql_runner.period_chunks), and
-- each month's read of this table then skips the other months' row groups (zone maps)
select * from final order by umid
