create or replace function private.handle_stripe_event(p_payload text, p_request_id text default null, p_source_ip inet default null)
returns table (status text, error text, reason text)
language plpgsql
set search_path = ''
as $$
declare
  v_event jsonb;
  v_problem text;
  v_status text;
  v_error text;
  v_reason text;
begin
  begin
    v_event := p_payload::jsonb;
  exception when others then
    -- JSON that Postgres cannot store: \u0000, a lone surrogate, …
    v_problem := 'the event cannot be stored: ' || sqlerrm;
  end;
  v_problem := coalesce(v_problem, private._stripe_event_problem(v_event));
  if v_problem is not null then
    perform private.log_webhook_rejection(p_request_id, p_source_ip, 400, v_problem,
      case when jsonb_typeof(v_event -> 'id') = 'string' then left(v_event ->> 'id', 255) end,
      case when jsonb_typeof(v_event -> 'type') = 'string' then left(v_event ->> 'type', 255) end);
    return query select 'rejected'::text, v_problem, null::text;
    return;
  end if;

  insert into private.stripe_webhook_events (id, type, livemode, stripe_created_at, payload)
  values (v_event ->> 'id', v_event ->> 'type', coalesce((v_event ->> 'livemode')::boolean, false),
          private._stripe_ts(v_event -> 'created'), v_event)
  on conflict (id) do nothing;

  select p.status, p.error, p.reason into v_status, v_error, v_reason from private.process_stripe_event(v_event ->> 'id') p;

  insert into private.webhook_audit_log (request_id, source_ip, event_id, event_type, outcome, http_status, reason)
  values (p_request_id, p_source_ip, v_event ->> 'id', v_event ->> 'type',
          case v_status when 'duplicate' then 'duplicate' when 'failed' then 'failed' else 'accepted' end,
          case when v_status = 'failed' then 500 else 200 end,
          left(coalesce(v_error, v_status || coalesce(': ' || v_reason, '')), 500));
  return query select v_status, v_error, v_reason;
end;
$$;

comment on function private.handle_stripe_event(text, text, inet) is
  'What the stripe-webhook function calls with a verified body: refuses (status rejected, audited as a 400) a '
  'body that is not a storable Stripe event; otherwise records it once, processes it and audits the delivery, '
  'all in one transaction. Idempotent per event id.';
