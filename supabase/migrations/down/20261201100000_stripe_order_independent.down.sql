-- Reverts 20261201100000_stripe_order_independent.sql. Generated with the pinned CLI's pg-delta engine
-- (supabase db diff --use-pg-delta) from the schema with this migration to the schema without it.
SET local check_function_bodies = off;

SELECT cron.unschedule('aie_cron_history_purge');

COMMENT ON COLUMN "public"."user_subscriptions"."stripe_updated_at" IS NULL;

ALTER TABLE "private"."token_pack_takebacks"
  DROP CONSTRAINT "token_pack_takebacks_user_id_fkey";

ALTER TABLE "public"."token_transactions"
  DROP CONSTRAINT "reason_is_known";

ALTER TABLE "public"."user_subscriptions"
  DROP CONSTRAINT "state_source_is_known";

DROP FUNCTION "private"."_apply_pack_reversals"(text);

DROP FUNCTION "private"."_apply_stripe_event"(jsonb);

DROP FUNCTION "private"."_credit_token_pack"(jsonb, text, text, bigint);

DROP FUNCTION "private"."_give_back"(public.token_transactions, text, jsonb);

DROP FUNCTION "private"."_invoice_period_lines"(jsonb);

DROP FUNCTION "private"."_put_subscription_state"(public.user_subscriptions);

DROP FUNCTION "private"."_record_reversal"(text, jsonb, text, text, timestamp WITH time zone);

DROP FUNCTION "private"."_refresh_current_subscription"(uuid);

DROP FUNCTION "private"."_reversal_stage"(text, text);

DROP FUNCTION "private"."_reversal_takes_back"(text, text);

DROP FUNCTION "private"."_stripe_event_problem"(jsonb);

DROP FUNCTION "private"."_subscription_is_live"(text);

DROP FUNCTION "private"."_subscription_snapshot"(uuid, jsonb, text, timestamp WITH time zone, boolean);

DROP FUNCTION "private"."_subscription_state_rank"(text, text);

DROP FUNCTION "private"."_take_back"(public.token_transactions, text, text, bigint, jsonb);

DROP FUNCTION "private"."handle_stripe_event"(text, text, inet);

DROP FUNCTION "private"."process_stripe_event"(text, boolean);

DROP FUNCTION "private"."purge_cron_history"(interval);

DROP FUNCTION "private"."replay_failed_webhook_event"(text);

ALTER TABLE "private"."stripe_webhook_events"
  DROP COLUMN "ignored_reason";

ALTER TABLE "public"."user_subscriptions"
  DROP COLUMN "state_source";

ALTER TABLE "public"."user_subscriptions"
  DROP COLUMN "stripe_created_at";

ALTER TABLE "public"."user_subscriptions"
  DROP COLUMN "stripe_event_id";

DROP TABLE "private"."stripe_payment_reversals";

DROP TABLE "private"."token_pack_takebacks";

CREATE OR REPLACE FUNCTION private._apply_stripe_event (
  p_event jsonb
)
  RETURNS boolean
  LANGUAGE plpgsql
  SET search_path TO ''
  AS $function$
declare
  v_type text := p_event ->> 'type';
  v_obj jsonb := p_event -> 'data' -> 'object';
  v_created timestamptz := private._stripe_ts(p_event -> 'created');
  v_item jsonb;
  v_user_id uuid;
  v_sub_id text;
  v_line jsonb;
  v_plan public.subscription_plans;
  v_row public.user_subscriptions;
