-- Incremental: each run appends the emails received since the newest one already loaded.
{{ config(materialized='incremental', unique_key='email_id') }}

select
    email_id,
    lower(sender) as sender,
    subject,
    received_at,
    current_timestamp as loaded_at
from {{ source('demo', 'raw_emails') }}
{% if is_incremental() %}
where received_at > (select coalesce(max(received_at), cast('1970-01-01 00:00:00+00' as timestamptz)) from {{ this }})
{% endif %}
