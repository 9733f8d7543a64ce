/* Care plans that were agreed (an MHS009 row exists) and belong to a referral.
   grain [care_plan_id]  ·  inputs: stg_MHS008CarePlanType_latest, stg_MHS009CarePlanAgreement_latest */
create or replace temp table stg_agreed_care_plans as
with plans as (
    select * from stg_MHS008CarePlanType_latest where UniqServReqID is not null
),

agreed as (
    select distinct UniqCarePlanID from stg_MHS009CarePlanAgreement_latest
),

final as (
    select
        p.UniqCarePlanID as care_plan_id,
        p.UniqServReqID as referral_id,
        p.Person_ID as person_id,
        p.OrgIDProv as provider_code,
        p.CarePlanCreatDate as created_date,
        p.CarePlanLastUpdateDate as last_update_date
    from plans as p
    inner join agreed as a on p.UniqCarePlanID = a.UniqCarePlanID
)

select * from final order by referral_id, care_plan_id