begin
  case v_type
  when 'checkout.session.completed', 'checkout.session.async_payment_succeeded' then
    if v_obj ->> 'mode' = 'payment' then
      if v_obj ->> 'payment_status' = 'paid' then
        perform private._credit_token_pack(v_obj, v_obj ->> 'payment_intent', v_obj ->> 'id');
      end if;
    elsif v_obj ->> 'mode' = 'subscription' and v_obj ->> 'subscription' is not null
          and v_obj ->> 'payment_status' in ('paid', 'no_payment_required') then
      -- (An unpaid async payment waits for checkout.session.async_payment_succeeded or the invoice.)
      v_user_id := private._stripe_user(v_obj ->> 'customer',
                                        coalesce(v_obj -> 'metadata' ->> 'user_id', v_obj ->> 'client_reference_id'));
      perform private._sync_subscription(
        v_user_id, v_obj ->> 'subscription', v_obj ->> 'customer', 'active', null,
        v_obj -> 'metadata' ->> 'plan', v_obj -> 'metadata' ->> 'billing_period',
        null, null, false, null, null, v_created);
    end if;

  when 'payment_intent.succeeded' then
    perform private._credit_token_pack(v_obj, v_obj ->> 'id', null);

  when 'customer.subscription.created', 'customer.subscription.updated', 'customer.subscription.deleted' then
    v_item := v_obj -> 'items' -> 'data' -> 0;
    v_user_id := private._stripe_user(v_obj ->> 'customer', v_obj -> 'metadata' ->> 'user_id');
    perform private._sync_subscription(
      v_user_id, v_obj ->> 'id', v_obj ->> 'customer',
      case when v_type = 'customer.subscription.deleted' then 'canceled' else v_obj ->> 'status' end,
      v_item -> 'price' ->> 'id',
      v_obj -> 'metadata' ->> 'plan', null,
      private._stripe_ts(coalesce(v_item -> 'current_period_start', v_obj -> 'current_period_start')),
      private._stripe_ts(coalesce(v_item -> 'current_period_end', v_obj -> 'current_period_end')),
      (v_obj ->> 'cancel_at_period_end')::boolean,
      private._stripe_ts(v_obj -> 'canceled_at'),
      private._stripe_ts(v_obj -> 'ended_at'),
      v_created);

  when 'invoice.payment_succeeded', 'invoice.paid' then
    v_sub_id := coalesce(v_obj ->> 'subscription', v_obj -> 'parent' -> 'subscription_details' ->> 'subscription');
    if v_sub_id is null then
      return true; -- a one-off invoice: nothing to renew
    end if;
    v_user_id := private._stripe_user(v_obj ->> 'customer',
                                      coalesce(v_obj -> 'parent' -> 'subscription_details' -> 'metadata' ->> 'user_id',
                                               v_obj -> 'subscription_details' -> 'metadata' ->> 'user_id'));
    if coalesce(v_obj ->> 'billing_reason', 'subscription_cycle') not in ('subscription_create', 'subscription_cycle') then
      return true; -- prorations, manual and threshold invoices: no new period and no allowance
    end if;
    v_line := v_obj -> 'lines' -> 'data' -> 0;
    select * into v_row from public.user_subscriptions where stripe_subscription_id = v_sub_id for update;
    if found and v_row.status in ('canceled', 'incomplete_expired') then
      return true; -- the final invoice of an ended subscription does not bring it back
    end if;
    if not found or v_row.stripe_updated_at <= v_created then
      perform private._sync_subscription(
        v_user_id, v_sub_id, v_obj ->> 'customer', 'active',
        coalesce(v_line -> 'price' ->> 'id', v_line -> 'pricing' -> 'price_details' ->> 'price'),
        coalesce(v_obj -> 'parent' -> 'subscription_details' -> 'metadata' ->> 'plan',
                 v_obj -> 'subscription_details' -> 'metadata' ->> 'plan'),
        null,
        private._stripe_ts(v_line -> 'period' -> 'start'), private._stripe_ts(v_line -> 'period' -> 'end'),
        coalesce(v_row.cancel_at_period_end, false), null, null, v_created);
    end if;
    -- The period's allowance, once per invoice (a yearly invoice carries twelve months).
    select p.* into v_plan from public.subscription_plans p
      join public.user_subscriptions s on s.plan_id = p.id
     where s.stripe_subscription_id = v_sub_id;
    if v_plan.monthly_token_allowance > 0 then
      perform private.update_user_token_balance(
        v_user_id,
        v_plan.monthly_token_allowance * case when (select billing_period from public.user_subscriptions
                                                      where stripe_subscription_id = v_sub_id) = 'yearly'
                                              then 12 else 1 end,
        'subscription_allowance', 'invoice:' || (v_obj ->> 'id'),
        jsonb_build_object('invoice', v_obj ->> 'id', 'subscription', v_sub_id, 'plan', v_plan.id));
    end if;

  when 'invoice.payment_failed' then
    v_sub_id := coalesce(v_obj ->> 'subscription', v_obj -> 'parent' -> 'subscription_details' ->> 'subscription');
    v_user_id := private._stripe_user(v_obj ->> 'customer', null);
    if v_sub_id is not null then
      update public.user_subscriptions set status = 'past_due', stripe_updated_at = v_created
       where stripe_subscription_id = v_sub_id and stripe_updated_at <= v_created
         and status not in ('canceled', 'incomplete_expired');
      if found then -- an older failure than the state we hold changes nothing
        update public.users set plan_status = 'past_due'
         where id = v_user_id and stripe_subscription_id = v_sub_id;
      end if;
    end if;
    insert into public.notifications (user_id, kind, title, body, data, dedupe_key)
    values (v_user_id, 'payment_failed', 'Your payment failed',
            'We could not charge your payment method. Update it in the billing portal to keep your plan.',
            jsonb_build_object('invoice', v_obj ->> 'id', 'subscription', v_sub_id,
                               'hosted_invoice_url', v_obj ->> 'hosted_invoice_url'),
            'invoice_payment_failed:' || (v_obj ->> 'id'))
    on conflict (dedupe_key) do nothing;

  when 'charge.refunded' then
    perform private._refund_token_pack(v_obj);

  else
    return false; -- a type we do not handle: recorded and acknowledged
  end case;
  return true;
