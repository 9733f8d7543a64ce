/* The reporting months present in the loaded data: every indicator is produced for each of them.
   grain [umid]  ·  inputs: stg_MHS000Header, stg_MHS101Referral (loader)
   umid is MHSDS UniqMonthID: (year - 1900) * 12 + month - 3, so April 2025 = 1501. */
create or replace temp table stg_months as
with loaded as (
    select distinct UniqMonthID as umid from stg_MHS000Header
    union
    select distinct UniqMonthID from stg_MHS101Referral
),

final as (
    select
        umid,
        make_date(1900 + (umid + 2) // 12, (umid + 2) % 12 + 1, 1) as period_start,
        last_day(make_date(1900 + (umid + 2) // 12, (umid + 2) % 12 + 1, 1)) as period_end
    from loaded
)

select * from final order by umid
