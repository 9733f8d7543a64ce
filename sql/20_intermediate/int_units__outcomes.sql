/* Indicator units for PROM outcomes: the outcomes cohort and paired scores (NHS England CMH PROMs method).
   grain [indicator_id, referral_id, umid]  ·  inputs: stg_referrals, stg_contacts, stg_prom_scores,
   stg_months  ·  $window_months, $cohort_min_days, $reqol_cutoff
   Cohort at month m: core CMH referrals with 2+ attended direct contacts by the end of m that ended in
   the 12 months ending m, or are open at the end of m and were received 180+ days before it.
   Pairing per referral and unit (DIALOG item, ReQoL-10 total, GBO goal, and the DIALOG SQoL score =
   mean of valid life items 1-8 on one date when 6+ are valid): baseline = the earliest valid score,
   follow-up = the latest valid score with a later timestamp up to the end of m. Each later score is the
   follow-up from its own month until the month before the next score, so pairs are joined to periods by
   a range instead of being recomputed per month. */
create or replace temp table int_units__outcomes as
with core as (
    select * from stg_referrals where is_core
),

second_contact as (
    select c.referral_id, c.contact_date as second_date
    from stg_contacts as c
    inner join core as r on c.referral_id = r.referral_id
    where c.is_attended_direct
    qualify row_number() over (
        partition by c.referral_id order by c.contact_date, c.contact_time, c.contact_id
    ) = 2
),

cohort as (
    select r.referral_id, r.person_id, r.provider_code, r.age_at_referral, m.umid
    from core as r
    inner join second_contact as s on r.referral_id = s.referral_id
    inner join stg_months as m on m.period_end >= s.second_date
    where
        (r.end_date <= m.period_end
            and (year(r.end_date) - 1900) * 12 + month(r.end_date) - 3 > m.umid - $window_months)
        or ((r.end_date is null or r.end_date > m.period_end)
            and r.received_date <= m.period_end - $cohort_min_days::integer)
),

valid as (
    select p.referral_id, p.tool, p.unit_no, p.threshold, p.score, p.assessed_at, p.assessed_date,
        p.assessed_umid
    from stg_prom_scores as p
    inner join core as r on p.referral_id = r.referral_id
    where p.is_valid
),

sqol as (
    select
        referral_id, 'DIALOG SQoL' as tool, 0 as unit_no, null::double as threshold, avg(score) as score,
        assessed_date::timestamp as assessed_at, assessed_date, any_value(assessed_umid) as assessed_umid
    from (
        select * from valid
        where tool = 'DIALOG' and unit_no <= 8
        qualify row_number() over (
            partition by referral_id, unit_no, assessed_date order by assessed_at desc, score desc
        ) = 1
    )
    group by referral_id, assessed_date
    having count(*) >= 6
),

scores as (
    select referral_id, tool, unit_no, threshold, score, assessed_at, assessed_umid from valid
    union all
    select referral_id, tool, unit_no, threshold, score, assessed_at, assessed_umid from sqol
),

ranked as (
    select
        *,
        first_value(score) over w as base_score,
        first_value(assessed_at) over w as base_at,
        first_value(assessed_umid) over w as base_umid,
        lead(assessed_umid) over w as next_umid
    from scores
    window w as (partition by referral_id, tool, unit_no order by assessed_at, score)
),

followups as (
    select
        referral_id, tool, unit_no, threshold, base_score, score as follow_score,
        assessed_umid as from_umid, coalesce(next_umid, 2147483647) - 1 as to_umid
    from ranked
    where assessed_at > base_at
),

firsts as (
    select
        b.referral_id,
        b.first_valid_umid,
        f.first_paired_umid
    from (
        select referral_id, min(base_umid) as first_valid_umid
        from ranked where tool <> 'DIALOG SQoL' group by referral_id
    ) as b
    left join (
        select referral_id, min(from_umid) as first_paired_umid
        from followups where tool <> 'DIALOG SQoL' group by referral_id
    ) as f on b.referral_id = f.referral_id
),

pairs as (
    select
        c.referral_id, c.umid, c.person_id, c.provider_code, c.age_at_referral,
        f.tool, f.threshold, f.base_score, f.follow_score, f.follow_score - f.base_score as change
    from cohort as c
    inner join followups as f
        on c.referral_id = f.referral_id and c.umid between f.from_umid and f.to_umid
),

units as (
    select 'prom_baseline_pct' as indicator_id, c.umid, c.person_id, c.provider_code, c.age_at_referral,
        coalesce(f.first_valid_umid <= c.umid, false)::double as num, 1.0 as den, null::double as x
    from cohort as c
    left join firsts as f on c.referral_id = f.referral_id
    union all
    select 'prom_paired_pct', c.umid, c.person_id, c.provider_code, c.age_at_referral,
        coalesce(f.first_paired_umid <= c.umid, false)::double, 1.0, null
    from cohort as c
    left join firsts as f on c.referral_id = f.referral_id
    union all
    select 'reqol10_reliable_improvement_pct', umid, person_id, provider_code, age_at_referral,
        (change >= threshold)::double, 1.0, null
    from pairs where tool = 'ReQoL-10'
    union all
    select 'reqol10_reliable_deterioration_pct', umid, person_id, provider_code, age_at_referral,
        (change <= -threshold)::double, 1.0, null
    from pairs where tool = 'ReQoL-10'
    union all
    select 'reqol10_reliable_recovery_pct', umid, person_id, provider_code, age_at_referral,
        (follow_score >= $reqol_cutoff and change >= threshold)::double, 1.0, null
    from pairs where tool = 'ReQoL-10' and base_score < $reqol_cutoff
    union all
    select 'dialog_item_reliable_improvement_pct', umid, person_id, provider_code, age_at_referral,
        count(*) filter (where change >= threshold)::double, count(*)::double, null
    from pairs where tool = 'DIALOG'
    group by all
    union all
    select 'gbo_reliable_improvement_pct', umid, person_id, provider_code, age_at_referral,
        count(*) filter (where change >= threshold)::double, count(*)::double, null
    from pairs where tool = 'GBO'
    group by all
    union all
    select 'dialog_sqol_mean_change', umid, person_id, provider_code, age_at_referral, change, 1.0, change
    from pairs where tool = 'DIALOG SQoL'
),

final as (
    select
        indicator_id, umid, person_id, provider_code, age_at_referral as ref_age,
        null::varchar as wait_band, num, den, num as num_g, den as den_g, x
    from units
)

-- not sorted: agg_indicator_groups sums the score changes exactly (fixed point), in any order; sorting its
-- national rows by month for the facts' reads (as the other int_units__* are) cost more than it saved
select * from final
