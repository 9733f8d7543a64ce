/* Each person's disability group per month, from all the DisabCodes sent that month.
   grain [person_id, umid]  ·  inputs: stg_MHS007DisabilityType
   Any of 01-10/XX -> Disabled; only NN -> Not disabled; otherwise (ZZ, unknown codes) Not known. */
create or replace temp table stg_person_disability as
with final as (
    select
        Person_ID as person_id,
        UniqMonthID as umid,
        case
            when bool_or(DisabCode in ('01', '02', '03', '04', '05', '06', '07', '08', '09', '10', 'XX'))
                then 'Disabled'
            when bool_and(DisabCode = 'NN') then 'Not disabled'
            else 'Not known'
        end as disability
    from stg_MHS007DisabilityType
    group by all
)

select * from final order by person_id, umid