end;
$function$;

CREATE OR REPLACE FUNCTION private._credit_token_pack (
  p_object         jsonb,
  p_payment_intent text,
  p_session        text
)
  RETURNS void
  LANGUAGE plpgsql
  SET search_path TO ''
  AS $function$
declare
  v_meta jsonb := coalesce(p_object -> 'metadata', '{}');
  v_user_id uuid;
  v_pack public.token_packs;
  v_tokens bigint;
begin
  if v_meta ->> 'pack_id' is null then
    return; -- not one of our token pack payments
  end if;
  v_user_id := private._stripe_user(p_object ->> 'customer', coalesce(v_meta ->> 'user_id', p_object ->> 'client_reference_id'));
  select * into v_pack from public.token_packs where id = v_meta ->> 'pack_id';
  if not found then
    raise exception 'unknown token pack %', v_meta ->> 'pack_id' using errcode = 'PB422';
  end if;
  -- What the buyer was sold (stamped at checkout), not today's catalog.
  v_tokens := coalesce((v_meta ->> 'tokens')::bigint, v_pack.tokens);
  perform private.update_user_token_balance(
    v_user_id, v_tokens, 'token_pack_purchase',
    case when p_payment_intent is not null then 'pi:' || p_payment_intent else 'cs:' || p_session end,
    jsonb_build_object('pack_id', v_pack.id, 'payment_intent', p_payment_intent, 'checkout_session', p_session)
  );
end;
$function$;

CREATE OR REPLACE FUNCTION private._refund_token_pack (
  p_charge jsonb
)
  RETURNS void
  LANGUAGE plpgsql
  SET search_path TO ''
  AS $function$
declare
  v_credit public.token_transactions;
  v_amount bigint := (p_charge ->> 'amount')::bigint;
  v_refunded bigint := (p_charge ->> 'amount_refunded')::bigint;
  v_target bigint;
  v_done bigint;
  v_balance bigint;
  v_debit bigint;
