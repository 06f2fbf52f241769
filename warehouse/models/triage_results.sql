-- The triage agent's labels for every loaded email.
select
    email_id,
    case
        when subject ilike '%outage%' or subject ilike '%security%' then 'urgent'
        when subject ilike '%invoice%' or subject ilike '%refund%' then 'finance'
        when subject ilike '%order%' then 'shopping'
        else 'general'
    end as label,
    received_at,
    current_timestamp as triaged_at
from {{ ref('inbox_emails') }}
