/* Each person's current registered GP practice per month (MHS002GP).
   grain [person_id, umid]  ·  inputs: stg_MHS002GP, seed_code
   Current = no EndDateGMPRegistration, or one after the month end; among current registrations the
   latest RecordNumber wins. A month whose rows are all ended, or name a "no usable practice" code
   (V81999/V81998/V81997), gives practice NULL, which the geography step reads as UNKNOWN. */
create or replace temp table stg_person_gp as
with gp as (
    select
        *,
        last_day(make_date(1900 + (UniqMonthID + 2) // 12, (UniqMonthID + 2) % 12 + 1, 1)) as month_end
    from stg_MHS002GP
),

ranked as (
    select
        Person_ID as person_id,
        UniqMonthID as umid,
        case
            when (EndDateGMPRegistration is null or EndDateGMPRegistration > month_end)
                and GMPReg not in (select code from seed_code where list_name = 'unusable_practice')
                then GMPReg
        end as practice_code,
        (EndDateGMPRegistration is null or EndDateGMPRegistration > month_end) as is_current,
        RecordNumber as record_number
    from gp
),

final as (
    select person_id, umid, practice_code
    from ranked
    qualify row_number() over (
        partition by person_id, umid order by is_current desc, record_number desc, practice_code
    ) = 1
)

select * from final order by person_id, umid