begin
  select * into v_credit from public.token_transactions
   where reference = 'pi:' || (p_charge ->> 'payment_intent') and reason = 'token_pack_purchase';
  if not found or v_amount is null or v_amount <= 0 then
    return; -- not a token pack charge (e.g. a subscription invoice): nothing to take back
  end if;
  -- The balance row lock first: concurrent refund events of one charge must see each other's debits.
  select balance into v_balance from public.token_balances where user_id = v_credit.user_id for update;
  -- Debit in proportion to the amount refunded so far, minus what earlier refund events already took.
  v_target := (v_credit.delta * least(v_refunded, v_amount)) / v_amount;
  select coalesce(-sum(delta), 0) into v_done from public.token_transactions
   where user_id = v_credit.user_id and reason = 'token_pack_refund' and metadata ->> 'charge' = p_charge ->> 'id';
  if v_target - v_done <= 0 then
    return;
  end if;
  -- Tokens already spent cannot be taken back: debit what is left and record the shortfall.
  v_debit := least(v_target - v_done, v_balance);
  if v_debit > 0 then
    perform private.update_user_token_balance(
      v_credit.user_id, -v_debit, 'token_pack_refund',
      'refund:' || (p_charge ->> 'id') || ':' || v_refunded,
      jsonb_build_object('charge', p_charge ->> 'id', 'payment_intent', p_charge ->> 'payment_intent',
                         'amount_refunded', v_refunded, 'shortfall', (v_target - v_done) - v_debit)
    );
  end if;
end;
$function$;

CREATE OR REPLACE FUNCTION private._stripe_user (
  p_customer  text,
  p_user_hint text
)
  RETURNS uuid
  LANGUAGE plpgsql
  SET search_path TO ''
  AS $function$
declare
  v_user_id uuid;
  v_customer text;
begin
  if p_user_hint is not null and p_user_hint ~ '^[0-9a-f-]{36}$' then
    select id, stripe_customer_id into v_user_id, v_customer from public.users where id = p_user_hint::uuid;
    if v_user_id is null then
      raise exception 'Stripe object names unknown user %', p_user_hint using errcode = 'PB404';
    end if;
    if p_customer is not null and v_customer is not null and v_customer <> p_customer then
      raise exception 'user % belongs to customer %, not %', v_user_id, v_customer, p_customer using errcode = 'PB409';
    end if;
    if v_customer is null and p_customer is not null then
      update public.users set stripe_customer_id = p_customer where id = v_user_id;
    end if;
    return v_user_id;
  end if;
  select id into v_user_id from public.users where stripe_customer_id = p_customer;
  if v_user_id is null then
    raise exception 'no user for Stripe customer %', p_customer using errcode = 'PB404';
  end if;
  return v_user_id;
end;
$function$;

CREATE OR REPLACE FUNCTION private._sync_subscription (
  p_user_id              uuid,
  p_subscription_id      text,
  p_customer             text,
  p_status               text,
  p_price                text,
  p_plan_hint            text,
  p_period_hint          text,
  p_period_start         timestamp with time zone,
  p_period_end           timestamp with time zone,
  p_cancel_at_period_end boolean,
  p_canceled_at          timestamp with time zone,
  p_ended_at             timestamp with time zone,
  p_event_created        timestamp with time zone
)
  RETURNS boolean
  LANGUAGE plpgsql
  SET search_path TO ''
  AS $function$
declare
  v_row public.user_subscriptions;
  v_plan text;
  v_period text;
  v_live boolean := p_status in ('active', 'trialing', 'past_due', 'unpaid', 'incomplete', 'paused');
