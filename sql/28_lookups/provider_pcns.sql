/* The PCNs each provider serves: the PCNs of the people on its referrals, in any month (spec/04
   provider extracts; the dashboard's provider-user scope).
   grain [provider_code, pcn_code]  ·  inputs: agg_provider_pcns
   No person-level data: only the pairs of codes. */
create or replace table provider_pcns as
with final as (
    select distinct provider_code, pcn_code
    from agg_provider_pcns
)

select * from final order by provider_code, pcn_code
