create or replace function private._apply_stripe_event(p_event jsonb, out ignored_reason text)
language plpgsql
set search_path = ''
as $$
declare
  v_type text := p_event ->> 'type';
  v_obj jsonb := p_event -> 'data' -> 'object';
  v_event_id text := p_event ->> 'id';
  v_created timestamptz := private._stripe_ts(p_event -> 'created');
  v_user_id uuid;
  v_sub_id text;
  v_state public.user_subscriptions;
  v_plans text[];
  v_tokens bigint;
  v_refund jsonb;
begin
  case
  when v_type in ('checkout.session.completed', 'checkout.session.async_payment_succeeded') then
    if v_obj ->> 'payment_status' not in ('paid', 'no_payment_required') then
      ignored_reason := 'the checkout is not paid yet (checkout.session.async_payment_succeeded follows)';
    elsif v_obj ->> 'mode' = 'payment' then
      ignored_reason := private._credit_token_pack(v_obj, v_obj ->> 'payment_intent', v_obj ->> 'id',
                                                   (v_obj ->> 'amount_total')::bigint);
    elsif v_obj ->> 'mode' = 'subscription' and v_obj ->> 'subscription' is not null then
      v_user_id := private._stripe_user(v_obj ->> 'customer',
                                        coalesce(v_obj -> 'metadata' ->> 'user_id', v_obj ->> 'client_reference_id'));
      if v_user_id is null then
        ignored_reason := format('no user here for Stripe customer %s', v_obj ->> 'customer');
      else
        -- A paid checkout proves the subscription got past incomplete; it stands until a snapshot arrives.
        v_state.user_id := v_user_id;
        v_state.plan_id := v_obj -> 'metadata' ->> 'plan';
        v_state.billing_period := v_obj -> 'metadata' ->> 'billing_period';
        v_state.status := 'active';
        v_state.stripe_subscription_id := v_obj ->> 'subscription';
        v_state.stripe_customer_id := v_obj ->> 'customer';
        v_state.stripe_created_at := private._stripe_ts(v_obj -> 'created');
        v_state.stripe_updated_at := v_created;
        v_state.stripe_event_id := v_event_id;
        v_state.state_source := 'checkout_session';
        perform private._put_subscription_state(v_state);
      end if;
    else
      ignored_reason := format('a checkout in %s mode buys nothing here', coalesce(v_obj ->> 'mode', 'no'));
    end if;

  when v_type = 'payment_intent.succeeded' then
    ignored_reason := private._credit_token_pack(v_obj, v_obj ->> 'id', null,
                                                 coalesce((v_obj ->> 'amount_received')::bigint, (v_obj ->> 'amount')::bigint));

  when v_type in ('customer.subscription.created', 'customer.subscription.updated', 'customer.subscription.deleted',
                  'customer.subscription.paused', 'customer.subscription.resumed') then
    v_user_id := private._stripe_user(v_obj ->> 'customer', v_obj -> 'metadata' ->> 'user_id');
    if v_user_id is null then
      ignored_reason := format('no user here for Stripe customer %s', v_obj ->> 'customer');
    else
      perform private._put_subscription_state(private._subscription_snapshot(
        v_user_id, v_obj, v_event_id, v_created, v_type = 'customer.subscription.deleted'));
    end if;

  when v_type in ('invoice.paid', 'invoice.payment_succeeded') then
    -- The allowance of the period the invoice bills, from the invoice alone: its subscription period lines'
    -- prices (→ plan and billing period). Prorations and one-off items credit nothing.
    v_sub_id := private._invoice_subscription_id(v_obj);
    v_user_id := private._invoice_user(v_obj);
    if v_user_id is null then
      ignored_reason := format('no user here for Stripe customer %s', v_obj ->> 'customer');
    elsif not exists (select 1 from private._invoice_period_lines(v_obj)) then
      ignored_reason := 'the invoice bills no subscription period (prorations or one-off items only)';
    else
      select array_agg(m.plan_id order by l.period_start), sum(p.monthly_token_allowance
               * case when m.billing_period = 'yearly' then 12 else 1 end)
        into v_plans, v_tokens
        from private._invoice_period_lines(v_obj) l
        cross join lateral private._plan_for_price(l.price_id) m
        join public.subscription_plans p on p.id = m.plan_id;
      if v_plans is null then
        raise exception 'invoice % bills price % which is not configured for any plan', v_obj ->> 'id',
          (select price_id from private._invoice_period_lines(v_obj) limit 1) using errcode = 'PB422';
      end if;
      -- A period line of a price that is no plan of ours (an add-on sold in Stripe) credits nothing; tell an
      -- operator, once a day per price, in case it was meant to be a plan.
      perform private.raise_admin_alert(
                'unconfigured_price', v_user_id, jsonb_build_object('price', l.price_id, 'invoice', v_obj ->> 'id'),
                'unconfigured_price:' || coalesce(l.price_id, '(none)') || ':' || to_char(now(), 'YYYY-MM-DD'))
        from private._invoice_period_lines(v_obj) l
       where not exists (select 1 from private._plan_for_price(l.price_id));
      if v_tokens > 0 then
        perform private.update_user_token_balance(
          v_user_id, v_tokens, 'subscription_allowance', 'invoice:' || (v_obj ->> 'id'),
          jsonb_build_object('invoice', v_obj ->> 'id', 'subscription', v_sub_id, 'plan', v_plans[1]));
      else
        ignored_reason := format('the %s plan has no allowance', v_plans[1]);
      end if;
    end if;

  when v_type = 'invoice.payment_failed' then
    -- The subscription's own events (customer.subscription.updated: past_due) change its status; this tells
    -- the user, once per invoice.
    v_sub_id := private._invoice_subscription_id(v_obj);
    v_user_id := private._invoice_user(v_obj);
    if v_user_id is null then
      ignored_reason := format('no user here for Stripe customer %s', v_obj ->> 'customer');
    else
      insert into public.notifications (user_id, kind, title, body, data, dedupe_key)
      values (v_user_id, 'payment_failed', 'Your payment failed',
              'We could not charge your payment method. Update it in the billing portal to keep your plan.',
              jsonb_build_object('invoice', v_obj ->> 'id', 'subscription', v_sub_id,
                                 'hosted_invoice_url', v_obj ->> 'hosted_invoice_url'),
              'invoice_payment_failed:' || (v_obj ->> 'id'))
      on conflict (dedupe_key) do nothing;
    end if;

  when v_type in ('refund.created', 'refund.updated', 'refund.failed', 'charge.refund.updated') then
    perform private._record_reversal('refund', v_obj, null, v_event_id, v_created);
    if v_obj ->> 'payment_intent' is not null then
      perform private._apply_pack_reversals(v_obj ->> 'payment_intent');
    end if;

  when v_type = 'charge.refunded' then
    -- Since API version 2022-11-15 a charge lists its refunds only when expanded; each refund also comes as
    -- refund.created / refund.updated, which is what applies it.
    if jsonb_typeof(v_obj -> 'refunds' -> 'data') = 'array' and jsonb_array_length(v_obj -> 'refunds' -> 'data') > 0 then
      for v_refund in select * from jsonb_array_elements(v_obj -> 'refunds' -> 'data') loop
        perform private._record_reversal('refund', v_refund, v_obj ->> 'payment_intent', v_event_id, v_created);
      end loop;
      if v_obj ->> 'payment_intent' is not null then
        perform private._apply_pack_reversals(v_obj ->> 'payment_intent');
      end if;
    else
      ignored_reason := 'the charge lists no refunds: each refund is applied from its refund.* events';
    end if;

  when v_type in ('charge.dispute.created', 'charge.dispute.updated', 'charge.dispute.closed',
                  'charge.dispute.funds_withdrawn', 'charge.dispute.funds_reinstated') then
    perform private._record_reversal('dispute', v_obj, null, v_event_id, v_created);
    if v_obj ->> 'payment_intent' is not null then
      perform private._apply_pack_reversals(v_obj ->> 'payment_intent');
    end if;

  else
    ignored_reason := format('event type %s is not handled', v_type);
  end case;
end;
$$;

comment on function private._apply_stripe_event(jsonb) is
  'Applies one Stripe event''s effect (inside the caller''s transaction), commutatively: the state after a set '
  'of events is the same in any delivery order. Returns why the event changed nothing (ignored_reason), or '
  'null. Raises on anything it cannot apply (an unconfigured price, …), so the caller records the failure.';