begin
  select * into v_row from public.user_subscriptions where stripe_subscription_id = p_subscription_id for update;
  if found and v_row.stripe_updated_at > p_event_created then
    return false; -- an older event than the state we hold: never overwrite
  end if;
  -- Events created in the same second can arrive in either order: then a subscription only moves forward
  -- in its life (incomplete → live → ended), never back.
  if found and v_row.stripe_updated_at = p_event_created
     and private._subscription_stage(p_status) < private._subscription_stage(v_row.status) then
    return false;
  end if;

  select m.plan_id, m.billing_period into v_plan, v_period from private._plan_for_price(p_price) m;
  v_plan := coalesce(v_plan, p_plan_hint, v_row.plan_id);
  v_period := coalesce(v_period, p_period_hint, v_row.billing_period);
  if v_plan is null or not exists (select 1 from public.subscription_plans where id = v_plan) then
    raise exception 'Stripe price % is not configured for any plan', p_price using errcode = 'PB422';
  end if;

  if v_live then
    update public.user_subscriptions set is_current = false
     where user_id = p_user_id and is_current and stripe_subscription_id <> p_subscription_id;
  end if;

  insert into public.user_subscriptions as s (
    user_id, plan_id, billing_period, status, stripe_subscription_id, stripe_customer_id, stripe_price_id,
    current_period_start, current_period_end, cancel_at_period_end, canceled_at, ended_at, is_current,
    stripe_updated_at)
  values (
    p_user_id, v_plan, v_period, p_status, p_subscription_id, p_customer, p_price,
    p_period_start, p_period_end, coalesce(p_cancel_at_period_end, false), p_canceled_at, p_ended_at, v_live,
    p_event_created)
  on conflict (stripe_subscription_id) do update set
    plan_id = excluded.plan_id,
    billing_period = excluded.billing_period,
    status = excluded.status,
    stripe_price_id = coalesce(excluded.stripe_price_id, s.stripe_price_id),
    current_period_start = coalesce(excluded.current_period_start, s.current_period_start),
    current_period_end = coalesce(excluded.current_period_end, s.current_period_end),
    cancel_at_period_end = excluded.cancel_at_period_end,
    canceled_at = coalesce(excluded.canceled_at, s.canceled_at),
    ended_at = coalesce(excluded.ended_at, s.ended_at),
    is_current = excluded.is_current,
    stripe_updated_at = excluded.stripe_updated_at;

  if v_live then
    update public.users
       set plan = v_plan, plan_status = p_status, stripe_subscription_id = p_subscription_id,
           stripe_customer_id = coalesce(stripe_customer_id, p_customer)
     where id = p_user_id;
  else
    -- Ended: back to free, but only if this was the subscription the user is on.
    update public.users set plan = 'free', plan_status = 'active', stripe_subscription_id = null
     where id = p_user_id and (stripe_subscription_id = p_subscription_id or stripe_subscription_id is null);
  end if;
  return true;
end;
$function$;

CREATE OR REPLACE FUNCTION private.handle_stripe_event (
  p_event      jsonb,
  p_request_id text  DEFAULT NULL::text,
  p_source_ip  inet  DEFAULT NULL::inet
)
  RETURNS TABLE (
    status text,
    error  text
  )
  LANGUAGE plpgsql
  SET search_path TO ''
  AS $function$
declare
  v_status text;
  v_error text;
begin
  if p_event ->> 'id' is null or p_event ->> 'type' is null or jsonb_typeof(p_event -> 'created') <> 'number' then
    raise exception 'not a Stripe event' using errcode = '22023';
  end if;
  insert into private.stripe_webhook_events (id, type, livemode, stripe_created_at, payload)
  values (p_event ->> 'id', p_event ->> 'type', coalesce((p_event ->> 'livemode')::boolean, false),
          private._stripe_ts(p_event -> 'created'), p_event)
  on conflict (id) do nothing;

  select p.status, p.error into v_status, v_error from private.process_stripe_event(p_event ->> 'id') p;

  insert into private.webhook_audit_log (request_id, source_ip, event_id, event_type, outcome, http_status, reason)
  values (p_request_id, p_source_ip, p_event ->> 'id', p_event ->> 'type',
          case v_status when 'duplicate' then 'duplicate' when 'failed' then 'failed' else 'accepted' end,
          case when v_status = 'failed' then 500 else 200 end,
          coalesce(left(v_error, 500), v_status));
  return query select v_status, v_error;
