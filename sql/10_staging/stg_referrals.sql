/* Referrals as known in the latest data, with the scope flags every indicator shares (spec/02).
   grain [referral_id]  ·  inputs: stg_MHS101Referral_latest, stg_MHS501HospProvSpell, seed_code
   A referral's latest version carries its outcome (rejection, discharge), so "rejected" and the end
   date are "as known in the latest data". The inpatient exclusion looks at every loaded MHS501 row. */
create or replace temp table stg_referrals as
with referrals as (
    select * from stg_MHS101Referral_latest
),

inpatient as (
    select distinct UniqServReqID from stg_MHS501HospProvSpell
),

core_team as (
    select code from seed_code where list_name = 'core_team_type'
),

access_team as (
    select code from seed_code where list_name = 'access_team_type'
),

final as (
    select
        r.UniqServReqID as referral_id,
        r.Person_ID as person_id,
        r.OrgIDProv as provider_code,
        r.ReferralRequestReceivedDate as received_date,
        (year(r.ReferralRequestReceivedDate) - 1900) * 12 + month(r.ReferralRequestReceivedDate) - 3
            as received_umid,
        r.ServTeamTypeRefToMH as team_type,
        r.SourceOfReferralMH as referral_source,
        r.AgeServReferRecDate as age_at_referral,
        coalesce(r.ServDischDate, r.ReferRejectionDate, r.ReferClosureDate) as end_date,
        r.ReferRejectionDate is not null as is_rejected,
        i.UniqServReqID is not null as has_inpatient_spell,
        r.ServTeamTypeRefToMH in (select code from core_team) as is_core_team,
        coalesce(r.ServTeamTypeRefToMH in (select code from core_team)
            and r.AgeServReferRecDate >= 18 and i.UniqServReqID is null, false) as is_core,
        coalesce(r.ServTeamTypeRefToMH in (select code from access_team)
            and r.AgeServReferRecDate >= 18 and i.UniqServReqID is null, false) as is_access_scope
    from referrals as r
    left join inpatient as i on r.UniqServReqID = i.UniqServReqID
)

select * from final order by person_id, provider_code, received_date, referral_id
