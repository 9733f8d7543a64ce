/* Care contacts with the attendance and mechanism flags of spec/02.
   grain [contact_id]  ·  inputs: stg_MHS201CareContact, seed_code
   Contacts are events of their month; if one id was sent in two months the later month wins.
   Mechanism codes are already v6 (the loader maps pre-v5 ConsMediumUsed). */
create or replace temp table stg_contacts as
with contacts as (
    select * from stg_MHS201CareContact
    qualify row_number() over (
        partition by UniqCareContID order by src_month desc, UniqSubmissionID desc, src_line desc
    ) = 1
),

final as (
    select
        UniqCareContID as contact_id,
        UniqServReqID as referral_id,
        Person_ID as person_id,
        OrgIDProv as provider_code,
        CareContDate as contact_date,
        (year(CareContDate) - 1900) * 12 + month(CareContDate) - 3 as contact_umid,
        CareContTime as contact_time,
        AttendStatus as attend_status,
        ConsMechanismMH as mechanism,
        AttendStatus in (select code from seed_code where list_name = 'attended') as is_attended,
        AttendStatus in (select code from seed_code where list_name = 'dna_eligible') as is_dna_eligible,
        AttendStatus in (select code from seed_code where list_name = 'dna') as is_dna,
        (AttendStatus in (select code from seed_code where list_name = 'attended')
            and ConsMechanismMH in (select code from seed_code where list_name = 'direct_mechanism'))
            as is_attended_direct
    from contacts
)

select * from final order by referral_id, contact_date, contact_time, contact_id