end;
$function$;

CREATE OR REPLACE FUNCTION private.process_stripe_event (
  p_event_id text,
  p_force    boolean DEFAULT false
)
  RETURNS TABLE (
    status text,
    error  text
  )
  LANGUAGE plpgsql
  SET search_path TO ''
  AS $function$
declare
  v_event private.stripe_webhook_events;
  v_handled boolean;
  v_error text;
begin
  -- The row lock makes concurrent deliveries of one event wait for each other: the first applies it,
  -- the others find it processed.
  select * into v_event from private.stripe_webhook_events e where e.id = p_event_id for update;
  if not found then
    raise exception 'unknown Stripe event %', p_event_id using errcode = 'PB404';
  end if;
  if v_event.status in ('processed', 'ignored') then
    return query select 'duplicate'::text, null::text;
    return;
  end if;
  if v_event.status = 'failed' and v_event.attempts >= 3 and not p_force then
    return query select 'failed'::text, v_event.last_error;
    return;
  end if;

  begin
    v_handled := private._apply_stripe_event(v_event.payload);
  exception when others then
    v_error := sqlstate || ': ' || sqlerrm;
  end;

  if v_error is null then
    update private.stripe_webhook_events e
       set status = case when v_handled then 'processed' else 'ignored' end,
           attempts = e.attempts + 1, processed_at = now(), last_error = null
     where e.id = p_event_id;
    update private.failed_webhook_events f set resolved_at = now() where f.event_id = p_event_id and f.resolved_at is null;
    return query select case when v_handled then 'processed' else 'ignored' end, null::text;
    return;
  end if;

  update private.stripe_webhook_events e
     set status = 'failed', attempts = e.attempts + 1, last_error = v_error,
         errors = e.errors || jsonb_build_array(jsonb_build_object('at', now(), 'error', v_error))
   where e.id = p_event_id
  returning * into v_event;
  if v_event.attempts >= 3 then
    insert into private.failed_webhook_events as f (event_id, type, payload, errors, attempts, next_retry_at)
    values (v_event.id, v_event.type, v_event.payload, v_event.errors, v_event.attempts, now() + interval '5 minutes')
    on conflict (event_id) do update
      set errors = excluded.errors,
          attempts = excluded.attempts, failed_at = now(), resolved_at = null,
          next_retry_at = now() + least(interval '5 minutes' * power(2, f.replay_count), interval '1 day');
  end if;
  return query select 'failed'::text, v_error;
end;
$function$;

CREATE OR REPLACE FUNCTION private.replay_failed_webhook_event (
  p_event_id text
)
  RETURNS TABLE (
    status text,
    error  text
  )
  LANGUAGE plpgsql
  SECURITY DEFINER
  SET search_path TO ''
  AS $function$
begin
  update private.failed_webhook_events
     set replay_count = replay_count + 1, last_replayed_at = now()
   where event_id = p_event_id;
  if not found then
    raise exception 'event % is not in the dead-letter queue', p_event_id using errcode = 'PB404';
  end if;
  return query select * from private.process_stripe_event(p_event_id, true);
end;
$function$;

ALTER TABLE "public"."token_transactions"
  ADD CONSTRAINT "reason_is_known"
    CHECK ((reason = ANY (ARRAY['subscription_allowance'::text, 'token_pack_purchase'::text, 'token_pack_refund'::text, 'usage'::text, 'adjustment'::text])));

COMMENT ON FUNCTION "private"."_apply_stripe_event"(jsonb) IS 'Applies one Stripe event''s effect (inside the caller''s transaction). Returns false for event types we do not handle. Raises on anything it cannot apply, so the caller records the failure.';

