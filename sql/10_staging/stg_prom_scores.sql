/* PROM scores of the three CMH tools (DIALOG items 1-11, ReQoL-10 total, GBO goals 1-3).
   grain [referral_id, tool, unit_no, assessed_at, score_row]  ·  inputs: stg_MHS606CodedScoreAssessmentRefer,
   seed_prom_tool
   Validity is the loader's flag (numeric and inside the tool's range); other tool codes are dropped. */
create or replace temp table stg_prom_scores as
with scores as (
    select * from stg_MHS606CodedScoreAssessmentRefer
),

final as (
    select
        s.UniqServReqID as referral_id,
        s.Person_ID as person_id,
        s.OrgIDProv as provider_code,
        t.tool,
        t.unit_no,
        t.threshold,
        s.score,
        coalesce(s.score_valid, false) as is_valid,
        s.AssToolCompTimestamp as assessed_at,
        s.AssToolCompTimestamp::date as assessed_date,
        (year(s.AssToolCompTimestamp) - 1900) * 12 + month(s.AssToolCompTimestamp) - 3 as assessed_umid
    from scores as s
    inner join seed_prom_tool as t on s.CodedAssToolType = t.code
)

select * from final order by referral_id, tool, unit_no, assessed_at