COMMENT ON FUNCTION "private"."_credit_token_pack"(jsonb, text, text) IS 'Credits a paid token pack once per PaymentIntent (reference pi:<id>, else cs:<checkout session id>), whichever event carries it first. No-op for payments that are not token packs.';

COMMENT ON FUNCTION "private"."_refund_token_pack"(jsonb) IS 'Debits the tokens of a refunded token pack in proportion to the amount refunded (once per refund level), never below zero (a shortfall is recorded in the ledger row''s metadata).';

COMMENT ON FUNCTION "private"."_stripe_user"(text, text) IS 'Resolves the user of a Stripe object; links the customer id on first sight; PB404/PB409 when it cannot.';

COMMENT ON FUNCTION "private"."_sync_subscription"(uuid, text, text, text, text, text, text, timestamp with time zone, timestamp with time zone, boolean, timestamp
  with time zone, timestamp with time zone, timestamp with time zone) IS 'Upserts a user_subscriptions row from Stripe state unless it holds newer state (watermark); returns whether it applied. Live statuses make it the current subscription and set users.plan; ended ones move the user back to free when it was their current subscription.';

COMMENT ON FUNCTION "private"."handle_stripe_event"(jsonb, text, inet) IS 'What the stripe-webhook function calls with a verified event: records it once, processes it, audits the delivery, all in one transaction. Idempotent per event id.';

COMMENT ON FUNCTION "private"."process_stripe_event"(text, boolean) IS 'The one code path that applies a recorded Stripe event: exactly once (row lock + status), in a subtransaction so a failure is recorded (attempts, last_error) instead of lost; the third failure lands in failed_webhook_events. Returns processed, ignored, duplicate or failed (with the error).';

COMMENT ON FUNCTION "private"."replay_failed_webhook_event"(text) IS 'Operator: re-applies a dead-lettered event through process_stripe_event. Applies it at most once; a success marks the dead letter resolved.';

COMMENT ON TABLE "public"."user_subscriptions" IS 'One row per Stripe subscription of a user: at most one is_current per user, the rest is history. stripe_updated_at is the watermark: the created time of the newest Stripe event applied to the row, so an older event delivered later never overwrites newer state. Written by the webhook only.';

REVOKE ALL ON FUNCTION "private"."_apply_stripe_event"(jsonb) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION "private"."_apply_stripe_event"(jsonb) TO "postgres";

REVOKE ALL ON FUNCTION "private"."_credit_token_pack"(jsonb, text, text) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION "private"."_credit_token_pack"(jsonb, text, text) TO "postgres";

REVOKE ALL ON FUNCTION "private"."_refund_token_pack"(jsonb) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION "private"."_refund_token_pack"(jsonb) TO "postgres";

REVOKE ALL
  ON FUNCTION "private"."_sync_subscription"(uuid, text, text, text, text, text, text, timestamp WITH time zone, timestamp WITH time zone, boolean, timestamp
    WITH time zone, timestamp WITH time zone, timestamp WITH time zone)
  FROM PUBLIC;

GRANT EXECUTE
  ON FUNCTION "private"."_sync_subscription"(uuid, text, text, text, text, text, text, timestamp WITH time zone, timestamp WITH time zone, boolean, timestamp
    WITH time zone, timestamp WITH time zone, timestamp WITH time zone)
  TO "postgres";

REVOKE ALL ON FUNCTION "private"."handle_stripe_event"(jsonb, text, inet) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION "private"."handle_stripe_event"(jsonb, text, inet) TO "postgres";

REVOKE ALL ON FUNCTION "private"."process_stripe_event"(text, boolean) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION "private"."process_stripe_event"(text, boolean) TO "postgres";

REVOKE ALL ON FUNCTION "private"."replay_failed_webhook_event"(text) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION "private"."replay_failed_webhook_event"(text) TO "postgres", "service_role";
